/**
 * What a validation request works with and within: its dependencies
 * ({@link ValidatorDeps}), and its budget (the isolate's CPU, the request's wall time,
 * its pages), with the caps on the keys a run looks at again and repairs one by one.
 * Every step of a run (validator_source.ts, validator_compare.ts, validator_looks.ts,
 * validator_repair.ts) takes these deps; the run itself is checksum_validator.ts's.
 *
 * @module
 */

import type postgres from "postgres";
import { type CpuMeter, requestCpuBudget } from "./cpu_meter.ts";
import type { DynamoClient } from "./dynamo_http.ts";
import type { IsolatePages } from "./isolate_pages.ts";
import type { PacingDeps } from "./scan_pacing.ts";
import { MAX_KEYS_READ } from "./validator_compare.ts";

/**
 * How far past the CPU budget the pages a request has in flight may take its isolate:
 * 1.4 × the default 1.1 s budget is 1.54 s, a margin of 0.46 s under the hosted 2 s hard
 * limit (docs/interfaces.md, "The local stack").
 */
export const IN_FLIGHT_CEILING = 1.4;

/**
 * The CPU, by the isolate's meter, at which a request's budget is spent: its own
 * (`requestCpuMs`, set when it starts: {@link withRequestCpuBudget}) or else the budget's.
 */
export function requestCpuMs(budget?: { cpuMs: number; requestCpuMs?: number }): number {
  return budget?.requestCpuMs ?? budget?.cpuMs ?? Infinity;
}

/**
 * The most divergent keys a run repairs one by one (each is a point read of the source
 * and a little CPU, all in one step, which cannot hand on). Past it a repair queues a
 * backfill of the table, which is resumable and ends equal (docs/sync-semantics.md).
 */
export const MAX_KEYS_BY_KEY = 200;

/**
 * The most divergent keys a run looks at again before it reports them. A look is read in
 * checkpointed chunks that hand on between requests, paced to the table's read budget,
 * so it may take many more keys than a repair: a long Scan of a busy table finds every
 * key changed after its page was read divergent (a visitor's new observation, an item
 * created behind the Scan), and those settle when read again. Capped at 200 with the
 * repairs, they made the run report a mismatch, and a repair queue a full backfill.
 */
export const MAX_KEYS_LOOKED = 5_000;

/**
 * The keys repaired one by one: never more than a request reads of a run's lists
 * (validator_compare.ts, MAX_KEYS_READ), or those past it would be dropped.
 */
export function keysByKey(deps: ValidatorDeps): number {
  return Math.min(deps.maxKeysByKey ?? MAX_KEYS_BY_KEY, MAX_KEYS_READ);
}

/** The keys looked at again: as many as a request reads of a run's lists at most. */
export function keysLooked(deps: ValidatorDeps): number {
  return Math.min(deps.maxKeysLooked ?? MAX_KEYS_LOOKED, MAX_KEYS_READ);
}

/** What the validator needs. */
export interface ValidatorDeps {
  sql: postgres.Sql;
  dynamo: (region: string) => DynamoClient;
  segments?: number;
  /** Segments of a run scanned at once in one request (4; validator_source.ts). */
  segmentsAtOnce?: number;
  pageSize?: number;
  /** Overrides {@link MAX_KEYS_BY_KEY} (tests). */
  maxKeysByKey?: number;
  /** Overrides {@link MAX_KEYS_LOOKED} (tests). */
  maxKeysLooked?: number;
  /** Pause before looking again at keys that differ (changes in flight settle). */
  settleMs?: number;
  /**
   * Waits out that pause (a timer when absent); the endpoint's gives up the run's place
   * at the isolate's gate meanwhile (run_gate.ts, `pausedAt`).
   */
  pause?: (ms: number) => Promise<void>;
  /**
   * The request's budget: hand on once the isolate's CPU (boot included) or this
   * request's wall time reaches it, or after this many Scan pages; the run then goes on
   * in another request.
   */
  budget?: {
    cpuMs: number;
    wallMs: number;
    pages?: number;
    /**
     * The request's own CPU budget, set once when it starts (`requestCpuBudget`,
     * cpu_meter.ts): `cpuMs`, or more in an isolate its meter already puts past it.
     */
    requestCpuMs?: number;
  };
  /**
   * The isolate's CPU (functions-shared/cpu_meter.ts): the budget's cpuMs is counted on
   * it when given (the Edge Runtime counts CPU per isolate, boot included), else on the
   * mapping steps alone.
   */
  cpu?: CpuMeter;
  /**
   * The pages in flight of every request of this isolate (isolate_pages.ts): a page starts
   * only while all of them together stay within the ceiling past the budget. One per
   * isolate (the function's module); a request alone counts only its own when absent.
   */
  isolatePages?: IsolatePages;
  /**
   * Read capacity units per second the validator may use of a table, shared by its
   * segments (VALIDATOR_MAX_RCU_PER_SECOND): the tables belong to the applications.
   */
  maxRcuPerSecond?: number;
  /**
   * Whether the run's Scan reads consistently (default false: eventually consistent, half
   * the read units; every key that differs is read again consistently before it is
   * reported, validator_source.ts).
   */
  consistentScan?: boolean;
  /** Clock and randomness of the pacing and retries (tests replace them). */
  pacing?: PacingDeps;
  log?: (line: string) => void;
}

/**
 * `deps` with the request's own CPU budget, unless it has one already (a repair validates
 * again within the same request, and gets no second floor).
 */
export function withRequestCpuBudget(deps: ValidatorDeps): ValidatorDeps {
  const budget = deps.budget;
  if (!budget || !deps.cpu || budget.requestCpuMs !== undefined) return deps;
  const ownMs = requestCpuBudget(deps.cpu, budget.cpuMs, budget.cpuMs * IN_FLIGHT_CEILING);
  return { ...deps, budget: { ...budget, requestCpuMs: ownMs } };
}

/**
 * Makes the request's budget check: CPU (the isolate's when metered, with the request's
 * floor: cpu_meter.ts, `requestCpuBudget`), wall time, pages. It answers whether the
 * budget is spent, and counts a page each time it is not.
 */
export function budgetCheck(deps: ValidatorDeps, startedAt: number): () => boolean {
  const budget = deps.budget;
  const spent = timeSpent(deps, startedAt);
  let pages = 0;
  return () => {
    if (budget === undefined) return false;
    if (spent()) return true;
    if (budget.pages !== undefined && pages >= budget.pages) return true;
    pages++;
    return false;
  };
}

/** Whether the request's CPU or wall budget is spent (its pages not counted). */
export function timeSpent(deps: ValidatorDeps, startedAt: number): () => boolean {
  const budget = deps.budget;
  const cpuBudgetMs = requestCpuMs(budget);
  return () =>
    budget !== undefined &&
    ((deps.cpu?.usedMs() ?? 0) >= cpuBudgetMs || performance.now() - startedAt >= budget.wallMs);
}

/** Runs a synchronous step on the isolate's meter when there is one (cpu_meter.ts). */
export function onMeter<T>(deps: Pick<ValidatorDeps, "cpu">, step: () => T): T {
  return deps.cpu ? deps.cpu.measure(step) : step();
}
