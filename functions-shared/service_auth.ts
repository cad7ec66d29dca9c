/**
 * Authentication of internal callers (pg_cron through pg_net, operators' scripts): a
 * service key as `Authorization: Bearer <key>` (or in the `apikey` header, as Supabase's
 * API gateway takes its new keys), compared in constant time with every accepted key.
 *
 * The accepted keys are the legacy `SUPABASE_SERVICE_ROLE_KEY` and the new secret keys
 * (`sb_secret_...`) that Supabase injects as `SUPABASE_SECRET_KEYS`, "the secret keys
 * JSON dictionary" (https://supabase.com/docs/guides/functions/secrets): a JSON object of
 * key name to key. Legacy keys are deprecated by the end of 2026
 * (https://supabase.com/docs/guides/getting-started/migrating-to-new-api-keys), so either
 * kind works and callers can move one at a time.
 *
 * pg_cron's calls carry a key's wake key for the hour instead ({@link wakeKeyOf}): what
 * they queue with pg_net is readable by every role of a hosted database. A function that
 * pg_cron wakes takes it ({@link internalCaller}) for that alone, and only near its hour.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type EnvReader, headerSafe } from "./settings.ts";

/** Whether two strings are equal, taking the same time wherever they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * The service keys a function accepts: the secret keys of `SUPABASE_SECRET_KEYS` and the
 * legacy `SUPABASE_SERVICE_ROLE_KEY`, blank ones left out. Throws, naming the setting
 * (never a value), when `SUPABASE_SECRET_KEYS` is not a JSON object of strings, or a key
 * holds a character no HTTP header may carry (a key pasted wrapped: every call the
 * function makes to itself with it would fail, fetch quoting the key in its error).
 */
export function acceptedServiceKeys(env: EnvReader): string[] {
  const keys: string[] = [];
  const secretKeys = env("SUPABASE_SECRET_KEYS")?.trim();
  if (secretKeys) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(secretKeys);
    } catch {
      throw new Error("SUPABASE_SECRET_KEYS is not JSON (a JSON object of key name to key)");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error("SUPABASE_SECRET_KEYS must be a JSON object of key name to key");
    }
    for (const [name, key] of Object.entries(parsed)) {
      if (typeof key !== "string") {
        throw new Error(`SUPABASE_SECRET_KEYS.${name} must be a string key`);
      }
      if (key.trim() !== "") keys.push(headerSafe(`SUPABASE_SECRET_KEYS.${name}`, key.trim()));
    }
  }
  const legacy = env("SUPABASE_SERVICE_ROLE_KEY")?.trim();
  if (legacy) keys.push(headerSafe("SUPABASE_SERVICE_ROLE_KEY", legacy));
  return keys;
}

/** The hour a wake key is made for: Unix time in whole hours, as `sync.wake_hour()`. */
export function wakeHourOf(nowMs: number): number {
  return Math.floor(nowMs / 3_600_000);
}

/**
 * The wake key of a service key for an hour ({@link wakeHourOf}): `sync_wake_<hour>_` and
 * the hex SHA-256 of `dynamo-supabase-sync wake:<hour>:` followed by the key, as
 * `sync.wake_key` makes it for pg_cron's calls (20261128004500_wake_keys.sql). The key
 * cannot be found from it.
 */
export function wakeKeyOf(serviceKey: string, hour: number): string {
  const digest = createHash("sha256").update(
    `dynamo-supabase-sync wake:${hour}:${serviceKey}`,
    "utf8",
  );
  return `sync_wake_${hour}_${digest.digest("hex")}`;
}

/**
 * How many hours from the current one a wake key's hour may be: the one before (a call
 * queued at the end of an hour and sent in the next) and the one after (the database's
 * clock a few seconds ahead). A wake key read from pg_net's queue is refused two hours
 * after it was made, at most.
 */
export const WAKE_KEY_HOURS_AROUND = 1;

/** Who called a function that pg_cron wakes: a service key's holder, or pg_cron. */
export type CallerKind = "service" | "wake";

/** The caller, or why it was refused. */
export type InternalCaller = { caller: CallerKind } | { problem: string };

/**
 * Checks that `req` carries an accepted service key or the wake key of one for an hour
 * within {@link WAKE_KEY_HOURS_AROUND} of `nowMs`'s (pg_cron's calls); the problem for a
 * 401 otherwise, as {@link serviceRoleProblem} says it. The caller decides what a wake key
 * may ask for.
 */
export function internalCaller(
  req: Request,
  accepted: string | readonly string[] | undefined,
  nowMs = Date.now(),
): InternalCaller {
  const keys = [accepted ?? []].flat().filter((key) => key.trim() !== "");
  const asService = serviceRoleProblem(req, keys);
  if (asService === undefined) return { caller: "service" };
  const token = bearerOf(req);
  if (keys.length === 0 || !token?.startsWith("sync_wake_")) return { problem: asService };
  const hour = Number(token.match(/^sync_wake_(\d{1,15})_[0-9a-f]{64}$/)?.[1] ?? NaN);
  if (!Number.isSafeInteger(hour)) {
    return { problem: "Authorization is a wake key of another form than sync.wake_key's" };
  }
  const current = wakeHourOf(nowMs);
  if (Math.abs(hour - current) > WAKE_KEY_HOURS_AROUND) {
    return {
      problem: `Authorization is a wake key for hour ${hour}, more than ` +
        `${WAKE_KEY_HOURS_AROUND} h from this one (${current}): expired, or a clock is off`,
    };
  }
  return serviceRoleProblem(req, keys.map((key) => wakeKeyOf(key, hour))) === undefined
    ? { caller: "wake" }
    : { problem: "Authorization is not a service key of this project, nor its wake key" };
}

/** The token of `Authorization: Bearer <token>`, or of the `apikey` header. */
function bearerOf(req: Request): string | undefined {
  return req.headers.get("authorization")?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim() ??
    req.headers.get("apikey")?.trim();
}

/**
 * Checks that `req` carries an accepted service key. Returns undefined when it does, or
 * the reason it does not (for a 401 answer).
 *
 * Fails closed: with no key configured (unset, empty or blank) every request is
 * refused, whatever it carries; no key is ever part of the reason.
 */
export function serviceRoleProblem(
  req: Request,
  accepted: string | readonly string[] | undefined,
): string | undefined {
  const keys = [accepted ?? []].flat().filter((key) => key.trim() !== "");
  if (keys.length === 0) {
    return "the function has no SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY to check against";
  }
  const token = bearerOf(req);
  if (!token) {
    return "missing Authorization header: send `Bearer <secret key or service role key>`";
  }
  // Every key is compared, so the time taken does not tell which one came close.
  let matched = false;
  for (const key of keys) matched = constantTimeEqual(token, key) || matched;
  return matched ? undefined : "Authorization is not a service key of this project";
}
