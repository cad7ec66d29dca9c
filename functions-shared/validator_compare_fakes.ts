/**
 * The validator fake's (validator_fakes.ts) answers to a run after its Scan: the
 * compare's slices, the findings, the keys moved on, the looks and their rechecks, the
 * report, the end, and the repair's statements.
 *
 * @module
 */

import type { Statement } from "./testing_fakes.ts";
import type { FakeRunsState } from "./validator_fakes.ts";

/** The answer to `s` if it is one of the compare's or later statements; else undefined. */
export function answerCompare(s: Statement, state: FakeRunsState): unknown[] | undefined {
  const { runs, staleMarks, options, slices, compares, runOf, byKind, hold, seen } = state;
  const t = s.text;
  const v = s.values;
  if (t.includes("sync.compare_checksum_range(")) {
    const run = runOf(v[0]);
    hold(run, v[1]);
    run.slices++;
    if (run.slices < slices) return [{ phase: "compare" }];
    const divergent = options.divergent?.(run.id, 0, 0) ?? [];
    byKind(run, divergent);
    // As the migration: unmappable items are read again too.
    run.phase = divergent.length + run.unmappable.length > 0 ? "recheck" : "report";
    return [{ phase: run.phase }];
  }
  if (t.startsWith("select * from sync.validation_findings(")) {
    const run = runOf(v[0]);
    const first = (list: unknown[]) => list.slice(0, Number(v[1]));
    return [{
      missing: first(run.missing),
      unexpected: first(run.unexpected),
      different: first(run.different),
      unmappable: first(run.unmappable),
      missing_count: run.missing.length,
      unexpected_count: run.unexpected.length,
      different_count: run.different.length,
      unmappable_count: run.unmappable.length,
    }];
  }
  if (t.startsWith("delete from sync.checksum_items")) return [];
  if (t.includes("sync.keys_changed_since(")) {
    const moved = options.movedOn?.(JSON.parse(String(v[1])), String(v[2])) ?? [];
    return moved.map((row_key) => ({ row_key }));
  }
  if (t.includes("sync.collapsed_keys_changed_since(")) {
    const moved = options.movedOn?.(JSON.parse(String(v[2])), String(v[3]), Number(v[0])) ??
      [];
    return moved.map((row_key) => ({ row_key }));
  }
  if (t.includes("from sync.compare_checksum(")) {
    const run = runOf(v[0]);
    const keys = (JSON.parse(String(v[2])) as unknown[]).map((k) => JSON.stringify(k));
    const compare = compares.get(run.id) ?? 0;
    compares.set(run.id, compare + 1);
    const found = (options.divergent?.(run.id, run.looks + 1, compare) ?? [])
      .filter((d) => keys.includes(JSON.stringify(d.key)));
    return found.length === 0
      ? [{ kind: null, row_key: null }]
      : found.map((d) => ({ kind: d.kind, row_key: d.key }));
  }
  if (t.includes("looks = looks + 1")) {
    const run = runOf(v.at(-1));
    run.missing = JSON.parse(String(v[0]));
    run.unexpected = JSON.parse(String(v[1]));
    run.different = JSON.parse(String(v[2]));
    run.looks++;
    compares.delete(run.id);
    run.recheckKeys = null;
    run.recheckRead = 0;
    run.recheckReadFrom = run.recheckReadBefore = null;
    run.phase = run.looks >= Number(v[3]) || Number(v[4]) === 0 ? "report" : "recheck";
    return [{ phase: run.phase }];
  }
  if (t.startsWith("select source_items::int, coalesce(expected_rows")) {
    const run = runOf(v[0]);
    return [{
      source_items: run.sourceItems,
      expected_rows: 2,
      target_rows: 2,
      repair_requested: run.repair,
    }];
  }
  if (t.includes("set checked_at = $1, match = $2")) {
    const run = runOf(v[3]);
    run.match = v[1] === true;
    run.phase = String(v[2]);
    return [];
  }
  if (t.includes("sync.start_queued_validations()")) return [{ start_queued_validations: 0 }];
  if (t.includes("sync.end_validation(")) {
    const run = runOf(v[0]);
    run.status = t.includes("'done'") ? "done" : "failed";
    if (run.status === "done") run.phase = "done";
    else run.error = String(v[1]);
    run.staged = 0;
    run.leaseOwner = undefined;
    return [];
  }
  if (t.startsWith("select compared_at")) {
    return [{ compared_at: seen, repair_read: runOf(v[0]).repairRead }];
  }
  if (t.includes("set repair_read = ")) {
    const run = runOf(v[1]);
    if (run.repairRead === Number(v[2])) run.repairRead = Number(v[0]);
    return [];
  }
  if (t.includes("set phase = 'report'")) {
    runOf(v[0]).phase = "report";
    return [];
  }
  if (t.includes("sync.heal_table(")) {
    staleMarks.push({ table: String(v[0]), reason: String(v[1]) });
    return [{ job: "77" }];
  }
  if (t.includes("set healing_backfill_job_id")) {
    runOf(v[1]).healingJob = Number(v[0]);
    return [];
  }
  if (t.includes("set repaired = true, revalidation_run_id")) {
    const run = runOf(v[1]);
    run.repaired = true;
    run.revalidation = Number(v[0]);
    return [];
  }
  if (t.startsWith("select status, error, repaired, revalidation_run_id")) {
    const run = runs.get(Number(v[0]));
    return run
      ? [{
        status: run.status,
        error: run.error ?? null,
        repaired: run.repaired,
        revalidation_run_id: run.revalidation === undefined ? null : String(run.revalidation),
        checked_at: seen,
        healing_backfill_job_id: run.healingJob === undefined ? null : String(run.healingJob),
      }]
      : [];
  }
  if (t.startsWith("select match from public.sync_checksums")) {
    return [{ match: runOf(v[0]).match ?? false }];
  }
  if (t.startsWith("select recheck_keys, recheck_read, looks from public.sync_checksums")) {
    const run = runOf(v[0]);
    return [{ recheck_keys: run.recheckKeys, recheck_read: run.recheckRead, looks: run.looks }];
  }
  if (t.includes("set recheck_keys = ")) {
    const run = runOf(v[1]);
    run.recheckKeys = JSON.parse(String(v[0]));
    run.recheckRead = 0;
    run.recheckReadFrom = run.recheckReadBefore = null;
    return [];
  }
  if (t.startsWith("select unmappable, recheck_read from public.sync_checksums")) {
    const run = runOf(v[0]);
    return [{ unmappable: run.unmappable, recheck_read: run.recheckRead }];
  }
  if (t.includes("set progress_at = now(), unmappable =")) {
    const run = runOf(v[4]);
    run.unmappable = JSON.parse(String(v[0]));
    run.recheckRead = Number(v[1]);
    const [from, before] = [v[2] as string | null, v[3] as string | null];
    if (from !== null && (!run.recheckReadFrom || from < run.recheckReadFrom)) {
      run.recheckReadFrom = from;
    }
    if (
      before !== null && run.recheckReadBefore !== "infinity" &&
      (before === "infinity" || !run.recheckReadBefore || before > run.recheckReadBefore)
    ) run.recheckReadBefore = before;
    return [];
  }
  if (t.startsWith("select recheck_read_from, recheck_read_before from public.sync_checksums")) {
    const run = runOf(v[0]);
    const at = (x: string | null | undefined) =>
      x ? new Date(x === "infinity" ? Infinity : Date.parse(x)) : null;
    return [{
      recheck_read_from: at(run.recheckReadFrom),
      recheck_read_before: at(run.recheckReadBefore),
    }];
  }
  if (t.includes("set progress_at = now()")) return [];
  if (t.includes("from sync.observations")) return [];
  // No admin's edit on its way to DynamoDB (validator_repair.ts, keysAwaitingWriteBack).
  if (t.includes("from sync.write_backs")) return [];
  if (t.includes("sync.merge_changes")) {
    return [{ applied: (JSON.parse(String(v[1])) as unknown[]).length }];
  }
  return undefined;
}
