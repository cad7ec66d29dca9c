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
 * The steps live in validator_source.ts (1), validator_compare.ts and
 * validator_looks.ts (2, 3; the looks' point reads in point_reads.ts),
 * validator_run_end.ts and validator_repair.ts (the report, and 4), and
 * validator_plan.ts (their I/O-free plans); a request's deps and budget in
 * validator_deps.ts. This module keeps the run's state and goes through its phases.
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
import { isTransientRead } from "./scan_pacing.ts";
import type { TableSpec } from "./table_registry.ts";
import { compareSlices } from "./validator_compare.ts";
import {
  budgetCheck,
  keysLooked,
  type ValidatorDeps,
  withRequestCpuBudget,
} from "./validator_deps.ts";
import { recheckLook } from "./validator_looks.ts";
import { scanForRun } from "./validator_source.ts";
import { LEASE_LOST } from "./segment_work.ts";
import { isDatabaseUnavailable } from "./db_errors.ts";
import type { Continuation, ValidationResult } from "./validator_result.ts";
import { repairAndRevalidate, report } from "./validator_run_end.ts";

export type { RowKey, Unmappable } from "./validator_plan.ts";

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
    if (!existing) throw new Error(`${spec.targetTable}: validation run ${run} does not exist`);
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
          const repaired = await repairAndRevalidate(
            deps,
            spec,
            run,
            worker,
            startedAt,
            (again) => validateTable(deps, spec, { runId: again, startedAt }),
          );
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
