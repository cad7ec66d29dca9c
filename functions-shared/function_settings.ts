/**
 * Each Edge Function's settings, declared once with their environment variables, defaults
 * and bounds (read by settings.ts's `readSettings` at cold start): the platform's, which
 * every function reads, and each function's own; and how long a run of a function may go
 * on in an isolate near the end of its wall clock.
 *
 * @module
 */

import { integer, PLATFORM_SETTINGS } from "./settings.ts";

/**
 * How long before its wall clock an isolate's runs hand on. The Edge Runtime retires an
 * isolate at half its wall clock (no new requests) and kills it at the limit, with
 * whatever it still runs: 150 s on the Free plan, 400 s on paid plans
 * (https://supabase.com/docs/guides/functions/limits; `SYNC_FUNCTION_WALL_CLOCK_S`). A
 * run that arrived just before the retirement must end well before the kill, its last
 * page (paced to the read budget, throttled and retried) included.
 */
export const RUNS_END_BEFORE_WALL_CLOCK_MS = 40_000;

/** The isolate age by which its runs hand on, for a plan's wall clock of `wallClockS`. */
export function runsEndByIsolateAgeMs(wallClockS: number): number {
  return wallClockS * 1000 - RUNS_END_BEFORE_WALL_CLOCK_MS;
}

/** When this module was loaded: the isolate's start, near enough (its boot before it). */
const ISOLATE_LOADED_AT = performance.now();

/**
 * A run's wall budget: its setting, or less when the isolate is near the end of its wall
 * clock, `wallClockS` (at least 1 s: a run that starts then scans a page and hands on).
 * On a paid plan's 400 s an isolate takes requests for 200 s: with the Free plan's
 * cut-off there, its runs from 110 s on had 1 s each, and handed on to requests that
 * landed on it again.
 */
export function runWallBudgetMs(
  settingMs: number,
  wallClockS: number,
  ageMs = performance.now() - ISOLATE_LOADED_AT,
): number {
  return Math.max(1_000, Math.min(settingMs, runsEndByIsolateAgeMs(wallClockS) - ageMs));
}

/** The import-worker's settings and their defaults (docs/interfaces.md, "import-worker"). */
export const IMPORT_WORKER_SETTINGS = {
  ...PLATFORM_SETTINGS,
  // The isolate's CPU, boot and every request included, at which a run hands on. Above
  // the runtime's 1,000 ms soft limit on purpose: by then the isolate is retired, so the
  // run it wakes lands on a fresh isolate (under the soft limit it would land on this
  // one, already spent, and hand on again and again); pages start only while they fit
  // under CPU_PAGE_CEILING_MS (backfill_worker.ts), 300 ms below the 2,000 ms hard limit,
  // whatever run they belong to.
  cpuBudgetMs: integer(
    "IMPORT_WORKER_CPU_BUDGET_MS",
    "the isolate's CPU (boot included) at which a run hands on",
    1_100,
    50,
    1_900,
  ),
  // An isolate is retired at half its wall clock (75 s of the Free plan's 150 s) and
  // killed at the limit: a run's budget is also cut to end by runsEndByIsolateAgeMs.
  wallBudgetMs: integer(
    "IMPORT_WORKER_WALL_BUDGET_MS",
    "wall time per request before it hands on",
    60_000,
    1_000,
    400_000,
  ),
  maxConcurrent: integer(
    "IMPORT_WORKER_MAX_CONCURRENT",
    "segments scanned at once, across requests",
    8,
    1,
    64,
  ),
  // A paced segment mostly waits for its turn (scan_pacing.ts), so a run may scan several
  // at once. Off (1) by default: every hand-on starts their pacing afresh, so their first
  // pages reach the table together and are throttled, and the pages in flight that the
  // budget must count make a run hand on early (README, "Where the time goes").
  segmentsPerRun: integer(
    "IMPORT_WORKER_SEGMENTS_PER_RUN",
    "segments one run scans at once (their pages' CPU adds up in the isolate)",
    1,
    1,
    32,
  ),
  // Each run is one paced segment, mostly waiting; the budget check counts the pages the
  // isolate's runs have in flight (pages_in_flight.ts), so its runs cannot pass the 2 s
  // hard limit together. As many as IMPORT_WORKER_MAX_CONCURRENT's default:
  // the gateway sends a function's requests to its one current isolate, and with four
  // places a second table's hand-ons were declined while four runs of the first waited
  // on a slow DynamoDB (README, "`npm start`").
  runsPerIsolate: integer(
    "IMPORT_WORKER_RUNS_PER_ISOLATE",
    "runs one isolate takes on at once (their CPU adds up in the isolate; run_gate.ts)",
    8,
    1,
    8,
  ),
  maxRcuPerSecond: integer(
    "IMPORT_WORKER_MAX_RCU_PER_SECOND",
    "read capacity units per second a backfill may use of a table, shared by its segments",
    250,
    1,
    1_000_000,
  ),
};

