/**
 * The raw limit of the backfill benchmark (tests/bench_backfill.ts): the same tables
 * read as the backfill reads them, by a bare parallel Scan paced to the same read
 * budget, each page written with a bare multi-row upsert. What is left is what the
 * tables and Postgres allow.
 *
 * @module
 */

import { TablePacer } from "./table_pacer.ts";
import { type AttributeValue, ScanCommand } from "@aws-sdk/client-dynamodb";
import postgres from "postgres";
import { encodeJson } from "../functions-shared/dynamo_encoder.ts";
import { NO_DELAY } from "../functions-shared/pg_socket.ts";
import { mapScannedItem } from "../functions-shared/record_mapping.ts";
import { TABLES, type TableSpec } from "../functions-shared/table_registry.ts";
import { withBackoff } from "../functions-shared/scan_pacing.ts";
import { stackEnvReader } from "../local-stack/stack_env.ts";
import { localDynamo } from "../local-stack/aws/source_tables.ts";
import { stack } from "./stack_clients.ts";

/** The segments the backfill is started with, and that the raw limit scans at once. */
export const SEGMENTS = 8;
/** The items of a page: the raw limit's Scans', and the merge cost's (bench_merge_cost.ts). */
export const PAGE = 1000;

/**
 * The table's read budget the import-worker paces itself to (IMPORT_WORKER_MAX_RCU_PER_SECOND,
 * functions-shared/settings.ts; 250 unless the stack's env says otherwise). The raw limit
 * reads within the same budget: it is the limit a copy meets that reads the tables as
 * the backfill may, not one that takes the applications' capacity.
 */
export const RCU_PER_SECOND: number = Number(
  stackEnvReader(stack)("IMPORT_WORKER_MAX_RCU_PER_SECOND") ?? 250,
);

type Item = Record<string, AttributeValue>;

/** Columns of a row that Postgres may be given (a generated column may not). */
async function writableColumns(sql: postgres.Sql, table: string): Promise<Set<string>> {
  const rows = await sql`select column_name from information_schema.columns
                         where table_schema = 'public' and table_name = ${table}
                           and is_generated = 'NEVER'`;
  return new Set(rows.map((r) => String(r.column_name)));
}

/**
 * One page's rows as the backfill ends with them: mapped, one per key (the newest
 * observation of a collapsed table's key within the page).
 */
function pageRows(spec: TableSpec, items: Item[], readAt: Date) {
  const rows = new Map<string, Record<string, unknown>>();
  const best = new Map<string, [string, number]>();
  for (const item of items) {
    const mapped = mapScannedItem(spec, item, readAt);
    if (!mapped.ok || mapped.value.change.op !== "upsert") continue;
    const { change } = mapped.value;
    const key = spec.targetKey.map((k) => String(change.row[k])).join("|");
    const rank: [string, number] = [change.rangeKey ?? "0", change.rank ?? 0];
    const held = best.get(key);
    if (
      !held || Number(rank[0]) > Number(held[0]) || (rank[0] === held[0] && rank[1] > held[1])
    ) {
      best.set(key, rank);
      rows.set(key, {
        ...change.row,
        ...(spec.collapse ? { sync_range_key: change.rangeKey } : {}),
        sync_changed_at: change.changedAt,
        sync_source: "backfill",
      });
    }
  }
  return [...rows.values()];
}

/**
 * The raw limit: every segment of every table scanned at once, as the backfill must read
 * them (consistent reads, paced to the same read budget per table, shared by the
 * table's segments as tightly as one process can (TablePacer), through the same
 * proxy with its throttling and faults, the SDK's retries and the worker's own rounds),
 * each page inserted as it arrives with one bare multi-row upsert. No merge, no
 * ordering guard, no checkpoint, no lease, no Edge Function: what is left is what the
 * tables and Postgres allow. Returns seconds, items, rows, and each table's seconds.
 */
export async function rawLimit(sql: postgres.Sql) {
  // Its own pool, as wide as the functions' (8 isolates of 3): writes must not wait for
  // a connection the backfill would have had.
  const writer = postgres(stack.DATABASE_URL, { max: 24, onnotice: () => {}, ...NO_DELAY });
  try {
    return await rawLimitWith(sql, writer);
  } finally {
    await writer.end();
  }
}

async function rawLimitWith(sql: postgres.Sql, writer: postgres.Sql) {
  const t = performance.now();
  let rows = 0;
  const perTable = new Map<string, { seconds: number; items: number }>();
  await Promise.all(TABLES.map(async (spec) => {
    const client = localDynamo(stack, spec.region);
    const columns = await writableColumns(sql, spec.targetTable);
    const started = performance.now();
    let items = 0;
    const pacer = new TablePacer(RCU_PER_SECOND);
    await Promise.all(Array.from({ length: SEGMENTS }, async (_, segment) => {
      let start: Item | undefined;
      // A page's write runs while the next page is read: its pacing, not the write,
      // decides when the segment reads next.
      let writing: Promise<void> = Promise.resolve();
      do {
        const booked = await pacer.take();
        const readAt = new Date();
        const page = await withBackoff(() =>
          client.send(
            new ScanCommand({
              TableName: spec.sourceTable,
              Segment: segment,
              TotalSegments: SEGMENTS,
              ExclusiveStartKey: start,
              Limit: PAGE,
              ConsistentRead: true,
              ReturnConsumedCapacity: "TOTAL",
            }),
          ), () => {});
        pacer.settle(booked, page.ConsumedCapacity?.CapacityUnits ?? 1);
        start = page.LastEvaluatedKey;
        items += page.Items?.length ?? 0;
        const chunk = pageRows(spec, page.Items ?? [], readAt);
        if (chunk.length === 0) continue;
        const cols = Object.keys(chunk[0]).filter((c) => columns.has(c));
        const keys = spec.targetKey.join(", ");
        await writing;
        // The raw limit writes as the sync does, not as an admin: its updates are not
        // edits to write back (sync.write_back_skip, 20261128002500_write_back.sql).
        writing = writer.begin(async (tx) => {
          await tx`select set_config('sync.write_back_skip', 'on', true)`;
          await tx.unsafe(
            `insert into public.${spec.targetTable} (${cols.join(", ")})
             select ${cols.join(", ")}
             from jsonb_populate_recordset(null::public.${spec.targetTable}, $1::text::jsonb)
             on conflict (${keys}) do update set
               ${cols.map((c) => `${c} = excluded.${c}`).join(", ")}`,
            [encodeJson(chunk)],
          );
        }).then(() => void (rows += chunk.length));
      } while (start);
      await writing;
    }));
    perTable.set(spec.targetTable, { seconds: (performance.now() - started) / 1000, items });
  }));
  const seconds = (performance.now() - t) / 1000;
  const items = [...perTable.values()].reduce((n, x) => n + x.items, 0);
  return { seconds, items, rows, perTable };
}
