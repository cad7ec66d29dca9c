/**
 * `DYNAMODB_FAULTS`: how much stricter than DynamoDB Local the stack's DynamoDB proxy is
 * (local-stack/aws/proxy.ts; README, "The local stack"). A comma-separated list of
 * `name=value` settings, parsed and validated once when the proxy starts:
 *
 * - `stale_ms`: reads without `ConsistentRead` may see each item as it was up to this many
 *   milliseconds ago (AWS: "the response might not reflect the results of a recently
 *   completed write operation", Developer Guide, "DynamoDB read consistency").
 * - `throttle_rcu`: read capacity units per second per table; reads beyond it get
 *   ProvisionedThroughputExceededException.
 * - `burst_s`: the seconds of unused capacity a table keeps, for reads and writes: 1 by
 *   default (the contract's per-second rule, stricter than AWS), up to AWS's 300
 *   (local-stack/aws/capacity.ts).
 * - `throttle_wcu`: write capacity units per second per table, counted and refused as AWS
 *   does (local-stack/aws/write_capacity.ts). Off by default: the sync writes only an
 *   admin's edits (the write-back, whose end-to-end test turns it on), the demo data set is
 *   loaded past the proxy as an import from S3 is, and the tests' own bulk loads would
 *   only be paced by it.
 * - `error_rate`: the share of requests (0 to 1) answered with InternalServerError.
 * - `latency_ms`: milliseconds each DynamoDB request waits before the proxy takes it up:
 *   the network between a Supabase project and AWS, which the loopback does not have
 *   (DynamoDB Streams' requests pass through, as the other faults leave them). Off by
 *   default, as the contract's default faults have it; `dynamodb_faults_test.ts` runs a
 *   backfill with it on.
 * - `stall_rate` and `stall_ms`: a share of DynamoDB (not Streams) requests (0 to 1, 0 by
 *   default) hangs `stall_ms` milliseconds: a read before it is forwarded, a write after
 *   (it has taken effect; its answer is held), so that a client that gives up and retries
 *   sends again a write that already happened. AWS documents "intermittent connection
 *   timeout or request timeout errors" and latency spikes, and has clients tune their
 *   request timeouts and retries for them (Knowledge Center,
 *   https://repost.aws/knowledge-center/dynamodb-intermittent-timeout-errors and
 *   https://repost.aws/knowledge-center/dynamodb-high-latency). Off by default, so that the
 *   default run stays fast; each needs the other (local-stack/aws/stalls.ts).
 *
 * An empty value, or `none`, means no faults: the proxy passes reads and writes through.
 *
 * @module
 */

/** The faults the proxy injects; 0 turns each off. */
export interface Faults {
  staleMs: number;
  throttleRcu: number;
  throttleWcu: number;
  burstS: number;
  errorRate: number;
  latencyMs: number;
  stallRate: number;
  stallMs: number;
}

/** No faults at all. */
export const NO_FAULTS: Faults = {
  staleMs: 0,
  throttleRcu: 0,
  throttleWcu: 0,
  burstS: 1,
  errorRate: 0,
  latencyMs: 0,
  stallRate: 0,
  stallMs: 0,
};

/** A fault setting of a list such as `DYNAMODB_FAULTS`: the field it sets, its check, its rule. */
export interface FaultSetting<F> {
  field: keyof F;
  check: (n: number) => boolean;
  rule: string;
}

/**
 * Sets the `name=value` pairs of `text` (the variable `variable`'s value) over `faults`,
 * by `settings`; answers the names given. Throws an error naming the variable, the
 * setting and the bad value.
 */
export function setFaultPairs<F>(
  variable: string,
  text: string | undefined,
  settings: Record<string, FaultSetting<F>>,
  faults: F,
): Set<string> {
  const seen = new Set<string>();
  for (const part of (text ?? "").split(",")) {
    const entry = part.trim();
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    const name = (eq < 0 ? entry : entry.slice(0, eq)).trim();
    const value = eq < 0 ? "" : entry.slice(eq + 1).trim();
    const setting = settings[name];
    if (!setting) {
      throw new Error(
        `${variable}: unknown setting ${JSON.stringify(name)} in ${JSON.stringify(text)}; ` +
          `known: ${Object.keys(settings).join(", ")}`,
      );
    }
    if (seen.has(name)) throw new Error(`${variable}: ${name} is given twice`);
    seen.add(name);
    const number = value === "" ? NaN : Number(value);
    if (!setting.check(number)) {
      throw new Error(`${variable}: ${name}=${JSON.stringify(value)} is not ${setting.rule}`);
    }
    (faults as Record<keyof F, number>)[setting.field] = number;
  }
  return seen;
}

