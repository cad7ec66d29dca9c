/**
 * A function's cold start: its settings read and its clients made once per isolate. A
 * setting that is missing or malformed (SYNC_DB_URL, the service keys, an AWS key with a
 * line break in it) is no reason to fail the isolate's boot, which answers every caller
 * with the platform's bare boot error and leaves the cause in the function's log alone:
 * every request is answered 503 instead, `x-sync-refusal: misconfigured`, naming the
 * setting and the cause (never a secret: functions-shared/settings.ts names a secret
 * setting without its value), so that the Lambda's and pg_net's logs say what to fix.
 * Retry-After 60: the same request passes once the setting is fixed and the function
 * deployed again.
 *
 * @module
 */

import type postgres from "postgres";
import { describeDbTarget, isSharedPooler, isSupabaseHost } from "./db_url.ts";
import { describeError } from "./error_text.ts";
import { errorResponse } from "./http.ts";
import { acceptedServiceKeys } from "./service_auth.ts";
import {
  type EnvReader,
  PLATFORM_SETTINGS,
  readSettings,
  type Settings,
  SettingsError,
  type SettingSpec,
} from "./settings.ts";
import { connectDb, dbPool, survivePooledConnectionLoss } from "./sync_db.ts";

/** A request handler, as `Deno.serve` takes one. */
export type Handler = (req: Request) => Response | Promise<Response>;

/**
 * The handler `build` makes, or, when `build` throws, one that answers every request 503
 * with `name` and the cause (logged once).
 */
export function servedOrRefused(name: string, build: () => Handler): Handler {
  try {
    return build();
  } catch (error) {
    // One line, whatever was thrown (a fault of the code says where). The answer, which
    // goes to any caller before a key is checked, names a setting's problem (never its
    // value) but not where in the code a fault lies: the log says.
    const setting = error instanceof Error && error.constructor === Error ||
      error instanceof SettingsError;
    const problem = setting ? (error as Error).message : describeError(error);
    console.error(`${name} refuses every request: ${problem}`);
    const answer = setting
      ? problem
      : "a fault of its code at cold start (the function's log says where)";
    return () =>
      errorResponse(503, `${name} is misconfigured: ${answer}; nothing was done`, {
        "retry-after": "60",
        "x-sync-refusal": "misconfigured",
      });
  }
}

/** What every function opens first at cold start ({@link openFunction}). */
export interface OpenedFunction<S extends Record<string, SettingSpec<unknown>>> {
  env: EnvReader;
  /** Its settings, read and checked once (settings.ts). */
  settings: Settings<S>;
  /** The service keys it accepts (service_auth.ts). */
  serviceKeys: string[];
  /** Its pool of the database, through SYNC_DB_URL. */
  sql: postgres.Sql;
}

/**
 * What every function `name` opens first, the same way: its settings of `specs` (which
 * hold the platform's), the service keys it accepts, its database pool (a pooled
 * connection lost later is logged, not fatal), and a log line naming the database
 * (never its password). Throws, naming the setting, as {@link servedOrRefused} expects.
 */
export function openFunction<S extends typeof PLATFORM_SETTINGS>(
  name: string,
  specs: S,
  env: EnvReader = (key) => Deno.env.get(key),
): OpenedFunction<S> {
  const settings = readSettings(env, specs);
  const platform = settings as unknown as Settings<typeof PLATFORM_SETTINGS>;
  const serviceKeys = acceptedServiceKeys(env);
  const sql = connectDb(platform.db, dbPool(platform));
  survivePooledConnectionLoss();
  console.log(`${name}: database ${describeDbTarget(platform.db)}`);
  // Works, but a burst of isolates takes the project's direct connections, which
  // PostgREST, Auth and Storage share (README, "Connections: what to set, and why").
  if (isSupabaseHost(platform.db.host) && !isSharedPooler(platform.db)) {
    console.warn(
      `${name}: the database is reached by a direct connection, not Supabase's transaction ` +
        "pooler: each isolate holds up to SYNC_DB_POOL_MAX of the project's direct " +
        "connections (60 on the smallest computes, shared with PostgREST, Auth and " +
        "Storage); set SYNC_DB_URL to the transaction pooler (port 6543)",
    );
  }
  return { env, settings, serviceKeys, sql };
}
