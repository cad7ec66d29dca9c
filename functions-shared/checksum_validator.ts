/**
 * The checksum validator: proves, key by key, that a target table equals the projection
 * of its DynamoDB table (docs/sync-semantics.md, "Verification").
 *
 * 1. A parallel Scan of the source, eventually consistent (half the read units); every
 *    item mapped through the same registry and transformers as the sync; each page's
 *    expected rows staged in Postgres (`sync.stage_checksum_items`), so memory stays at
 *    a page.
 * 2. Postgres reduces both sides through one canonical form and compares them key by
 *    key: a plain table's page as it is read (`sync.check_checksum_page`), a collapsed
 *    table's staged rows after the Scan, slice by slice of keys
 *    (`sync.compare_checksum_range`); then the target's keys the Scan never read:
 *    missing, unexpected and different keys.
 * 3. Changes in flight: a key that differs is looked at again after a settle pause, with
 *    a fresh consistent point read of the source (GetItem, or Query for a collapsed
 *    table), up to three times, and is reported only if it differs every time. A key
 *    that was merely in flight (its change on its way through the stream), or that the
 *    eventually consistent Scan read stale, is not reported. (A stale page that matches
 *    a target as stale as itself hides a divergence younger than the read's consistency
 *    until the next run.)
 * 4. With `repair`, the source state of exactly the divergent keys is re-applied through
 *    the normal merge (missing and different keys upserted, unexpected ones deleted),
 *    then the table is validated again.
 *
 * The steps live in validator_source.ts (1, and the point reads), validator_compare.ts
 * (2, 3), validator_repair.ts (4) and validator_plan.ts (their I/O-free plans); this
 * module keeps the run's state.
 *
 * Every run is a row of `public.sync_checksums` (its source_items grow as pages are read)
 * and moves through phases: scan (on the backfill's leased segments, one checkpoint per
 * page, functions-shared/segment_scan.ts), compare (slices of keys), recheck (one look
 * at a time), report, repair. Each step is checkpointed in the database; a request works
 * within a budget on the isolate's CPU (as its meter reads or estimates it,
 * functions-shared/cpu_meter.ts) and hands on (see {@link validateTable}'s
 * `runId`); a request killed mid-way loses its leases, and the next call or the pg_cron
 * heartbeat (`sync.wake_validations`) goes on from the last checkpoint. A run's staging
 * rows go after it ends (`sync.end_validation`), by retention (`validation_staging`).
 *
 * @module
 */

import { describeError } from "./error_text.ts";
import { isTransientRead, type PacingDeps } from "./scan_pacing.ts";
import { type CpuMeter, requestCpuBudget } from "./cpu_meter.ts";
import type { IsolatePages } from "./isolate_pages.ts";
import type postgres from "postgres";
import type { DynamoClient } from "./dynamo_http.ts";
import type { TableSpec } from "./table_registry.ts";
import { compareSlices, MAX_KEYS_READ } from "./validator_compare.ts";
import { recheckLook } from "./validator_looks.ts";
import { repairKeys, RepairOverBudget } from "./validator_repair.ts";
import { IN_FLIGHT_CEILING, requestCpuMs, scanForRun } from "./validator_source.ts";
import { PartitionTooLarge } from "./point_reads.ts";
import { LEASE_LOST } from "./segment_work.ts";
import { isDatabaseUnavailable } from "./sync_db.ts";
import { runResult, type ValidationResult } from "./validator_result.ts";

export type { RowKey, Unmappable } from "./validator_plan.ts";

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
function keysByKey(deps: ValidatorDeps): number {
  return Math.min(deps.maxKeysByKey ?? MAX_KEYS_BY_KEY, MAX_KEYS_READ);
}

