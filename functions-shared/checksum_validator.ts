/**
 * The checksum validator: proves, key by key, that a target table equals the projection
 * of its DynamoDB table (sync-semantics.md, "Verification").
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
 * Every run is a row of `public.sync_checksums` (its source_items grow as pages are read).
 * A request works within a budget; a run that outgrows it keeps its Scan checkpoints in
 * that row and goes on in the next request (see {@link validateTable}'s `runId`).
 *
 * @module
 */

import type postgres from "postgres";
import {
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import { encodeJson } from "./dynamo_codec.ts";
import type { TableChange } from "./record_mapping.ts";
import { applyChanges } from "./sync_db.ts";
import type { TableSpec } from "./table_registry.ts";
import {
  expectedPage,
  type Item,
  pointReadKey,
  repairPlan,
  type RowKey,
  type Unmappable,
} from "./validator_plan.ts";

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
  pageSize?: number;
  /** Pause before looking again at keys that differ (changes in flight settle). */
  settleMs?: number;
  /**
   * The request's budget: stop scanning after this much synchronous work (mapping,
   * encoding) or wall time, or this many pages; the run then goes on in another request.
   */
  budget?: { cpuMs: number; wallMs: number; pages?: number };
  log?: (line: string) => void;
}

type Divergence = { kind: "missing" | "unexpected" | "different"; key: RowKey };

/** The JSON of the expected rows of some items (none when all are soft deletes or unmappable). */
function expectedJson(spec: TableSpec, items: Item[]) {
  const { rows, unmappable } = expectedPage(spec, items, new Date());
  return { json: rows.length > 0 ? encodeJson(rows) : undefined, unmappable };
}

/** Stages the expected rows of a point read again (a recheck), marking the run's progress. */
async function stage(deps: ValidatorDeps, spec: TableSpec, run: number, items: Item[]) {
  const { json } = expectedJson(spec, items);
  await deps.sql.begin(async (tx) => {
    if (json) {
      await tx`select sync.stage_checksum_items(${run}, ${spec.targetTable}, ${json}::text::jsonb)`;
    }
    await tx`update public.sync_checksums set progress_at = now() where id = ${run}`;
  });
}

/**
 * Scans the source in parallel segments, from the run's checkpoints, staging every page
 * in the transaction that moves the page's checkpoint. Returns whether the whole table
 * was read, or the budget ran out first.
 */
async function stageSource(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
): Promise<"complete" | "budget"> {
  const client = deps.dynamo(spec.region);
  const segments = deps.segments ?? 8;
  const [{ scan_state: state }] = await deps.sql<{ scan_state: Record<string, Item | "done"> }[]>`
    select scan_state from public.sync_checksums where id = ${run}`;
  const started = performance.now();
  let cpu = 0;
  let pages = 0;
  const budget = deps.budget;
  const spent = () =>
    budget !== undefined &&
    (cpu >= budget.cpuMs || performance.now() - started >= budget.wallMs ||
      (budget.pages !== undefined && pages >= budget.pages));
  const done = await Promise.all(Array.from({ length: segments }, async (_, segment) => {
    const checkpoint = state[String(segment)];
    if (checkpoint === "done") return true;
    let start: Item | undefined = checkpoint;
    while (true) {
      if (spent()) return false;
      pages++;
      const page: { Items?: Item[]; LastEvaluatedKey?: Item } = await client.send(
        new ScanCommand({
          TableName: spec.sourceTable,
          Segment: segment,
          TotalSegments: segments,
          ExclusiveStartKey: start,
          Limit: deps.pageSize ?? 1000,
        }),
      );
      const items = page.Items ?? [];
      const t = performance.now();
      const { json, unmappable } = expectedJson(spec, items);
      cpu += performance.now() - t;
      start = page.LastEvaluatedKey;
      const next = JSON.stringify(start ?? "done");
      await deps.sql.begin(async (tx) => {
        if (json) {
          await tx`select sync.stage_checksum_items(${run}, ${spec.targetTable}, ${json}::text::jsonb)`;
        }
        await tx`update public.sync_checksums
                 set source_items = source_items + ${items.length},
                     scan_state = jsonb_set(scan_state, ${[
          String(segment),
        ]}::text[], ${next}::text::jsonb),
                     unmappable = unmappable || ${JSON.stringify(unmappable)}::text::jsonb,
                     progress_at = now()
                 where id = ${run}`;
      });
      if (!start) return true;
    }
  }));
  return done.every(Boolean) ? "complete" : "budget";
}

