/**
 * The checksum validator: proves, key by key, that a target table equals the projection
 * of its DynamoDB table (docs/sync-semantics.md, "Verification").
 *
 * 1. A parallel Scan of the source; every item mapped through the same registry and
 *    transformers as the sync; each page's expected rows staged in Postgres
 *    (`sync.stage_checksum_items`), so memory stays at a page.
 * 2. `sync.compare_checksum` reduces both sides through one canonical form in Postgres,
 *    compares them per bucket of key hashes, and lists key by key only the buckets that
 *    differ: missing, unexpected and different keys.
 * 3. Changes in flight: a key that differs is looked at again after a settle pause, with
 *    a fresh point read of the source (GetItem, or Query for a collapsed table), up to
 *    three times, and is reported only if it differs every time. A key that was merely
 *    in flight (its change on its way through the stream) is not reported.
 * 4. With `repair`, the source state of exactly the divergent keys is re-applied through
 *    the normal merge (missing and different keys upserted, unexpected ones deleted),
 *    then the table is validated again.
 *
 * The steps live in validator_source.ts (1, and the point reads), validator_compare.ts
 * (2, 3), validator_repair.ts (4) and validator_plan.ts (their I/O-free plans); this
 * module keeps the run's state.
 *
 * Every run is a row of `public.sync_checksums` (its source_items grow as pages are read).
 * A request works within a budget; a run that outgrows it keeps its Scan checkpoints in
 * that row and goes on in the next request (see {@link validateTable}'s `runId`).
 *
 * @module
 */

import type { PacingDeps } from "./scan_pacing.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import type postgres from "postgres";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { TableSpec } from "./table_registry.ts";
import { compare, type Divergence, recheck } from "./validator_compare.ts";
import type { RowKey, Unmappable } from "./validator_plan.ts";
import { repairKeys } from "./validator_repair.ts";
import { stageSource } from "./validator_source.ts";

export type { RowKey, Unmappable } from "./validator_plan.ts";

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
  /** Source items that map to no row, with the reason: never silently skipped. */
  unmappable: Unmappable[];
  checkedAt: string;
  runId: number;
  repaired?: { missing: RowKey[]; unexpected: RowKey[]; different: RowKey[] };
}

/** What the validator needs. */
export interface ValidatorDeps {
  sql: postgres.Sql;
  dynamo: (region: string) => DynamoDBClient;
  segments?: number;
  /** Segments scanned at once in one request (2): their pages in flight add up in the isolate. */
  segmentsAtOnce?: number;
  pageSize?: number;
  /** Pause before looking again at keys that differ (changes in flight settle). */
  settleMs?: number;
  /**
   * The request's budget: stop scanning after this much synchronous work (mapping,
   * encoding) or wall time, or this many pages; the run then goes on in another request.
   */
  budget?: { cpuMs: number; wallMs: number; pages?: number };
  /**
   * The isolate's CPU (functions-shared/cpu_meter.ts): the budget's cpuMs is counted on
   * it when given (the Edge Runtime counts CPU per isolate, boot included), else on the
   * mapping steps alone.
   */
  cpu?: CpuMeter;
  /**
   * Read capacity units per second the validator may use of a table, shared by its
   * segments (VALIDATOR_MAX_RCU_PER_SECOND): the tables belong to the applications.
   */
  maxRcuPerSecond?: number;
  /** Clock and randomness of the pacing and retries (tests replace them). */
  pacing?: PacingDeps;
  log?: (line: string) => void;
}

/** A run that ran out of budget before reading the whole table goes on in another request. */
export interface Continuation {
  continued: true;
  runId: number;
  table: string;
}

/**
 * Validates one table (and repairs it if asked); records the run in sync_checksums.
 * With `runId`, goes on with a run that an earlier request started. When the budget
 * runs out before the table is read, returns a {@link Continuation} instead of a result.
 */
