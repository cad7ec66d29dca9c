/**
 * How much CPU this isolate has used, so that a function can hand its work on before the
 * Edge Runtime stops it (docs/interfaces.md, "import-worker"; the limits are described in
 * local-stack/supabase/edge_limits.ts). The runtime counts CPU per isolate, not per
 * request: everything the isolate ran since it started, module evaluation included.
 *
 * Two meters:
 * - `process`: `process.cpuUsage()` from `node:process`, user + system of the process:
 *   plain Deno's, for the loaders an operator runs beside the database and the tests'
 *   drivers. The local stack's isolates get the hosted stub (below) from their shim
 *   (local-stack/supabase/edge_runtime_shim.ts), so they estimate as hosted ones do, under
 *   the gateway's real count of their CPU (the main thread's, as hosted counts it).
 * - `estimate`: on the hosted runtime `process.cpuUsage()` is a stub that answers
 *   `{ user: 0, system: 0 }` and warns on every call (supabase/edge-runtime,
 *   ext/node/polyfills/process.ts), and a user worker's `EdgeRuntime` has no metrics
 *   (`getRuntimeMetrics` is the main worker's only; ext/runtime/js/namespaces.js). So the
 *   meter estimates, on the safe side: the boot is the wall time from the isolate's time
 *   origin to the meter's creation (`performance.now()`; the isolate's one thread cannot
 *   have used more CPU than that), and each synchronous step the caller runs through
 *   {@link CpuMeter.measure} (a page's mapping and encoding) counts
 *   {@link ESTIMATE_FACTOR} times its wall time plus {@link STEP_OVERHEAD_MS}, for the
 *   page's work that it does not see: the Scan's request, the parse of its answer, the
 *   statement that writes the page.
 *
 * @module
 */

import process from "node:process";

/**
 * The estimating meter counts each measured step this many times over, for the work
 * around it that grows with the page (parsing the Scan's answer, sending the statement).
 * Measured on the local stack when its gateway counted the isolate's whole process (it
 * now counts the main thread, as hosted does: these allowances are the more generous):
 * pages of 1 MB cost 1.3 times their measured steps and 23 ms more each; with a factor of
 * 2 and no allowance per step, isolates that the estimate put at 1,040-1,050 ms had used
 * 1,290-1,390 ms. Over-counting only hands on earlier.
 */
export const ESTIMATE_FACTOR = 3;

/**
 * What each measured step counts besides its wall time: the fixed cost of the page's
 * round trips (signing and sending the Scan, reading its answer, the statements). Measured
 * on the local stack:
 * - import-worker pages of 15 items: 1.8 ms of CPU a page, of which the steps' wall time
 *   was 0.18 ms; without any allowance an isolate the estimate put at 440 ms had used
 *   1,960 ms, 40 ms from the hard limit;
 * - validator pages of 2 items (a Scan, then five statements in one transaction): 2.1 ms
 *   a page on a quiet machine, more on a busy one. With 1.5 ms the estimate read 1,077 ms
 *   when the isolate had used 1,681, and under npm test's load isolates were killed at
 *   2,000 ms while it read under 1,100. With 3 ms: 1,075 against 1,299; and a CI run's
 *   isolate under heavier load was killed while it read 1,102, so the validator now
 *   charges each page's transaction besides ({@link STATEMENT_CPU_MS}, validator_source.ts).
 * Pages of 1,000 items are unchanged by it (their steps dominate: 107 ms estimated
 * against 109 used).
 */
export const STEP_OVERHEAD_MS = 3;

/**
 * What a statement's round trip through postgres.js is charged on an estimating meter
 * ({@link CpuMeter.charge}) where it runs outside any measured step (a wait that looks at
 * a row again and again, a lease held while a Scan waits, a repair's look-up of a key): a
 * look at a running validation's record took 1.3–1.8 ms of CPU in plain Deno, the 2-core
 * machine.
 */
export const STATEMENT_CPU_MS = 3;

