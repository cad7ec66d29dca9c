/**
 * The one way an Edge Function reads its settings: each setting is declared once, with
 * its environment variable, its default and its bounds (the platform's here, each
 * function's in function_settings.ts);
 * `readSettings` parses all of a function's settings at cold start and throws one
 * {@link SettingsError} naming every bad one (its name, what it holds and what it
 * should hold), so that a typo fails the function at once instead of becoming a silent
 * `NaN` budget. Secret values are never repeated in a message.
 *
 * @module
 */

import {
  type DbTarget,
  isSupabaseHost,
  isSupavisorHost,
  parseDbUrl,
  TRANSACTION_POOLER_PORT,
} from "./db_url.ts";

/** Reads an environment variable (Deno's or, in Node, the process's). */
export type EnvReader = (name: string) => string | undefined;

/** One setting: where it comes from, what it defaults to, how it is checked. */
export interface SettingSpec<T> {
  /** The environment variable. */
  env: string;
  /** Read when `env` is unset or empty (e.g. `SUPABASE_DB_URL` for `SYNC_DB_URL`). */
  fallbackEnv?: string;
  /** What it is for, for messages and docs. */
  about: string;
  /** Used when the variable is unset or empty; undefined makes the setting required. */
  default?: T;
  /** Parses the variable's text; throws an Error saying what was expected. */
  parse(text: string): T;
  /** Whether the value may be shown in a message (false for keys and URLs with passwords). */
  secret?: boolean;
}

/** A whole number within [min, max]. */
export function integer(
  env: string,
  about: string,
  fallback: number,
  min: number,
  max: number,
): SettingSpec<number> {
  return {
    env,
    about,
    default: fallback,
    parse(text) {
      const value = Number(text.trim());
      if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
        throw new Error(`a whole number from ${min} to ${max}`);
      }
      if (value < min || value > max) throw new Error(`a whole number from ${min} to ${max}`);
      return value;
    },
  };
}

/** A required text, e.g. a URL or a key. */
export function text(env: string, about: string, secret = false): SettingSpec<string> {
  return { env, about, secret, parse: (value) => value };
}

/**
 * What an endpoint's URL (a service's origin, to which requests go with a key) holds that
 * it must not, or undefined: a user name or password (sent nowhere, and the parser may
 * read a password with a `#` in it as the host and port: `http://admin:4242#pw@host`), a
 * query or a fragment (an address built as `${url}/functions/v1/x` puts its path inside
 * them), or a path.
 */
export function endpointProblem(url: URL): string | undefined {
  if (url.username !== "" || url.password !== "") return "has a user name or password";
  if (url.search !== "") return "has a query (?...)";
  if (url.hash !== "") return "has a fragment (#...)";
  // The path named, unless it holds an @: a password with a / in it, read as the path.
  if (url.pathname !== "/") {
    return url.pathname.includes("@") ? "has a path" : `has a path (${url.pathname})`;
  }
  return undefined;
}

/** An http(s) URL of an origin (no path, query or user), without a trailing slash. */
export function httpUrl(env: string, about: string): SettingSpec<string> {
  const wanted = "an http(s) URL, such as https://<project ref>.supabase.co";
  return {
    env,
    about,
    parse: (value) => {
      let url: URL;
      try {
        url = new URL(value.trim());
      } catch {
        throw new Error(wanted);
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        throw new Error(`${wanted} (not ${url.protocol})`);
      }
      const problem = endpointProblem(url);
      if (problem) throw new Error(`${wanted} (it ${problem})`);
      // The functions send a service key to this URL: to Supabase's hosts, never in the
      // clear (http stays for a gateway on this machine or a self-hosted network).
      if (url.protocol === "http:" && isSupabaseHost(url.hostname)) {
        throw new Error(`an https URL for Supabase's host ${url.hostname} (not http:)`);
      }
      return url.href.replace(/\/$/, "");
    },
  };
}

/**
 * `text` as a message may quote it: everything between a URL's scheme and its last `@`
 * written as `***`, whatever else is wrong with it. By the text, not by the URL parser,
 * which reads a password with a `#` or `/` in it (`ftp://admin:4242#pw@host`) as the
 * host, port and fragment, and finds no password to hide.
 */