export async function validateTable(
  deps: ValidatorDeps,
  spec: TableSpec,
  options: { repair?: boolean; runId?: number; onRun?: (runId: number) => void } = {},
): Promise<ValidationResult | Continuation> {
  const log = deps.log ?? (() => {});
  let run: number;
  let repair = options.repair === true;
  if (options.runId !== undefined) {
    const [existing] = await deps.sql`select repair_requested from public.sync_checksums
                                      where id = ${options.runId} and status = 'running'`;
    if (!existing) throw new Error(`validation run ${options.runId} is not running`);
    run = options.runId;
    repair = existing.repair_requested;
  } else {
    const [{ id }] = await deps.sql`insert into public.sync_checksums
        (target_table, status, source_items, repair_requested)
      values (${spec.targetTable}, 'running', 0, ${repair}) returning id`;
    run = Number(id);
  }
  options.onRun?.(run);
  let finished = false;
  try {
    if (await stageSource(deps, spec, run) === "budget") {
      log(`${spec.targetTable}: validation run ${run} goes on in another request`);
      return { continued: true, runId: run, table: spec.targetTable };
    }
    finished = true;
    let outcome = await compare(deps, spec, run);
    if (outcome.divergent.length > 0) outcome = await recheck(deps, spec, run, outcome.divergent);
    const pick = (kind: Divergence["kind"]) =>
      outcome.divergent.filter((d) => d.kind === kind).map((d) => d.key);
    const [{ source_items: sourceItems, unmappable }] = await deps.sql<
      { source_items: number; unmappable: Unmappable[] }[]
    >`select source_items::int, unmappable from public.sync_checksums where id = ${run}`;
    const result: ValidationResult = {
      table: spec.targetTable,
      sourceItems,
      expectedRows: outcome.expectedRows,
      targetRows: outcome.targetRows,
      // An item that maps to no row is never a match: the table cannot be proven.
      match: outcome.divergent.length === 0 && unmappable.length === 0,
      missing: pick("missing"),
      unexpected: pick("unexpected"),
      different: pick("different"),
      unmappable,
      checkedAt: new Date().toISOString(),
      runId: run,
    };
    const repairing = repair && outcome.divergent.length > 0;
    await deps.sql`update public.sync_checksums set
        status = 'done', checked_at = ${result.checkedAt},
        expected_rows = ${result.expectedRows}, target_rows = ${result.targetRows},
        match = ${result.match}, missing = ${JSON.stringify(result.missing)}::text::jsonb,
        unexpected = ${JSON.stringify(result.unexpected)}::text::jsonb,
        different = ${JSON.stringify(result.different)}::text::jsonb, repaired = ${repairing},
        scan_state = '{}'
      where id = ${run}`;
    log(
      `${spec.targetTable}: ${sourceItems} items, ${result.expectedRows} expected rows, ` +
        `${result.targetRows} target rows, ${
          result.match
            ? "match"
            : `${outcome.divergent.length} divergent keys, ${unmappable.length} unmappable items`
        }`,
    );
    if (!repairing) return result;
    const skipped = await repairKeys(deps, spec, outcome.divergent, outcome.seenAt);
    if (skipped.length > 0) {
      log(`${spec.targetTable}: repair left ${skipped.length} unmappable items alone`);
    }
    // The check after the repair reads the whole table in this request.
    const again = await validateTable({ ...deps, budget: undefined }, spec, { repair: false });
    return {
      ...(again as ValidationResult),
      repaired: {
        missing: result.missing,
        unexpected: result.unexpected,
        different: result.different,
      },
    };
  } catch (error) {
    finished = true;
    await deps.sql`update public.sync_checksums set status = 'failed', error = ${
      (error as Error).message
    },
                   checked_at = now() where id = ${run}`.catch(() => {});
    throw error;
  } finally {
    if (finished) {
      await deps.sql`delete from sync.checksum_items where run_id = ${run}`.catch(() => {});
    }
  }
}
