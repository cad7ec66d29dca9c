/**
 * A validation run's result as its row in `public.sync_checksums` records it: what the
 * run that finishes it reports, and what the endpoint answers for a run that ended, in
 * this request or another (docs/interfaces.md, "data-checksum-validator").
 *
 * @module
 */

import type { ValidatorDeps } from "./validator_deps.ts";
import type { TableSpec } from "./table_registry.ts";
import { type Divergence, findingsOf } from "./validator_compare.ts";
import type { RowKey, Unmappable } from "./validator_plan.ts";

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

/** The answer of the contract, plus the run's id and what a repair changed. */
export interface ValidationResult {
  table: string;
  sourceItems: number;
  expectedRows: number;
  targetRows: number;
  /** True only when no key diverges and every source item maps to a row (or a soft delete). */
  match: boolean;
  missing: RowKey[];
  unexpected: RowKey[];
  different: RowKey[];
  /**
   * The source keys of the items that map to no row (never silently skipped): a list of
   * keys, as the other three lists are.
   */
  unmappable: Unmappable["key"][];
  /** Why each of {@link unmappable} maps to no row, in the same order. */
  unmappableReasons: string[];
  checkedAt: string;
  runId: number;
  /**
   * Present when a list holds more entries than an answer carries (MAX_KEYS_READ of
   * each, validator_compare.ts: the lists above are their first entries): how many each
   * holds. The run's row in sync_checksums holds every one.
   */
  counts?: { missing: number; unexpected: number; different: number; unmappable: number };
  repaired?: { missing: RowKey[]; unexpected: RowKey[]; different: RowKey[] };
  /**
   * A repair of more divergent keys than MAX_KEYS_BY_KEY (validator_deps.ts): the backfill job queued
   * to heal the table (the table is stale until it ends), instead of key-by-key repairs.
   */
  healingBackfillJobId?: number;
}

/**
 * The run's result as its row holds it, its divergent keys, and whether the run was asked
 * to repair them.
 */
export async function runResult(deps: Pick<ValidatorDeps, "sql">, spec: TableSpec, run: number) {
  const [row] = await deps.sql<
    {
      source_items: number;
      expected_rows: number;
      target_rows: number;
      repair_requested: boolean;
    }[]
  >`select source_items::int, coalesce(expected_rows, 0)::int as expected_rows,
           coalesce(target_rows, 0)::int as target_rows, repair_requested
    from public.sync_checksums where id = ${run}`;
  const divergent = await findingsOf(deps, run);
  const pick = (kind: Divergence["kind"]) =>
    divergent.keys.filter((d) => d.kind === kind).map((d) => d.key);
  const listed = divergent.keys.length === divergent.total &&
    divergent.unmappable.length === divergent.counts.unmappable;
  const result: ValidationResult = {
    table: spec.targetTable,
    sourceItems: row.source_items,
    expectedRows: row.expected_rows,
    targetRows: row.target_rows,
    // An item that maps to no row is never a match: the table cannot be proven.
    match: divergent.total === 0 && divergent.counts.unmappable === 0,
    missing: pick("missing"),
    unexpected: pick("unexpected"),
    different: pick("different"),
    unmappable: divergent.unmappable.map((u) => u.key),
    unmappableReasons: divergent.unmappable.map((u) => u.reason),
    checkedAt: new Date().toISOString(),
    runId: run,
    ...(listed ? {} : { counts: divergent.counts }),
  };
  return { result, divergent, repair: row.repair_requested };
}

/**
 * The answer a run's record gives (the endpoint's 200 body), whichever request finished
 * it: "running" while it (or, after a repair, its re-validation) runs; the error of a
 * failed run; else the result, with `repaired` when the run repaired.
 */
export async function recordedResult(
  deps: Pick<ValidatorDeps, "sql">,
  spec: TableSpec,
  run: number,
): Promise<ValidationResult | "running" | { failed: string }> {
  const [row] = await deps.sql<
    {
      status: string;
      error: string | null;
      repaired: boolean;
      revalidation_run_id: string | null;
      checked_at: Date | null;
      healing_backfill_job_id: string | null;
    }[]
  >`select status, error, repaired, revalidation_run_id, checked_at, healing_backfill_job_id
    from public.sync_checksums where id = ${run}`;
  if (!row) return { failed: `validation run ${run} does not exist` };
  if (row.status === "failed") return { failed: row.error ?? "the run failed" };
  if (row.status !== "done") return "running";
  const { result } = await runResult(deps, spec, run);
  result.checkedAt = (row.checked_at ?? new Date()).toISOString();
  const [{ match }] = await deps.sql<{ match: boolean }[]>`
    select match from public.sync_checksums where id = ${run}`;
  result.match = match;
  if (row.healing_backfill_job_id !== null) {
    return { ...result, healingBackfillJobId: Number(row.healing_backfill_job_id) };
  }
  if (!row.repaired || row.revalidation_run_id === null) return result;
  const again = await recordedResult(deps, spec, Number(row.revalidation_run_id));
  if (again === "running" || "failed" in again) return again;
  return {
    ...again,
    repaired: {
      missing: result.missing,
      unexpected: result.unexpected,
      different: result.different,
    },
  };
}