const SETTINGS: Record<string, FaultSetting<Faults>> = {
  stale_ms: {
    field: "staleMs",
    check: (n) => Number.isInteger(n) && n >= 0 && n <= 600_000,
    rule: "a whole number of milliseconds from 0 to 600000",
  },
  throttle_rcu: {
    field: "throttleRcu",
    check: (n) => Number.isFinite(n) && n >= 0 && n <= 1_000_000,
    rule: "a number of read capacity units per second from 0 (off) to 1000000",
  },
  throttle_wcu: {
    field: "throttleWcu",
    check: (n) => Number.isFinite(n) && n >= 0 && n <= 1_000_000,
    rule: "a number of write capacity units per second from 0 (off) to 1000000",
  },
  burst_s: {
    field: "burstS",
    check: (n) => Number.isInteger(n) && n >= 1 && n <= 300,
    rule: "a whole number of seconds of unused capacity a table keeps, from 1 to 300",
  },
  error_rate: {
    field: "errorRate",
    check: (n) => Number.isFinite(n) && n >= 0 && n < 1,
    rule: "a share of requests from 0 up to (not including) 1",
  },
  latency_ms: {
    field: "latencyMs",
    check: (n) => Number.isInteger(n) && n >= 0 && n <= 10_000,
    rule: "a whole number of milliseconds from 0 to 10000",
  },
  stall_rate: {
    field: "stallRate",
    check: (n) => Number.isFinite(n) && n >= 0 && n < 1,
    rule: "a share of requests from 0 up to (not including) 1",
  },
  stall_ms: {
    field: "stallMs",
    check: (n) => Number.isInteger(n) && n >= 1 && n <= 600_000,
    rule: "a whole number of milliseconds from 1 to 600000",
  },
};

/**
 * Parses `DYNAMODB_FAULTS` (e.g. `stale_ms=2000,throttle_rcu=300,error_rate=0.02`); throws
 * an error naming the setting and the bad value, so that `stack:up` fails clearly.
 */
export function parseFaults(text: string | undefined): Faults {
  const faults = { ...NO_FAULTS };
  if ((text ?? "").trim() === "none") return faults;
  const seen = setFaultPairs("DYNAMODB_FAULTS", text, SETTINGS, faults);
  // A stall needs both: a share of requests, and how long each hangs.
  if (faults.stallRate > 0 && !seen.has("stall_ms")) {
    throw new Error(
      `DYNAMODB_FAULTS: stall_rate=${faults.stallRate} needs stall_ms, how long a stalled ` +
        "request hangs (e.g. stall_ms=35000)",
    );
  }
  if (seen.has("stall_ms") && faults.stallRate === 0) {
    throw new Error(
      `DYNAMODB_FAULTS: stall_ms=${faults.stallMs} stalls nothing without stall_rate, the ` +
        "share of requests that stall (e.g. stall_rate=0.05)",
    );
  }
  return faults;
}

/** The canonical text of a set of faults (what `stack:up` logs). */
export function describeFaults(faults: Faults): string {
  const parts = [];
  if (faults.staleMs > 0) parts.push(`stale_ms=${faults.staleMs}`);
  if (faults.throttleRcu > 0) parts.push(`throttle_rcu=${faults.throttleRcu}`);
  if (faults.throttleWcu > 0) parts.push(`throttle_wcu=${faults.throttleWcu}`);
  if (faults.burstS !== 1) parts.push(`burst_s=${faults.burstS}`);
  if (faults.errorRate > 0) parts.push(`error_rate=${faults.errorRate}`);
  if (faults.latencyMs > 0) parts.push(`latency_ms=${faults.latencyMs}`);
  if (faults.stallRate > 0) parts.push(`stall_rate=${faults.stallRate},stall_ms=${faults.stallMs}`);
  return parts.length > 0 ? parts.join(",") : "none";
}