async function compare(deps: ValidatorDeps, spec: TableSpec, run: number) {
  const rows = await deps.sql<
    {
      kind: Divergence["kind"] | null;
      row_key: RowKey | null;
      expected_rows: string;
      target_rows: string;
      seen_at: Date;
    }[]
  >`select * from sync.compare_checksum(${run}, ${spec.targetTable})`;
  return {
    divergent: rows.filter((r) => r.kind !== null).map((r) => ({ kind: r.kind!, key: r.row_key! })),
    expectedRows: Number(rows[0].expected_rows),
    targetRows: Number(rows[0].target_rows),
    /** The database's time of the comparison: when the divergence was seen. */
    seenAt: rows[0].seen_at.toISOString(),
  };
}

/** The source's current items for one target key (all observations for a collapsed table). */
async function pointRead(deps: ValidatorDeps, spec: TableSpec, key: RowKey): Promise<Item[]> {
  const client = deps.dynamo(spec.region);
  const sourceKey = pointReadKey(spec, key);
  if (!spec.collapse) {
    const { Item } = await client.send(
      new GetItemCommand({ TableName: spec.sourceTable, Key: sourceKey, ConsistentRead: true }),
    );
    return Item ? [Item] : [];
  }
  const [hash] = Object.keys(sourceKey);
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: spec.sourceTable,
        KeyConditionExpression: "#h = :h",
        ExpressionAttributeNames: { "#h": hash },
        ExpressionAttributeValues: { ":h": sourceKey[hash] },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

const sameKey = (a: RowKey, b: RowKey) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Looks again at divergent keys, after a settle pause, with fresh point reads of the
 * source; keeps only the keys that differ every time (up to `looks` times, stopping as
 * soon as none does).
 */
async function recheck(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  first: Divergence[],
  looks = 3,
) {
  let divergent = first;
  let outcome = { divergent, expectedRows: 0, targetRows: 0, seenAt: new Date().toISOString() };
  for (let look = 0; look < looks && divergent.length > 0; look++) {
    await new Promise((resolve) => setTimeout(resolve, deps.settleMs ?? 1_000));
    const keys = divergent.map((d) => JSON.stringify(d.key));
    await deps.sql`delete from sync.checksum_items
                   where run_id = ${run} and row_key = any(${keys}::text[]::jsonb[])`;
    for (const { key } of divergent) await stage(deps, spec, run, await pointRead(deps, spec, key));
    outcome = await compare(deps, spec, run);
    divergent = outcome.divergent.filter((d) => divergent.some((f) => sameKey(f.key, d.key)));
  }
  return { ...outcome, divergent };
}

/**
 * Re-applies the source state of exactly `divergent` keys through the normal merge:
 * each key read consistently (after `seenAt`, when the divergence was seen) and turned
 * into repair changes by {@link repairPlan}. Keys with an item that cannot be mapped are
 * left alone and returned.
 */
async function repairKeys(
  deps: ValidatorDeps,
  spec: TableSpec,
  divergent: Divergence[],
  seenAt: string,
): Promise<Unmappable[]> {
  const changes: TableChange[] = [];
  const skipped: Unmappable[] = [];
  for (const { key } of divergent) {
    const readAt = new Date();
    const items = await pointRead(deps, spec, key);
    const known = spec.collapse
      ? (await deps.sql<{ range_key: string }[]>`
          select range_key::text from sync.observations
          where target_table = ${spec.targetTable}
            and row_key = ${JSON.stringify(key)}::text::jsonb and not deleted
          union
          select sync_range_key::text from ${deps.sql(spec.targetTable)}
          where ${deps.sql(spec.targetKey[0])} = ${key[spec.targetKey[0]]}
            and sync_range_key is not null`).map((r) => r.range_key)
      : [];
    const plan = repairPlan(spec, key, items, known, readAt, seenAt);
    changes.push(...plan.changes);
    skipped.push(...plan.unmappable);
  }
  await deps.sql.begin((tx) => applyChanges(tx, changes));
  return skipped;
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