/** The checksum validator's settings and their defaults. */
export const VALIDATOR_SETTINGS = {
  ...PLATFORM_SETTINGS,
  cpuBudgetMs: integer(
    "VALIDATOR_CPU_BUDGET_MS",
    "the isolate's CPU (boot included) at which a run hands on (as the import-worker's)",
    1_100,
    50,
    1_900,
  ),
  wallBudgetMs: integer(
    "VALIDATOR_WALL_BUDGET_MS",
    "wall time per request before it hands on",
    60_000,
    1_000,
    400_000,
  ),
  settleMs: integer(
    "VALIDATOR_SETTLE_MS",
    "how long a divergent key is left to settle before it is read again",
    1_000,
    0,
    60_000,
  ),
  // A validator request scans several segments at once (4, validator_source.ts), and every
  // hand-on lands a request on the newest isolate: without a limit, four requests (of two
  // segments each, then) shared one isolate and took it to 1,800 ms of CPU, near the
  // 2,000 ms kill. Two: the daily validation starts two runs at once
  // (`validation_concurrency`), which took turns in an isolate of one place, each leaving
  // its table's read budget unused meanwhile; the pages the two have in flight are counted
  // together (isolate_pages.ts), so the isolate stays within the same ceiling as with one.
  runsPerIsolate: integer(
    "VALIDATOR_RUNS_PER_ISOLATE",
    "requests one isolate works on at once (their CPU adds up in the isolate; run_gate.ts)",
    2,
    1,
    8,
  ),
  maxRcuPerSecond: integer(
    "VALIDATOR_MAX_RCU_PER_SECOND",
    "read capacity units per second a validation may use of a table, shared by its segments",
    250,
    1,
    1_000_000,
  ),
};

/** The lost-record check's settings (docs/interfaces.md, "stream-check"). */
export const STREAM_CHECK_SETTINGS = {
  ...PLATFORM_SETTINGS,
  // A run's own allowance, each page of a stream charged (stream_check_run.ts): the
  // runtime retires an isolate at its 1,000 ms soft limit, and what a run started before
  // then adds, with a page past its allowance, must stay under the 2,000 ms hard limit.
  runCpuMs: integer(
    "STREAM_CHECK_RUN_CPU_MS",
    "the CPU a run may use, by the isolate's meter, before it reads no further page",
    600,
    50,
    900,
  ),
  // Cut to end by runsEndByIsolateAgeMs too: hand-ons may land on the same isolate.
  wallBudgetMs: integer(
    "STREAM_CHECK_WALL_BUDGET_MS",
    "wall time per run after which it reads no further page",
    60_000,
    1_000,
    400_000,
  ),
};

/** The write-back's settings (docs/interfaces.md, "write-back"). */
export const WRITE_BACK_SETTINGS = {
  ...PLATFORM_SETTINGS,
  // Well under the Free plan's 150 s wall clock (https://supabase.com/docs/guides/functions/limits):
  // what is still due then is taken by the next call (the pg_cron sweep, every 10 s).
  wallBudgetMs: integer(
    "WRITE_BACK_WALL_BUDGET_MS",
    "wall time per request after which no further write-back is claimed",
    20_000,
    1_000,
    100_000,
  ),
  // A run's own allowance, each edit charged (write_back_run.ts): an isolate admits two
  // runs, and what they add once the runtime retires it at its 1,000 ms soft limit must
  // stay under the 2,000 ms hard limit (write_back_requests.ts).
  runCpuMs: integer(
    "WRITE_BACK_RUN_CPU_MS",
    "the CPU a write-back run may use, by the isolate's meter, before it hands on",
    300,
    50,
    450,
  ),
};