/**
 * The hosted runtime's CPU soft limit: an isolate past it is retired and is sent no new
 * request (supabase/edge-runtime: `SUPABASE_RESOURCE_LIMIT_CPU_SOFT_MS`, 1000, in
 * .cargo/config.toml; `early_retire_fn` in crates/base/src/worker/supervisor/
 * strategy_per_worker.rs, and the pool's `maybe_active_worker` skips retired workers).
 * Supabase documents no other value for any plan; a runtime with a higher one would
 * make {@link CpuMeter.aheadMs} too generous by the difference.
 */
export const RUNTIME_CPU_SOFT_LIMIT_MS = 1_000;

/**
 * What a request's arrival leaves of the soft limit's word: the runtime checks the limit
 * when a turn of the isolate's event loop ends and retires it after, so a request routed
 * during a long turn (a page's mapping, up to about 200 ms) may find the isolate past it
 * (locally the gateway reads the CPU every 25 ms, later on a loaded machine). An
 * estimate is taken to run ahead only by what it reads past the limit and this.
 */
export const ARRIVAL_SLACK_MS = 200;

/**
 * How far an estimate that reads `usedMs` when a request arrives is known to run ahead
 * of the isolate's real CPU (0 when it reads no more than the soft limit and the slack).
 */
export function aheadAtArrival(usedMs: number): number {
  return Math.max(0, usedMs - RUNTIME_CPU_SOFT_LIMIT_MS - ARRIVAL_SLACK_MS);
}

/** What a function knows of its isolate's CPU. */
export interface CpuMeter {
  /** Where the reading comes from. */
  readonly source: "process" | "estimate";
  /** The CPU the isolate has used so far, in ms, boot included. */
  usedMs(): number;
  /**
   * Says a request reached this isolate (call it first thing, {@link countingArrivals}):
   * the runtime routes requests only to an isolate under its CPU soft limit, so the
   * isolate had used little more than {@link RUNTIME_CPU_SOFT_LIMIT_MS} then
   * ({@link ARRIVAL_SLACK_MS}), whatever an estimate read.
   */
  requestArrived(): void;
  /**
   * How far the meter is known to run ahead of the isolate's real CPU
   * ({@link aheadAtArrival} of its reading when the latest request arrived; 0 for a
   * reading of the process, which is the real CPU). A limit of real CPU (the hard
   * limit's ceiling, a budget) is this much higher in the meter's terms. It rests on the
   * estimate counting at least the CPU the isolate used since that request, which is
   * what the estimate is made for (its factor and its allowance per step, on the safe
   * side) but not proven: the 300 ms under the hard limit that the callers' ceilings
   * keep is the margin for a page's CPU it misses.
   */
  aheadMs(): number;
  /** Runs a synchronous step (the estimating meter counts its wall time). */
  measure<T>(step: () => T): T;
  /**
   * Counts work whose CPU was measured beforehand and that no step shows (the estimating
   * meter adds `ms`; the process meter reads the CPU itself and ignores it): a unit of
   * work that is mostly awaiting, whose wall time says nothing of its CPU.
   */
  charge(ms: number): void;
}

/** A reading of `process.cpuUsage()`: microseconds. */
export type CpuUsage = () => { user: number; system: number };

/** The meter that reads the process's CPU. */
export function processMeter(cpuUsage: CpuUsage): CpuMeter {
  return {
    source: "process",
    usedMs() {
      const { user, system } = cpuUsage();
      return (user + system) / 1000;
    },
    measure: (step) => step(),
    charge: () => {},
    requestArrived: () => {},
    aheadMs: () => 0,
  };
}

/**
 * The meter that estimates: `now()` is ms since the isolate's time origin
 * (`performance.now()`); read once, at creation, it stands for the boot.
 */
