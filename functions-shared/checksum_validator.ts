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
 *
 * @module
 */

import type postgres from "postgres";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import { encodeJson } from "./dynamo_codec.ts";
import { mapScannedItem, type TableChange } from "./record_mapping.ts";
import { applyChanges } from "./sync_db.ts";
import type { TableSpec } from "./table_registry.ts";
import type { Change } from "./transform.ts";

/** A target row's key, e.g. `{"action_id": "a-1"}`. */
export type RowKey = Record<string, string>;

/** The answer of the contract, plus the run's id and what a repair changed. */
export interface ValidationResult {
  table: string;
  sourceItems: number;
  expectedRows: number;
  targetRows: number;
  match: boolean;
  missing: RowKey[];
  unexpected: RowKey[];
  different: RowKey[];
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
  log?: (line: string) => void;
}

type Item = Record<string, AttributeValue>;
type Divergence = { kind: "missing" | "unexpected" | "different"; key: RowKey };

/** The expected row(s) an item makes: `{row, range_key, rank}`, or none (a soft delete). */
function expectedOf(spec: TableSpec, item: Item, readAt: Date) {
  const mapped = mapScannedItem(spec, item, readAt);
  if (!mapped.ok || mapped.value.change.op !== "upsert") return undefined;
  const { change } = mapped.value;
  return { row: change.row, range_key: change.rangeKey, rank: change.rank };
}

async function stage(deps: ValidatorDeps, spec: TableSpec, run: number, items: Item[]) {
  const readAt = new Date();
  const rows = items.map((item) => expectedOf(spec, item, readAt)).filter((r) => r !== undefined);
  if (rows.length > 0) {
    await deps.sql`select sync.stage_checksum_items(${run}, ${spec.targetTable},
                     ${encodeJson(rows)}::text::jsonb)`;
  }
}

/** Scans the source in parallel segments and stages every page; returns the item count. */
async function stageSource(deps: ValidatorDeps, spec: TableSpec, run: number): Promise<number> {
  const client = deps.dynamo(spec.region);
  const segments = deps.segments ?? 8;
  const counts = await Promise.all(Array.from({ length: segments }, async (_, segment) => {
    let count = 0;
    let start: Item | undefined;
    do {
      const page = await client.send(
        new ScanCommand({
          TableName: spec.sourceTable,
          Segment: segment,
          TotalSegments: segments,
          ExclusiveStartKey: start,
          Limit: deps.pageSize ?? 1000,
        }),
      );
      const items = page.Items ?? [];
      await stage(deps, spec, run, items);
      count += items.length;
      await deps
        .sql`update public.sync_checksums set source_items = coalesce(source_items, 0) + ${items.length}
                     where id = ${run}`;
      start = page.LastEvaluatedKey;
    } while (start);
    return count;
  }));
  return counts.reduce((a, b) => a + b, 0);
}

async function compare(deps: ValidatorDeps, spec: TableSpec, run: number) {
  const rows = await deps.sql<
    {
      kind: Divergence["kind"] | null;
      row_key: RowKey | null;
      expected_rows: string;
      target_rows: string;
    }[]
  >`select * from sync.compare_checksum(${run}, ${spec.targetTable})`;
  return {
    divergent: rows.filter((r) => r.kind !== null).map((r) => ({ kind: r.kind!, key: r.row_key! })),
    expectedRows: Number(rows[0].expected_rows),
    targetRows: Number(rows[0].target_rows),
  };
}

/** The source attribute (and its type) behind each target key column. */
function sourceKeyOf(spec: TableSpec, key: RowKey): Item {
  const item: Item = {};
  for (const column of spec.targetKey) {
    const attribute = [spec.columns[column].from].flat()[0];
    const type = spec.sourceKey.find((k) => k.name === attribute)!.type;
    item[attribute] = type === "S" ? { S: key[column] } : { N: key[column] };
  }
  return item;
}

