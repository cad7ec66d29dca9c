/**
 * `npm run bench -- export` (issue 17): a backfill from a point-in-time export at a
 * hundred times the report's volumes, against a bare `COPY` of the same rows.
 *
 * Export files of `BENCH_EXPORT_SCALE` (100) copies of the demo data set, in the demo's
 * shapes with each copy's keys made its own, are written straight into the S3 stand-in in
 * AWS's layout (one data file per table and copy), one copy in memory at a time. Every
 * table's export job is then loaded as `npm run backfill -- --from-export` loads it
 * (functions-shared/export_load.ts: `BENCH_EXPORT_WORKERS`, 2, workers per table, pages
 * of 1,000), into emptied targets. The raw limit: the same rows, dumped by the server, then
 * `COPY`ed back by the server into an unlogged, unindexed copy of each table (no client,
 * no parsing of DynamoDB JSON, no guard, no index).
 *
 * Prints export_items, export_rows, export_rows_expected (every distinct key; the demo's
 * poison items are dead letters instead: export_dead_letters), export_backfill_seconds,
 * export_raw_copy_seconds and export_peak_rss_mb (this process's, sampled every 200 ms),
 * and the goal: the import within 2× the raw COPY. Not in the default sections: at scale
 * 100 it loads 4.8 million items.
 *
 * @module
 */

import type postgres from "postgres";
import { demoItems, REPORT_VOLUMES } from "../demo/demo_data.ts";
import { emptyTargets } from "../demo/load_report_data_set.ts";
import { processMeter } from "../functions-shared/cpu_meter.ts";
import { loadExportJob } from "../functions-shared/export_load.ts";
import { connectDb as connectPool } from "../functions-shared/sync_db.ts";
import { TABLES } from "../functions-shared/table_registry.ts";
import { gzipItems } from "../local-stack/aws/export_layout.ts";
import { s3Client } from "../local-stack/aws/s3_server.ts";
import { s3Storage } from "../local-stack/aws/s3_storage.ts";
import { exportFileOpener } from "../scripts/export_backfill.ts";
import { formatted, type Goals } from "./bench_goals.ts";
import { stack } from "./stack_clients.ts";

type Item = Record<string, Record<string, unknown>>;

/** The item with each key attribute's string value made copy `k`'s own. */
function ownKeys(item: Item, keys: string[], k: number): Item {
  if (k === 0) return item;
  const out = { ...item };
  for (const key of keys) {
    const value = out[key];
    if (value && typeof value.S === "string") out[key] = { S: `${value.S}-c${k}` };
  }
  return out;
}

/** Writes the export files; answers each source table's files. */
async function writeExport(scale: number, id: string) {
  const storage = s3Storage(s3Client(stack.S3_ENDPOINT));
  const files = new Map<string, { key: string; itemCount: number; md5: string }[]>();
  let items = 0;
  for (let k = 0; k < scale; k++) {
    const copy = demoItems(7, 1);
    for (const spec of TABLES) {
      const keys = spec.sourceKey.map((key) => key.name);
      const own = (copy[spec.sourceTable] ?? []).map((item) =>
        ownKeys(item as unknown as Item, keys, k)
      );
      const { bytes, md5 } = await gzipItems(own);
      const key = `bench/AWSDynamoDB/${id}/data/${spec.targetTable}-${k}.json.gz`;
      await storage.put(stack.EXPORT_BUCKET, key, bytes);
      const list = files.get(spec.sourceTable) ?? [];
      list.push({ key, itemCount: own.length, md5 });
      files.set(spec.sourceTable, list);
      items += own.length;
    }
    if (k % 10 === 9) console.log(`export files: ${k + 1} of ${scale} copies written`);
  }
  return { files, items };
}

/** The bare COPY of the rows the import wrote: server-side, into unindexed copies. */
async function rawCopySeconds(sql: postgres.Sql): Promise<number> {
  let seconds = 0;
  for (const spec of TABLES) {
    const file = `/tmp/bench-export-${spec.targetTable}.copy`;
    await sql.unsafe(`copy public.${spec.targetTable} to '${file}'`);
    await sql.unsafe(`drop table if exists bench_raw_copy`);
    await sql.unsafe(`create unlogged table bench_raw_copy (like public.${spec.targetTable})`);
    const started = performance.now();
    await sql.unsafe(`copy bench_raw_copy from '${file}'`);
    seconds += (performance.now() - started) / 1000;
    await sql.unsafe(`drop table bench_raw_copy`);
    await Deno.remove(file).catch(() => {});
  }
  return seconds;
}

/** The export section. */
export async function benchExport(
  sql: postgres.Sql,
  figure: (name: string, value: number, digits?: number) => void,
  goals: Goals,
): Promise<void> {
  const scale = Number(Deno.env.get("BENCH_EXPORT_SCALE") ?? 100);
  const workers = Number(Deno.env.get("BENCH_EXPORT_WORKERS") ?? 2);
  const id = `${Date.now()}-bench`;
  const { files, items } = await writeExport(scale, id);
  await emptyTargets(sql);
  const exportTime = new Date();
  const jobs: string[] = [];
  for (const [source, list] of files) {
    const arn = `arn:aws:dynamodb:ddblocal:000000000000:table/${source}/export/${id}`;
    const [{ id: job }] = await sql`
      select sync.start_export_backfill(${source}, ${arn}, ${exportTime}, ${stack.EXPORT_BUCKET},
        ${JSON.stringify(list)}::text::jsonb) as id`;
    jobs.push(String(job));
  }
  let peakRss = Deno.memoryUsage().rss;
  const sampler = setInterval(() => peakRss = Math.max(peakRss, Deno.memoryUsage().rss), 200);
  const pool = connectPool(stack.DATABASE_URL, workers * jobs.length);
  const client = s3Client(stack.S3_ENDPOINT);
  const open = exportFileOpener(client, stack.EXPORT_BUCKET);
  const started = performance.now();
  try {
    await Promise.all(jobs.map((job) =>
      loadExportJob(job, workers, "bench-export", {
        sql: pool,
        open,
        exportTime,
        cpu: processMeter(() => ({ user: 0, system: 0 })),
      })
    ));
  } finally {
    clearInterval(sampler);
    client.destroy();
    await pool.end();
  }
  const backfill = (performance.now() - started) / 1000;
  const [{ rows }] = await sql.unsafe(
    `select (${
      TABLES.map((t) => `(select count(*) from public.${t.targetTable})`).join(" + ")
    })::bigint as rows`,
  );
  // Every distinct key a row, but the items the demo makes poison on purpose (dead letters).
  const expected = Object.values(REPORT_VOLUMES).reduce((sum, v) => sum + v.keys, 0) * scale;
  const [{ letters }] = await sql`select count(*)::int as letters from sync.dead_letters`;
  const raw = await rawCopySeconds(sql);
  figure("export_items", items, 0);
  figure("export_rows", Number(rows), 0);
  figure("export_rows_expected", expected, 0);
  figure("export_dead_letters", letters, 0);
  figure("export_backfill_seconds", backfill, 2);
  figure("export_raw_copy_seconds", raw, 2);
  figure("export_peak_rss_mb", peakRss / 2 ** 20, 0);
  goals.add({
    path: `backfill from an export, ${formatted(items)} items`,
    now: `${formatted(backfill, 1)} s`,
    raw: `${formatted(raw, 1)} s (the same rows COPYed by the server into unindexed tables)`,
    ratio: backfill / raw,
    kind: "max",
    target: 2,
  });
  await emptyTargets(sql);
}
