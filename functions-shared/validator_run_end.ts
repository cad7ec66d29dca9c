/**
 * A validation run's end (checksum_validator.ts runs the phases before it): the report
 * of its result, and, when it repairs, the key-by-key repair of its divergent keys
 * followed by a second run, or a backfill that heals the table when the keys are too
 * many or a partition too large to read whole (docs/sync-semantics.md, "Repairs").
 *
 * @module
 */

import { PartitionTooLarge } from "./point_reads.ts";
import type { TableSpec } from "./table_registry.ts";
import { keysByKey, timeSpent, type ValidatorDeps } from "./validator_deps.ts";
import { keysAwaitingWriteBack, repairKeys, RepairOverBudget } from "./validator_repair.ts";
import { type Continuation, runResult, type ValidationResult } from "./validator_result.ts";

/**
 * Records the run's result. A run that repairs moves on to its repair (undefined is
 * returned); any other ends (its staging rows then go by retention) and its result is returned.
 */
export async function report(deps: ValidatorDeps, spec: TableSpec, run: number, worker: string) {
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
 * validates the table again in a new run (linked as revalidation_run_id) with
 * `revalidate`, in this request while its budget lasts and in later ones after.
 */
export async function repairAndRevalidate(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  worker: string,
  startedAt: number,
  revalidate: (runId: number) => Promise<ValidationResult | Continuation>,
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
  const toRepair = divergent.keys.slice(repairRead);
  // A key whose admin's edit is on its way to DynamoDB differs until it streams back: it
  // is left to its write-back, which ends it either way (validator_repair.ts).
  const awaited = await keysAwaitingWriteBack(
    deps.sql,
    spec.targetTable,
    toRepair.map((d) => d.key),
  );
  if (awaited.size > 0) {
    deps.log?.(
      `${spec.targetTable}: validation run ${run}: ${awaited.size} divergent keys hold an ` +
        "admin's edit on its way to DynamoDB (a pending write-back): left to it, not " +
        "repaired over",
    );
  }
  let skipped;
  try {
    skipped = await repairKeys(deps, spec, toRepair, seenAt.toISOString(), {
      spent: timeSpent(deps, startedAt),
      leave: awaited,
      renew: async () => {
        await deps.sql`select sync.renew_validation(${run}, ${worker})`;
      },
    });
  } catch (error) {
    // The keys a request read and applied: the next request goes on after them.
    const record = (done: number) =>
      deps.sql.begin(async (tx) => {
        await tx`select sync.hold_validation(${run}, ${worker})`;
        await tx`update public.sync_checksums set repair_read = ${repairRead + done}
                 where id = ${run} and repair_read = ${repairRead}`;
      });
    if (error instanceof RepairOverBudget) {
      // The request's budget (its isolate's, shared with other requests) ran out after
      // one key at least, every key read applied: the next request goes on from there.
      await record(error.done);
      deps.log?.(
        `${spec.targetTable}: validation run ${run}: repaired ${repairRead + error.done} of ` +
          `${divergent.keys.length} divergent keys; the repair goes on in another request`,
      );
      return "budget";
    }
    // A key whose partition a request cannot read whole: a backfill heals the table.
    if (!(error instanceof PartitionTooLarge)) {
      // A read that failed (a throttle past the client's retries, say) after others that
      // were applied: those count (validator_repair.ts), whatever the error then does.
      const done = (error as { repairedBefore?: number }).repairedBefore;
      if (done) await record(done).catch(() => {});
      throw error;
    }
    return await heal(`cannot repair key by key: ${error.message}`);
  }
  if (skipped.length > 0) {
    deps.log?.(`${spec.targetTable}: repair left ${skipped.length} unmappable items alone`);
  }
  const again = await deps.sql.begin(async (tx) => {
    await tx`select sync.hold_validation(${run}, ${worker})`;
    // Ended before its revalidation starts (a table has one run at a time, SY006); queued
    // runs start only once the revalidation holds the slot the run leaves.
    await tx`select sync.end_validation(${run}, 'done', ${null}, ${false})`;
    const [{ id }] = await tx`select sync.start_validation(${spec.targetTable}, ${false},
        ${deps.segments ?? 8}, ${deps.pageSize ?? 1000}) as id`;
    await tx`update public.sync_checksums set repaired = true, revalidation_run_id = ${id}
             where id = ${run}`;
    await tx`select sync.start_queued_validations()`;
    return Number(id);
  });
  const revalidated = await revalidate(again);
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