/** The keys looked at again: as many as a request reads of a run's lists at most. */
function keysLooked(deps: ValidatorDeps): number {
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
 * A run this request did not finish: `handOn` when the budget ran out (the caller calls
 * the validator again with the run's id); without it, another request holds the run's
 * work (or the heartbeat will go on with it), or another request ended the run, done or
 * failed, while this one waited for a place.
 */
export interface Continuation {
  continued: true;
  runId: number;
  table: string;
  handOn: boolean;
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
function timeSpent(deps: ValidatorDeps, startedAt: number): () => boolean {
  const budget = deps.budget;
  const cpuBudgetMs = requestCpuMs(budget);
  return () =>
    budget !== undefined &&
    ((deps.cpu?.usedMs() ?? 0) >= cpuBudgetMs || performance.now() - startedAt >= budget.wallMs);
}

/** Per pool (an isolate's), the runs already said to hand on without work. */
const handedOnWithoutWork = new WeakMap<object, Set<number>>();

/**
 * Whether `run` was already handed on from this isolate without work, noting that it
 * now is. An isolate whose CPU estimate runs ahead of the runtime's count is not retired
 * yet but finds every request's budget spent, and the hand-on may land on it again, many
 * times in a second until the real CPU those requests add retires it: one line per run
 * and isolate, not one a request, which passed the hosted log limit (100 lines in 10 s)
 * and pushed the lines that matter out of the log.
 */
function quietlyHandedOn(pool: object, run: number): boolean {
  let runs = handedOnWithoutWork.get(pool);
  if (!runs) handedOnWithoutWork.set(pool, runs = new Set());
  if (runs.has(run)) return true;
  if (runs.size >= 1000) runs.clear();
  runs.add(run);
  return false;
}

/**
 * Validates one table (and repairs it if asked); records the run in sync_checksums.
 * With `runId`, goes on with a run that an earlier request (or sync.validate_all)
 * started; with `requestKey` (the request's Idempotency-Key), a start sent again goes on
 * with the run the key started. When the budget runs out first, or another request holds
 * the run's work, returns a {@link Continuation} instead of a result.
 */
export async function validateTable(
  deps: ValidatorDeps,
  spec: TableSpec,
  options: {
    repair?: boolean;
    runId?: number;
    requestKey?: string;
    onRun?: (runId: number) => void;
    startedAt?: number;
  } = {},
): Promise<ValidationResult | Continuation> {
  deps = withRequestCpuBudget(deps);
  const log = deps.log ?? (() => {});
  const startedAt = options.startedAt ?? performance.now();
  let run = options.runId;
  if (run === undefined) {
    const [{ id }] = await deps.sql`select sync.start_validation(${spec.targetTable},
        ${options.repair === true}, ${deps.segments ?? 8}, ${deps.pageSize ?? 1000}, ${false},
        ${options.requestKey ?? null}) as id`;
    run = Number(id);
  }
  if (options.runId !== undefined || options.requestKey !== undefined) {
    // A run started earlier: by another request, or by this key's first start.
    const [existing] = await deps.sql<{ id: string; status: string }[]>`
      select id, status from public.sync_checksums where id = ${run}`;
    if (!existing) throw new Error(`validation run ${run} does not exist`);
    if (existing.status === "done" || existing.status === "failed") {
      // Another request ended the run while this one waited for a place: nothing is left
      // for this one to do (a failed run's cause is in its record, and its first request
      // answers with it).
      options.onRun?.(run);
      log(
        `${spec.targetTable}: validation run ${run} has ended (${existing.status}); nothing to go on with`,
      );
      return { continued: true, runId: run, table: spec.targetTable, handOn: false };
    }
    if (existing.status !== "running") {
      throw new Error(`validation run ${run} is ${existing.status}, not running`);
    }
  }
  options.onRun?.(run);
  const worker = `validator-${crypto.randomUUID()}`;
  const spent = budgetCheck(deps, startedAt);
  // Whether this request did any work before it hands on (below).
  let worked = false;
  const overBudget = () => {
    const over = spent();
    if (!over) worked = true;
    return over;
  };
  const continuation = (handOn: boolean, why?: string): Continuation => {
    if (handOn && (worked || !quietlyHandedOn(deps.sql, run))) {
      log(
        `${spec.targetTable}: validation run ${run} goes on in another request${
          why ? ` (${why})` : ""
        }`,
      );
    }
    return { continued: true, runId: run, table: spec.targetTable, handOn };
  };
  const handOn = async () => {
    await deps.sql`select sync.release_validation(${run}, ${worker})`;
    return continuation(true);
  };
  // Throttled past the backoff: released for pg_cron's heartbeat to take up later (a run
  // that makes no progress for 15 minutes is failed by the reaper, naming why).
  const waitForHeartbeat = async () => {
    await deps.sql`select sync.release_validation(${run}, ${worker})`;
    return continuation(false);
  };
  let scanned = false;
  try {
    while (true) {
      const [{ phase }] = await deps.sql<{ phase: string | null }[]>`
        select sync.claim_validation(${run}, ${worker}) as phase`;
      if (phase === null) return continuation(false);
      if (phase === "scan") {
        // Nothing left to claim yet the Scan is not done: other requests scan the
        // last segments, and the one that finishes the last goes on.
        if (scanned) return continuation(false);
        const wallLeftMs = () =>
          (deps.budget?.wallMs ?? Infinity) - (performance.now() - startedAt);
        const outcome = await scanForRun(deps, spec, run, worker, overBudget, wallLeftMs);
        if (outcome.stoppedBy === "budget") return continuation(true, outcome.handedOn);
        if (outcome.stoppedBy === "throttled") return continuation(false);
        const [job] = await deps.sql<{ error: string }[]>`
          select error from sync.backfill_jobs where checksum_run_id = ${run} and status = 'failed'`;
        if (job) throw new Error(`the Scan of ${spec.sourceTable} failed: ${job.error}`);
        scanned = true;
      } else if (phase === "compare") {
        if (await compareSlices(deps, run, worker, overBudget) === "budget") return await handOn();
      } else if (phase === "recheck") {
        if (overBudget()) return await handOn();
        const after = await recheckLook(deps, spec, run, worker, keysLooked(deps), overBudget);
        if (after === "budget") return await handOn();
        if (after === "throttled") return await waitForHeartbeat();
      } else if (phase === "report") {
        const result = await report(deps, spec, run, worker);
        if (result) return result;
      } else if (phase === "repair") {
        if (overBudget()) return await handOn();
        try {
          const repaired = await repairAndRevalidate(deps, spec, run, worker, startedAt);
          if (repaired === "budget") return await handOn();
          return repaired;
        } catch (error) {
          // A read of the repair throttled (or a 5xx) after the client's retries: the
          // heartbeat goes on from the keys not yet recorded as applied (repair_read; a
          // key applied again is a no-op).
          if (!isTransientRead(error as Error)) throw error;
          log(
            `${spec.targetTable}: validation run ${run}: its repair's read failed: ${
              (error as Error).name
            }: ${(error as Error).message}; it waits for the next heartbeat`,
          );
          return await waitForHeartbeat();
        }
      } else {
        throw new Error(`validation run ${run} is in an unknown phase ${phase}`);
      }
    }
  } catch (error) {
    if ((error as { code?: string }).code === LEASE_LOST) {
      log(`${spec.targetTable}: validation run ${run}: ${(error as Error).message}`);
      return continuation(false);
    }
    if (isDatabaseUnavailable(error)) {
      // Not the run's failure: the database may answer again in a moment, and pg_cron's
      // heartbeat resumes the run from its checkpoints (one that makes no progress for 15
      // minutes is failed by sync.reap_stalled_validations, naming why).
      throw error;
    }
    // The run's error: what failed, its code and Postgres's detail and hint, on one line.
    await deps.sql`select sync.end_validation(${run}, 'failed', ${describeError(error)})`
      .catch(() => {});
    throw error;
  }
}

/**
 * Records the run's result. A run that repairs moves on to its repair (undefined is
 * returned); any other ends (its staging rows then go by retention) and its result is returned.
 */
async function report(deps: ValidatorDeps, spec: TableSpec, run: number, worker: string) {
  const { result, divergent, repair } = await runResult(deps, spec, run);
  const repairing = repair && divergent.total > 0;
  await deps.sql.begin(async (tx) => {
    await tx`select sync.hold_validation(${run}, ${worker})`;
    await tx`update public.sync_checksums
             set checked_at = ${result.checkedAt}, match = ${result.match},
                 phase = ${repairing ? "repair" : "report"}
             where id = ${run}`;
    if (!repairing) await tx`select sync.end_validation(${run}, 'done')`;
  });
  deps.log?.(
    `${spec.targetTable}: ${result.sourceItems} items, ${result.expectedRows} expected rows, ` +
      `${result.targetRows} target rows, ${
        result.match
          ? "match"
          : `${divergent.total} divergent keys, ${divergent.counts.unmappable} unmappable items`
      }`,
  );
  return repairing ? undefined : result;
}

/**
 * Re-applies the source state of the run's divergent keys, ends the run as repaired, and
 * validates the table again in a new run (linked as revalidation_run_id), in this
 * request while its budget lasts and in later ones after.
 */
async function repairAndRevalidate(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  worker: string,
  startedAt: number,
): Promise<ValidationResult | Continuation | "budget"> {
  const { result, divergent } = await runResult(deps, spec, run);
  const limit = keysByKey(deps);
  const heal = (why: string) =>
    healByBackfill(
      deps,
      spec,
      run,
      worker,
      result,
      `${spec.targetTable}: validation run ${run} ${why}`,
    );
  if (divergent.total > limit) {
    return await heal(
      `found ${divergent.total} divergent keys, more than the ${limit} a repair reads ` +
        "again one by one; a backfill heals the table",
    );
  }
  const [{ compared_at: seenAt, repair_read: repairRead }] = await deps.sql<
    { compared_at: Date; repair_read: number }[]
  >`select compared_at, repair_read from public.sync_checksums where id = ${run}`;
  // Every key: no more than `limit` (MAX_KEYS_BY_KEY), far fewer than a request reads;
  // those an earlier request of the run read and applied are not read again.
  let skipped;
  try {
    skipped = await repairKeys(deps, spec, divergent.keys.slice(repairRead), seenAt.toISOString(), {
      spent: timeSpent(deps, startedAt),
    });
  } catch (error) {
    if (error instanceof RepairOverBudget) {
      // The request's budget (its isolate's, shared with other requests) ran out after
      // one key at least, every key read applied: the next request goes on from there.
      await deps.sql.begin(async (tx) => {
        await tx`select sync.hold_validation(${run}, ${worker})`;
        await tx`update public.sync_checksums set repair_read = ${repairRead + error.done}
                 where id = ${run} and repair_read = ${repairRead}`;
      });
      deps.log?.(
        `${spec.targetTable}: validation run ${run}: repaired ${repairRead + error.done} of ` +
          `${divergent.keys.length} divergent keys; the repair goes on in another request`,
      );
      return "budget";
    }
    // A key whose partition a request cannot read whole: a backfill heals the table.
    if (!(error instanceof PartitionTooLarge)) throw error;
    return await heal(`cannot repair key by key: ${error.message}`);
  }
  if (skipped.length > 0) {
    deps.log?.(`${spec.targetTable}: repair left ${skipped.length} unmappable items alone`);
  }
  const again = await deps.sql.begin(async (tx) => {
    await tx`select sync.hold_validation(${run}, ${worker})`;
    const [{ id }] = await tx`select sync.start_validation(${spec.targetTable}, ${false},
        ${deps.segments ?? 8}, ${deps.pageSize ?? 1000}) as id`;
    await tx`update public.sync_checksums set repaired = true, revalidation_run_id = ${id}
             where id = ${run}`;
    await tx`select sync.end_validation(${run}, 'done')`;
    return Number(id);
  });
  const revalidated = await validateTable(deps, spec, { runId: again, startedAt });
  if ("continued" in revalidated) return revalidated;
  return {
    ...revalidated,
    repaired: {
      missing: result.missing,
      unexpected: result.unexpected,
      different: result.different,
    },
  };
}

/**
 * A repair that cannot go key by key (more keys than it reads one by one, a partition too
 * large to read whole): the table is marked stale with `reason` and healed by a backfill
 * (sync.heal_table: the table's backfill still waiting to start, else a new one), and the
 * run ends naming that job.
 */
async function healByBackfill(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  worker: string,
  result: ValidationResult,
  reason: string,
): Promise<ValidationResult> {
  const job = await deps.sql.begin(async (tx) => {
    await tx`select sync.hold_validation(${run}, ${worker})`;
    const [{ job }] = await tx<{ job: string }[]>`
      select sync.heal_table(${spec.targetTable}, ${reason}) as job`;
    await tx`update public.sync_checksums set healing_backfill_job_id = ${job} where id = ${run}`;
    await tx`select sync.end_validation(${run}, 'done')`;
    return Number(job);
  });
  deps.log?.(`${reason}: backfill job ${job}`);
  return { ...result, healingBackfillJobId: job };
}
