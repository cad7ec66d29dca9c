/**
 * How much CPU this isolate has used, so that a function can hand its work on before the
 * Edge Runtime stops it (docs/interfaces.md, "import-worker"; the limits are described in
 * local-stack/supabase/edge_limits.ts). The runtime counts CPU per isolate, not per
 * request: everything the isolate ran since it started, module evaluation included.
 *
 * Two meters:
 * - `process`: `process.cpuUsage()` from `node:process`, user + system of the process. In
 *   Deno (the local stack) that is exactly what the local gateway counts, boot included.
 * - `estimate`: on the hosted runtime `process.cpuUsage()` is a stub that answers
 *   `{ user: 0, system: 0 }` and warns on every call (supabase/edge-runtime,
 *   ext/node/polyfills/process.ts), and a user worker's `EdgeRuntime` has no metrics
 *   (`getRuntimeMetrics` is the main worker's only; ext/runtime/js/namespaces.js). So the
 *   meter estimates, on the safe side: the boot is the wall time from the isolate's time
 *   origin to the meter's creation (`performance.now()`; the isolate's one thread cannot
 *   have used more CPU than that), and each synchronous step the caller runs through
 *   {@link CpuMeter.measure} counts {@link ESTIMATE_FACTOR} times its wall time, to cover
 *   the work around it that is not measured (parsing the Scan's response, encoding the
 *   merge's parameters).
 *
 * @module
 */

import process from "node:process";

/**
 * The estimating meter counts each measured step this many times over, for the work
 * around it that it does not see. A choice on the safe side, not a measurement of the
 * hosted runtime (which gives none): over-counting only hands on earlier.
 */
export const ESTIMATE_FACTOR = 2;

/** What a function knows of its isolate's CPU. */
export interface CpuMeter {
  /** Where the reading comes from. */
  readonly source: "process" | "estimate";
  /** The CPU the isolate has used so far, in ms, boot included. */
  usedMs(): number;
  /** Runs a synchronous step (the estimating meter counts its wall time). */
  measure<T>(step: () => T): T;
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
  };
}

/**
 * The meter that estimates: `now()` is ms since the isolate's time origin
 * (`performance.now()`); read once, at creation, it stands for the boot.
 */
export function estimatingMeter(now: () => number, factor = ESTIMATE_FACTOR): CpuMeter {
  const bootMs = now();
  let measuredMs = 0;
  return {
    source: "estimate",
    usedMs: () => bootMs + factor * measuredMs,
    measure(step) {
      const started = now();
      try {
        return step();
      } finally {
        measuredMs += now() - started;
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
