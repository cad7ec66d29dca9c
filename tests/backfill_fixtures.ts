/**
 * What the backfill tests share (tests/backfill_test.ts): items for every table under a
 * key prefix, a snapshot of the rows they map to, forgetting those rows, waiting for
 * backfill jobs, counting a source table, and writing items of one table through its stream.
 *
 * @module
 */

import { type AttributeValue, ScanCommand } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { byTargetTable, TABLES } from "../functions-shared/table_registry.ts";
import { batchWrite } from "../demo/load_dynamo.ts";
import { dynamo, eventually } from "./stack_clients.ts";

/** An item in DynamoDB JSON. */
export type Item = Record<string, AttributeValue>;
/** A string attribute. */
export const S = (s: string): AttributeValue => ({ S: s });
/** A number attribute. */
export const N = (n: number | string): AttributeValue => ({ N: String(n) });

/** Items with keys that start with `p`, for every table (several observations for the collapsed ones). */
export function itemsFor(target: string, p: string, n: number): Item[] {
  const list: Item[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${p}${i}`;
    switch (target) {
      case "firespring_actions":
        list.push({
          action_id: S(id),
          action_type: S("click"),
          timestamp: N(1770379200 + i),
          data: { M: { i: N(i) } },
        });
        break;
      case "firespring_visitors":
        for (let k = 0; k < 3; k++) {
          list.push({
            session_id: S(id),
            timestamp: N(1770379200 + k),
            pages_viewed: N(k + i),
            sessions: {
              L: [{ M: { session_id: S(`${id}-${k}`), geolocation: S("Toledo, Ohio, USA") } }],
            },
          });
        }
        break;
      case "firespring_extraction_jobs":
        list.push({ job_id: S(id), updated_at: N(1000), status: S("running") });
        list.push({
          job_id: S(id),
          updated_at: N(2000),
          status: S(i % 5 ? "complete" : "failed"),
          records_extracted: N(i),
        });
        break;
      case "firespring_traffic_sources":
        list.push({ source_id: S(id), name: S("google"), visitors: N(i), period: S("2026-01") });
        break;
      case "firespring_segments":
        list.push({
          segment_id: S(id),
          name: S(`segment ${i}`),
          value: N(`${i}${"9".repeat(30)}`),
        });
        break;
      case "firespring_searches":
        list.push({ search_id: S(id), query: S(`q${i}`), count: N(i), searched_at: N(1770379200) });
        break;
      case "firespring_network_state":
        list.push({
          state_key: S(id),
          value: { M: { up: { BOOL: i % 2 === 0 } } },
          updated_at: N(1770379200),
        });
        break;
      case "mmp_toledo_leads":
        list.push({
          id: S(id),
          name: S(`lead ${i}`),
          _version: N(1),
          _deleted: { BOOL: i % 4 === 0 },
        });
        break;
      case "toledo_dashboard":
        list.push({ pk: S(id), sk: S("metrics"), metrics: { M: { v: N(i) } } });
        break;
    }
  }
  return list;
}

/** The data columns (no sync_* columns) of the rows whose key starts with `p`, per table. */
export async function snapshot(sql: postgres.Sql, p: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const spec of TABLES) {
    const key = spec.targetKey[0];
    const rows = await sql.unsafe(
      `select to_jsonb(t) - 'sync_sequence' - 'sync_changed_at' - 'sync_source' - 'synced_at' as r
       from public.${spec.targetTable} t where ${key} like $1 order by ${
        spec.targetKey.join(", ")
      }`,
      [`${p}%`],
    );
    out[spec.targetTable] = rows.map((row) => row.r);
  }
  return out;
}

/**
 * Writes `items` (whose keys start with `p`) to the source table of `target`, and waits
 * until the stream has made a row of each: `rows` rows whose key starts with `p` (one a
 * hash key, for a collapsed table).
 */
export async function writeThroughTheStream(
  sql: postgres.Sql,
  target: string,
  p: string,
  items: Item[],
  rows = items.length,
  timeoutMs = 90_000,
): Promise<void> {
  const spec = byTargetTable(target)!;
  await batchWrite(dynamo(spec.region), spec.sourceTable, items);
  await eventually("the stream to deliver the items", async () => {
    const [r] = await sql.unsafe(
      `select count(*)::int as n from public.${target} where ${spec.targetKey[0]} like $1`,
      [`${p}%`],
    );
    return r.n === rows ? true : undefined;
  }, timeoutMs);
}

/** Removes the rows (and what the merge remembers of them) whose key starts with `p`. */
export async function forget(sql: postgres.Sql, p: string, targets: string[]): Promise<void> {
  for (const target of targets) {
    const key = byTargetTable(target)!.targetKey[0];
    await sql.unsafe(`delete from public.${target} where ${key} like $1`, [`${p}%`]);
    await sql`delete from sync.observations where target_table = ${target} and row_key ->> ${key} like ${
      p + "%"
    }`;
    await sql`delete from sync.tombstones where target_table = ${target} and row_key ->> ${key} like ${
      p + "%"
    }`;
  }
}

/** Waits until the backfill jobs `ids` are done or failed; returns their progress rows. */
export async function waitForJobs(sql: postgres.Sql, ids: string[], timeoutMs = 120_000) {
  return await eventually(`backfill jobs ${ids.join(", ")} to finish`, async () => {
    const rows = await sql`select job_id, status, items_scanned, rows_written, segments_done
                           from sync.backfill_progress where job_id = any(${ids}::bigint[])`;
    return rows.every((r) => r.status === "done" || r.status === "failed") ? rows : undefined;
  }, timeoutMs);
}

/** How many items a full Scan of a target table's source table counts. */
export async function scanCount(target: string): Promise<number> {
  const spec = byTargetTable(target)!;
  let count = 0;
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamo(spec.region).send(
      new ScanCommand({
        TableName: spec.sourceTable,
        Select: "COUNT",
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    count += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return count;
}

/**
 * Queues a backfill of `sourceTable` without waking the import-worker, with its page size
 * and lease set in the same transaction: a claim made meanwhile (a pg_cron tick, a run
 * still going) never sees the job with the defaults. Returns the job's id.
 */
export async function queueBackfill(
  sql: postgres.Sql,
  sourceTable: string,
  segments: number,
  set: { pageSize?: number; leaseSeconds?: number },
): Promise<string> {
  return await sql.begin(async (tx) => {
    const [row] = await tx`select sync.start_backfill(${sourceTable}, ${segments}, false) as id`;
    await tx`update sync.backfill_jobs
             set page_size = coalesce(${set.pageSize ?? null}::int, page_size),
                 lease_seconds = coalesce(${set.leaseSeconds ?? null}::int, lease_seconds)
             where id = ${row.id}`;
    return String(row.id);
  });
}

/**
 * Starts an export backfill of `source` from `files` in `bucket` (4 segments' worth of
 * workers), its export taken at `exportTime`, which may be years ago: an export that old is
 * refused while the tombstones kept are younger than it, so they are kept longer for as
 * long as this transaction takes, which no other session sees. Answers the job's id.
 */
export async function startOldExportBackfill(
  sql: postgres.Sql,
  source: string,
  arn: string,
  exportTime: Date,
  bucket: string,
  files: { key: string; itemCount: number; md5: string }[],
): Promise<string> {
  const [{ id }] = await sql.begin(async (tx) => {
    const kept = await tx`
      select key, value from sync.settings
      where key in ('tombstone_retention', 'observation_retention') for update`;
    await tx`update sync.settings set value = '100 years'
             where key in ('tombstone_retention', 'observation_retention')`;
    const started = await tx`
      select sync.start_export_backfill(${source}, ${arn}, ${exportTime}, ${bucket},
        ${JSON.stringify(files)}::text::jsonb, 4)::text as id`;
    for (const { key, value } of kept) {
      await tx`update sync.settings set value = ${value} where key = ${key}`;
    }
    return started;
  });
  return String(id);
}