export function withoutUserinfo(text: string): string {
  const at = text.lastIndexOf("@");
  if (at < 0) return text;
  const scheme = text.match(/^\s*[a-z][a-z0-9+.-]*:(\/\/)?/i)?.[0] ?? "";
  return `${scheme.trimStart()}***${text.slice(at)}`;
}

/**
 * `value`, the credential `name` (trimmed), refused when a character inside it cannot go
 * into an HTTP header (a line break or a space of a value pasted wrapped): fetch's own
 * refusal quotes the whole header, the credential in it, and such an error reaches logs,
 * answers and the sync's tables. Names the credential, never its value.
 */
export function headerSafe(name: string, value: string): string {
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new Error(
      `${name} holds a character no credential has (a line break or a space inside it, ` +
        "or one outside ASCII): set it again, whole, on one line",
    );
  }
  return value;
}

/** An optional text; empty when unset. */
export function optionalText(env: string, about: string): SettingSpec<string> {
  return { env, about, default: "", parse: (value) => value };
}

/** The settings' values, by the names they are declared under. */
export type Settings<S extends Record<string, SettingSpec<unknown>>> = {
  [K in keyof S]: S[K] extends SettingSpec<infer T> ? T : never;
};

/** Every bad setting of a function, one line each. */
export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`bad settings: ${problems.join("; ")}`);
    this.name = "SettingsError";
  }
}

/** Parses every setting of `specs` from `env`; throws one {@link SettingsError} for all problems. */
export function readSettings<S extends Record<string, SettingSpec<unknown>>>(
  env: EnvReader,
  specs: S,
): Settings<S> {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    const given = (name: string | undefined) => {
      const value = name === undefined ? undefined : env(name);
      return value === undefined || value.trim() === "" ? undefined : value;
    };
    const name = given(spec.env) !== undefined ? spec.env : spec.fallbackEnv ?? spec.env;
    const raw = given(name);
    if (raw === undefined) {
      const names = spec.fallbackEnv ? `${spec.env} (or ${spec.fallbackEnv})` : spec.env;
      if (spec.default === undefined) problems.push(`${names} is not set (${spec.about})`);
      else values[key] = spec.default;
      continue;
    }
    try {
      values[key] = spec.parse(raw);
    } catch (error) {
      const shown = spec.secret ? "(a secret, not shown)" : JSON.stringify(withoutUserinfo(raw));
      problems.push(`${name} is ${shown}; it must be ${(error as Error).message}`);
    }
  }
  if (problems.length === 0) problems.push(...platformProblems(values));
  if (problems.length > 0) throw new SettingsError(problems);
  return values as Settings<S>;
}

/**
 * What the platform settings say wrong together (each read well alone): a database of
 * another project than SUPABASE_URL's, whose rows the functions would write; a CA
 * certificate for sslmode=verify-full that is no PEM certificate (one set for another
 * sslmode is ignored, with a warning). Never a secret's value; a project ref is not one.
 */
function platformProblems(values: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const db = values.db as DbTarget | undefined;
  const supabaseUrl = values.supabaseUrl as string | undefined;
  if (db && supabaseUrl) {
    // Host names as db_url.ts reads them: lowercase, without a final dot.
    const project = new URL(supabaseUrl).hostname.replace(/\.$/, "")
      .match(/^([a-z0-9]{20})\.supabase\.(co|com)$/)?.[1];
    const dbProject = db.host.match(/^db\.([a-z0-9]{20})\.supabase\.(co|com)$/)?.[1] ??
      (isSupabaseHost(db.host)
        ? db.user.match(/^[^.]+\.([a-z0-9]{20})$/i)?.[1]?.toLowerCase()
        : undefined);
    if (project && dbProject && project !== dbProject) {
      problems.push(
        `SYNC_DB_URL (or SUPABASE_DB_URL) is project ${dbProject}'s database, but SUPABASE_URL ` +
          `is project ${project}: the functions would write into another project`,
      );
    }
  }
  // With verify-full the certificate is what the connection trusts: one that is no PEM
  // certificate would fail every connection, so it is refused here, named. Without it,
  // the certificate is not read (a deployment that set it works as it did): a warning.
  const ca = values.dbCaCert as string | undefined;
  if (db && ca) {
    const pem = ca.includes("-----BEGIN CERTIFICATE-----");
    if (db.tls === "verify-full" && !pem) {
      problems.push("SYNC_DB_CA_CERT is (a certificate, not shown); it must be a PEM certificate");
    } else if (db.tls !== "verify-full") {
      console.warn(
        `SYNC_DB_CA_CERT is set, but the database URL's sslmode is ${db.tls}: the certificate ` +
          "is used only with sslmode=verify-full, so it is ignored",
      );
    }
  }
  return problems;
}