/** The source's current items for one target key (all observations for a collapsed table). */
async function pointRead(deps: ValidatorDeps, spec: TableSpec, key: RowKey): Promise<Item[]> {
  const client = deps.dynamo(spec.region);
  const sourceKey = sourceKeyOf(spec, key);
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
  let outcome = { divergent, expectedRows: 0, targetRows: 0 };
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

/** Re-applies the source state of exactly `divergent` keys through the normal merge. */
async function repairKeys(deps: ValidatorDeps, spec: TableSpec, divergent: Divergence[]) {
  const changes: TableChange[] = [];
  const readAt = new Date();
  for (const { key } of divergent) {
    const items = await pointRead(deps, spec, key);
    const ranges = new Set<string>();
    for (const item of items) {
      const mapped = mapScannedItem(spec, item, readAt, "repair");
      if (mapped.ok) {
        changes.push(mapped.value);
        if (mapped.value.change.rangeKey) ranges.add(mapped.value.change.rangeKey);
      }
    }
    const remove = (rangeKey?: string): TableChange => ({
      spec,
      change: {
        op: "delete",
        row: { ...key },
        ...(rangeKey !== undefined ? { rangeKey, rank: 0 } : {}),
        seq: null,
        changedAt: readAt.toISOString(),
        source: "repair",
      } as Change,
    });
    if (!spec.collapse) {
      if (items.length === 0) changes.push(remove());
      continue;
    }
    // Every observation the sync remembers (and the row's own) that the source lacks goes.
    const known = await deps.sql<{ range_key: string }[]>`
      select range_key::text from sync.observations
      where target_table = ${spec.targetTable}
        and row_key = ${JSON.stringify(key)}::text::jsonb and not deleted
      union
      select sync_range_key::text from ${deps.sql(spec.targetTable)}
      where ${deps.sql(spec.targetKey[0])} = ${key[spec.targetKey[0]]}`;
    for (const { range_key } of known) if (!ranges.has(range_key)) changes.push(remove(range_key));
  }
  await deps.sql.begin((tx) => applyChanges(tx, changes));
}

/** Validates one table (and repairs it if asked); records the run in sync_checksums. */
export async function validateTable(
  deps: ValidatorDeps,
  spec: TableSpec,
  options: { repair?: boolean; onRun?: (runId: number) => void } = {},
): Promise<ValidationResult> {
  const log = deps.log ?? (() => {});
  const [{ id }] = await deps
    .sql`insert into public.sync_checksums (target_table, status, source_items)
                                  values (${spec.targetTable}, 'running', 0) returning id`;
  const run = Number(id);
  options.onRun?.(run);
  try {
    const sourceItems = await stageSource(deps, spec, run);
    let outcome = await compare(deps, spec, run);
    if (outcome.divergent.length > 0) outcome = await recheck(deps, spec, run, outcome.divergent);
    const pick = (kind: Divergence["kind"]) =>
      outcome.divergent.filter((d) => d.kind === kind).map((d) => d.key);
    const result: ValidationResult = {
      table: spec.targetTable,
      sourceItems,
      expectedRows: outcome.expectedRows,
      targetRows: outcome.targetRows,
      match: outcome.divergent.length === 0,
      missing: pick("missing"),
      unexpected: pick("unexpected"),
      different: pick("different"),
      checkedAt: new Date().toISOString(),
      runId: run,
    };
    const repairing = options.repair === true && !result.match;
    await deps.sql`update public.sync_checksums set
        status = 'done', checked_at = ${result.checkedAt}, source_items = ${sourceItems},
        expected_rows = ${result.expectedRows}, target_rows = ${result.targetRows},
        match = ${result.match}, missing = ${JSON.stringify(result.missing)}::text::jsonb,
        unexpected = ${JSON.stringify(result.unexpected)}::text::jsonb,
        different = ${JSON.stringify(result.different)}::text::jsonb, repaired = ${repairing}
      where id = ${run}`;
    log(
      `${spec.targetTable}: ${sourceItems} items, ${result.expectedRows} expected rows, ` +
        `${result.targetRows} target rows, ${
          result.match ? "match" : `${outcome.divergent.length} divergent keys`
        }`,
    );
    if (!repairing) return result;
    await repairKeys(deps, spec, outcome.divergent);
    const again = await validateTable(deps, spec, { repair: false });
    return {
      ...again,
      repaired: {
        missing: result.missing,
        unexpected: result.unexpected,
        different: result.different,
      },
    };
  } catch (error) {
    await deps.sql`update public.sync_checksums set status = 'failed', error = ${
      (error as Error).message
    },
                   checked_at = now() where id = ${run}`.catch(() => {});
    throw error;
  } finally {
    await deps.sql`delete from sync.checksum_items where run_id = ${run}`.catch(() => {});
  }
}