export function estimatingMeter(
  now: () => number,
  factor = ESTIMATE_FACTOR,
  stepOverheadMs = STEP_OVERHEAD_MS,
): CpuMeter {
  const bootMs = now();
  let measuredMs = 0;
  let steps = 0;
  let chargedMs = 0;
  let aheadMs = 0;
  const usedMs = () => bootMs + factor * measuredMs + stepOverheadMs * steps + chargedMs;
  return {
    source: "estimate",
    usedMs,
    requestArrived() {
      // The estimate never goes down, so the latest arrival's word is the closest.
      aheadMs = aheadAtArrival(usedMs());
    },
    aheadMs: () => aheadMs,
    charge(ms) {
      chargedMs += ms;
    },
    measure(step) {
      const started = now();
      try {
        return step();
      } finally {
        measuredMs += now() - started;
        steps++;
      }
    },
  };
}

/**
 * The best meter this runtime allows: the process's CPU when `cpuUsage` gives a reading
 * (it has used some CPU by now: it booted), else the estimate. Create it once, at cold
 * start (the hosted stub warns on each call, so it is called only this once there).
 */
export function isolateCpuMeter(
  cpuUsage: CpuUsage = () => process.cpuUsage(),
  now: () => number = () => performance.now(),
): CpuMeter {
  let reading: { user: number; system: number } | undefined;
  try {
    reading = cpuUsage();
  } catch {
    reading = undefined;
  }
  if (reading && reading.user + reading.system > 0) return processMeter(cpuUsage);
  return estimatingMeter(now);
}

/**
 * The CPU a request may use, by the isolate's meter, even in an isolate already past its
 * budget, up to the caller's ceiling under the hard limit: the import-worker's runs and
 * the validator's requests each get this much (and still start a page only while it fits
 * under that ceiling). Their budget (above the runtime's 1,000 ms soft limit) is meant to
 * be reached after the runtime has retired the isolate, so that the hand-on goes to a
 * fresh one. An estimate that runs
 * ahead of the real CPU (on a busy machine a step's wall time is more than its CPU)
 * reaches the budget first, and the hand-on lands on this same isolate, not yet retired:
 * without a floor it found the budget spent and handed on at once, again and again
 * (`npm start`: 501 hand-ons, up to 173 requests an isolate, the backfill 35 s instead of
 * 28). With it every request makes progress, and the real CPU it adds gets the isolate
 * retired.
 */
export const REQUEST_CPU_FLOOR_MS = 100;

/**
 * A limit of the isolate's real CPU (a ceiling under the hard limit, a budget) in the
 * meter's terms: as far up as the meter is known to run ahead ({@link CpuMeter.aheadMs}).
 */
export function inMeterTerms(meter: CpuMeter, realMs: number): number {
  return realMs + meter.aheadMs();
}

/**
 * A request's CPU budget, in the meter's terms: the isolate's, or what the meter reads
 * now plus the floor, but no further than `ceilingMs`, the caller's ceiling for pages
 * under the hard limit; the budget and the ceiling each as far up as the meter is known
 * to run ahead ({@link CpuMeter.aheadMs}).
 */
export function requestCpuBudget(meter: CpuMeter, budgetMs: number, ceilingMs: number): number {
  return Math.max(
    inMeterTerms(meter, budgetMs),
    Math.min(meter.usedMs() + REQUEST_CPU_FLOOR_MS, inMeterTerms(meter, ceilingMs)),
  );
}

/**
 * `handler`, telling `meter` of each request's arrival before anything else runs
 * ({@link CpuMeter.requestArrived}). On a busy machine an estimate runs far ahead of the
 * real CPU (a step's wall time is more than its CPU, and a cold isolate's boot is counted
 * as its wall time): a CI run's validator isolates read 2,753 and 3,489 ms at their first
 * request, past the hard limit they had not reached, and with the floor above capped by
 * the ceiling under the hard limit, every request found its budget spent and handed on,
 * to the same isolate, without reading a page (a validation and a backfill stood still
 * for minutes). Taking the arrival as the runtime's word that the isolate is under its
 * soft limit (and the slack), each request has room for its floor.
 */
export function countingArrivals<R>(
  meter: CpuMeter,
  handler: (req: Request) => R,
): (req: Request) => R {
  return (req) => {
    meter.requestArrived();
    return handler(req);
  };
}