/**
 * The database connection string (db_url.ts): `SYNC_DB_URL`, which may name Supabase's
 * transaction pooler (port 6543), else the `SUPABASE_DB_URL` that Supabase injects (the
 * direct connection). Secret: a message names the setting and the cause, never the value.
 */
export function dbUrl(): SettingSpec<DbTarget> {
  return {
    env: "SYNC_DB_URL",
    fallbackEnv: "SUPABASE_DB_URL",
    about: "the database's connection string",
    secret: true,
    parse: (text) => {
      const target = parseDbUrl(text);
      // Supavisor's session mode (port 5432 of the shared pooler) gives each client a
      // server connection of its own, "restricted to the 'Pool Size'" (15 on the smallest
      // plans, shared with the transaction port: supabase/supabase discussion 22305): a
      // few isolates' pools would take them all, from every other client too.
      if (isSupavisorHost(target.host) && target.port !== TRANSACTION_POOLER_PORT) {
        throw new Error(
          `the shared pooler's transaction mode, port ${TRANSACTION_POOLER_PORT} (it names ` +
            `port ${target.port} of ${target.host}, its session mode, which holds a server ` +
            "connection per client)",
        );
      }
      return target;
    },
  };
}

/**
 * What every function reads from the platform (Supabase injects these), and how it opens
 * its pool (sync_db.ts). The service keys are read by `acceptedServiceKeys`
 * (service_auth.ts), as there are two kinds.
 */
export const PLATFORM_SETTINGS = {
  db: dbUrl(),
  supabaseUrl: httpUrl("SUPABASE_URL", "the project's URL, to call functions"),
  // Each isolate holds its own pool, and a burst starts many isolates: 8 import-workers
  // (IMPORT_WORKER_MAX_CONCURRENT) with 10 connections each would be 80, more than a
  // Nano or Micro project's 60 direct connections, which PostgREST, Auth and Storage
  // share (https://supabase.com/docs/guides/platform/compute-and-disk). A run holds one
  // connection at a time (a page's transaction, after the page is mapped); an
  // import-worker isolate takes 8 runs at once (run_gate.ts), whose statements queue in
  // the driver for its 3 connections; a validator isolate 2 runs of 4 segments; the
  // webhook applies a batch in one transaction. More only queues in the pooler.
  dbPoolMax: integer(
    "SYNC_DB_POOL_MAX",
    "connections one isolate may hold at once",
    3,
    1,
    20,
  ),
  // Opening the connection: a database or pooler that does not answer in 10 s fails the
  // request (503), which is retried. A pooler takes its client at once and queues its
  // statements instead when no server connection is free; that wait is the pooler's
  // (Supavisor's checkout timeout, 60 s: README, "Connections: what to set, and why"),
  // not bounded by this.
  dbConnectTimeoutS: integer(
    "SYNC_DB_CONNECT_TIMEOUT_S",
    "seconds to wait for the database's or the pooler's connection to open before the request is refused (503)",
    10,
    1,
    60,
  ),
  // An idle isolate gives its connections back soon: it may live on for minutes.
  dbIdleTimeoutS: integer(
    "SYNC_DB_IDLE_TIMEOUT_S",
    "seconds an unused connection stays open",
    20,
    1,
    600,
  ),
  dbCaCert: optionalText(
    "SYNC_DB_CA_CERT",
    "the PEM certificate that signs the database's, for sslmode=verify-full",
  ),
  // The plan's wall clock for an Edge Function: 150 s on the Free plan, 400 s on paid
  // plans (https://supabase.com/docs/guides/functions/limits). An isolate takes requests
  // until half of it, so its runs' budgets end by it less a margin (function_settings.ts).
  wallClockS: integer(
    "SYNC_FUNCTION_WALL_CLOCK_S",
    "the plan's Edge Function wall clock in seconds (150 on Free, 400 on paid plans)",
    150,
    150,
    400,
  ),
};
