/**
 * The backfill benchmark: the seed report's data set (48,124 items over 35,817 keys,
 * which the report copied in 19.4 minutes) backfilled through the import-worker, and
 * the raw limit measured in the same run: a bare parallel Scan of the same tables plus
 * a bare multi-row insert of the same rows.
 *
 * It loads the data set into a fresh DynamoDB Local (demo/load_report_data_set.ts),
 * empties the target tables, and measures.
 *
 * @module
 */

import { type AttributeValue, type DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { emptyTargets, loadReportDataSet } from "../demo/load_report_data_set.ts";
import { encodeJson } from "../functions-shared/dynamo_encoder.ts";
import { mapScannedItem } from "../functions-shared/record_mapping.ts";
import { TABLES } from "../functions-shared/table_registry.ts";
import { up } from "../local-stack/stack.ts";
import { localDynamo } from "../local-stack/source_tables.ts";
import { edgeCpuSince, markEdgeCpu, printEdgeCpu } from "./bench_edge_cpu.ts";
import { eventually, stack } from "./stack_clients.ts";

const SEGMENTS = 8;
const PAGE = 1000;

type Item = Record<string, AttributeValue>;

async function scanSegment(
  client: DynamoDBClient,
  table: string,
  segment: number,
): Promise<Item[]> {
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        Segment: segment,
        TotalSegments: SEGMENTS,
        ExclusiveStartKey: start,
        Limit: PAGE,
      }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The raw limit: seconds of a bare parallel Scan, and of a bare insert of the same rows. */
async function rawLimit(sql: postgres.Sql) {
  let t = performance.now();
  const scanned = await Promise.all(TABLES.map(async (spec) => {
    const client = localDynamo(stack, spec.region);
    const segments = await Promise.all(
      Array.from({ length: SEGMENTS }, (_, s) => scanSegment(client, spec.sourceTable, s)),
    );
    return { spec, items: segments.flat() };
  }));
  const scanSeconds = (performance.now() - t) / 1000;

  // The rows the backfill ends with: mapped, and collapsed to one per key (not timed).
  const readAt = new Date();
  const rowsPerTable = scanned.map(({ spec, items }) => {
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
    return { spec, rows: [...rows.values()], items: items.length };
  });

  t = performance.now();
  for (const { spec, rows } of rowsPerTable) {
    for (let i = 0; i < rows.length; i += PAGE) {
      const chunk = encodeJson(rows.slice(i, i + PAGE));
      await sql.unsafe(
        `insert into public.${spec.targetTable} select * from jsonb_populate_recordset(null::public.${spec.targetTable}, $1::text::jsonb)`,
        [chunk],
      ).catch(async () => {
        // Tables with generated columns take the columns by name.
        const cols = Object.keys(rows[0]);
        await sql.unsafe(
          `insert into public.${spec.targetTable} (${cols.join(", ")})
           select ${
            cols.join(", ")
          } from jsonb_populate_recordset(null::public.${spec.targetTable}, $1::text::jsonb)`,
          [chunk],
        );
      });
    }
  }
  const insertSeconds = (performance.now() - t) / 1000;
  const items = rowsPerTable.reduce((sum, r) => sum + r.items, 0);
  const rows = rowsPerTable.reduce((sum, r) => sum + r.rows.length, 0);
  return { scanSeconds, insertSeconds, items, rows };
}

/** Runs the backfill of every table and waits for it; returns seconds, items and rows. */
async function backfillAll(sql: postgres.Sql) {
  const t = performance.now();
  const jobs: string[] = [];
  for (const spec of TABLES) {
    const [row] = await sql`select sync.start_backfill(${spec.sourceTable}, ${SEGMENTS}) as id`;
    jobs.push(row.id);
  }
  const done = await eventually("the backfill to finish", async () => {
    const rows = await sql`select status, items_scanned, rows_written from sync.backfill_progress
                           where job_id = any(${jobs}::bigint[])`;
    return rows.every((r) => r.status === "done") ? rows : undefined;
  }, 600_000);
  const seconds = (performance.now() - t) / 1000;
  const [{ pages }] = await sql`select coalesce(sum(pages), 0)::int as pages
                                from sync.backfill_segments where job_id = any(${jobs}::bigint[])`;
  return {
    pages,
    seconds,
    items: done.reduce((sum, r) => sum + Number(r.items_scanned), 0),
    rows: done.reduce((sum, r) => sum + Number(r.rows_written), 0),
  };
}

/** The benchmark; prints `name: value` lines. */
export async function benchBackfill(
  sql: postgres.Sql,
  figure: (n: string, v: number, d?: number) => void,
) {
  const scale = Number(Deno.env.get("BENCH_SCALE") ?? 1);
  try {
    const loaded = await loadReportDataSet(stack, sql, 20260206, scale, (l) => console.error(l));
    const total = Object.values(loaded).reduce((x, y) => x + y, 0);
    console.error(`bench: loaded ${total} items into DynamoDB Local`);
    const raw = await rawLimit(sql);
    await emptyTargets(sql);
    const workerCpu = await markEdgeCpu();
    const backfill = await backfillAll(sql);
    printEdgeCpu(
      "import_worker",
      await edgeCpuSince(workerCpu, "import-worker"),
      backfill.pages,
      figure,
    );
    const [{ rows }] = await sql.unsafe(
      `select ${
        TABLES.map((t) => `(select count(*) from public.${t.targetTable})`).join(" + ")
      } as rows`,
    );
    const rawSeconds = raw.scanSeconds + raw.insertSeconds;
    figure("backfill_items", backfill.items, 0);
    figure("backfill_target_rows", Number(rows), 0);
    figure("backfill_seconds", backfill.seconds, 2);
    figure("backfill_items_per_second", backfill.items / backfill.seconds, 0);
    figure("raw_parallel_scan_seconds", raw.scanSeconds, 2);
    figure("raw_multirow_insert_seconds", raw.insertSeconds, 2);
    figure("raw_limit_seconds", rawSeconds, 2);
    figure("backfill_vs_raw_limit", backfill.seconds / rawSeconds, 2);
    figure("seed_report_seconds", 19.4 * 60, 0);
    figure("backfill_speedup_vs_seed_report", (19.4 * 60) / backfill.seconds, 1);
  } finally {
    await up(); // whatever happened, leave the stack running
  }
}
