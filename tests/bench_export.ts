/**
 * `npm run bench -- export` (issue 17): a backfill from a point-in-time export at a
 * hundred times the report's volumes, against a bare `COPY` of the same rows.
 *
 * Export files of `BENCH_EXPORT_SCALE` (100) copies of the demo data set, in the demo's
 * shapes with each copy's keys made its own, are written straight into the S3 stand-in in
 * AWS's layout (one data file per table and copy), one copy in memory at a time; with
 * BENCH_EXPORT_REUSE=1, the files an earlier run wrote are loaded again (it says so)
 * (tests/bench_export_files.ts).
 * Every table's export job is then loaded as `npm run backfill -- --from-export` loads it
 * (functions-shared/export_load.ts: chunks of 20 pages of 1,000 COPYed into staging and
 * merged at once; `BENCH_EXPORT_WORKERS`, 2, workers per table), into emptied targets, in
 * a process of its own (tests/bench_export_load.ts), whose peak memory is the loader's
 * alone. BENCH_EXPORT_PAGE_BY_PAGE=1 loads page by page instead, as before the chunks. The
 * raw limit: the same rows, dumped by the server, then `COPY`ed back by the server into an
 * unlogged, unindexed copy of each table (no client, no parsing of DynamoDB JSON, no
 * guard, no index, no observations).
 *
 * The load must leave a row per distinct key of every copy and no dead letter (the data
 * set has no item the mapping refuses): the section throws otherwise, before its
 * baselines (tests/bench_checks.ts). Prints export_items, export_rows,
 * export_rows_expected, export_dead_letters, export_backfill_seconds,
 * export_raw_copy_seconds, export_peak_rss_mb (the loader's VmHWM), the CPU seconds of the
 * loader and of Postgres (its backends, reaped by the postmaster), the WAL written and the
 * size the rows take (tables, observations, sessions, with their indexes), and the goals:
 * the import within 2× the raw COPY, the loader's peak memory within 512 MB. Not in the
 * default sections: at scale 100 it loads 4.8 million items.
 *
 * @module
 */

import type postgres from "postgres";
import { dataSetKeys } from "../demo/demo_data.ts";
import { emptyTargets } from "../demo/load_report_data_set.ts";
import { TABLES } from "../functions-shared/table_registry.ts";
import { dataDir } from "../local-stack/supabase/postgres_cluster.ts";
import { checkCopied } from "./bench_checks.ts";
import { type Figure, formatted, type Goals } from "./bench_goals.ts";
import { exportFor } from "./bench_export_files.ts";
import { connectAdminDb, stack } from "./stack_clients.ts";

/**
 * CPU seconds from /proc/<pid>/stat: the process's own (user + system), or, with
 * `children`, that of its children that have exited (the postmaster's: every Postgres
 * backend of a closed connection). Clock ticks are 100 a second on Linux.
 */
function cpuSeconds(pid: string, children: boolean): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  const [user, system] = children ? [fields[13], fields[14]] : [fields[11], fields[12]];
  return (Number(user) + Number(system)) / 100;
}

/** The stack's postmaster's pid (the first line of its postmaster.pid). */
async function postmasterPid(): Promise<string> {
  return (await Deno.readTextFile(`${await dataDir()}/postmaster.pid`)).split("\n")[0].trim();
}

/**
 * One bulk statement (a server-side COPY) without the stack's `statement_timeout` (2
 * minutes, as Supabase's, local-stack/supabase/postgres.ts): at 100 copies a COPY of the visitors'
 * observations takes about as long, as an operator's bulk load on the project would.
 */
async function bulk(sql: postgres.Sql, statement: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx.unsafe(`set local statement_timeout = 0`);
    await tx.unsafe(statement);
  });
}

/**
 * The bare COPY of the rows the import wrote: server-side, into unindexed copies, every
 * table at once, as the import loads them (timed one after another, the baseline was
 * slower than what it stands for, and flattered the import).
 */
async function rawCopySeconds(sql: postgres.Sql): Promise<number> {
  const copies = TABLES.map((spec) => ({
    table: `public.${spec.targetTable}`,
    file: `/tmp/bench-export-${spec.targetTable}.copy`,
    copy: `bench_raw_copy_${spec.targetTable}`,
  }));
  for (const c of copies) {
    await bulk(sql, `copy ${c.table} to '${c.file}'`);
    await sql.unsafe(`drop table if exists ${c.copy}`);
    await sql.unsafe(`create unlogged table ${c.copy} (like ${c.table})`);
  }
  const started = performance.now();
  await Promise.all(copies.map((c) => bulk(sql, `copy ${c.copy} from '${c.file}'`)));
  const seconds = (performance.now() - started) / 1000;
  for (const c of copies) {
    await sql.unsafe(`drop table ${c.copy}`);
    await Deno.remove(c.file).catch(() => {});
  }
  return seconds;
}

/**
 * The floor of this data model: the rows the import wrote, and the observations of the
 * collapsed tables, dumped by the server, the targets emptied, then `COPY`ed back by the
 * server into the real tables: logged, with every index, constraint and trigger (the
 * visitors' sessions flattened by theirs). No client, no parsing of DynamoDB JSON, no
 * staging, no guard: what any loader that keeps the sync's tables must at least pay.
 */
async function floorCopySeconds(sql: postgres.Sql): Promise<number> {
  const files = TABLES.map((spec) => ({
    table: `public.${spec.targetTable}`,
    rows: `/tmp/bench-export-floor-${spec.targetTable}.copy`,
    observations: `/tmp/bench-export-floor-${spec.targetTable}.observations.copy`,
    target: spec.targetTable,
  }));
  for (const f of files) {
    await bulk(sql, `copy ${f.table} to '${f.rows}'`);
    await bulk(
      sql,
      `copy (select * from sync.observations where target_table = '${f.target}') to '${f.observations}'`,
    );
  }
  await emptyTargets(sql);
  await sql.unsafe(`checkpoint`);
  // Every table at once, as the import loads them.
  const started = performance.now();
  await Promise.all(files.map(async (f) => {
    const from = performance.now();
    await bulk(sql, `copy ${f.table} from '${f.rows}'`);
    const rowsDone = performance.now();
    await bulk(sql, `copy sync.observations from '${f.observations}'`);
    const done = performance.now();
    console.error(
      `bench: floor: ${f.table} ${((rowsDone - from) / 1000).toFixed(2)} s, its observations ${
        ((done - rowsDone) / 1000).toFixed(2)
      } s`,
    );
    await Deno.remove(f.rows).catch(() => {});
    await Deno.remove(f.observations).catch(() => {});
  }));
  return (performance.now() - started) / 1000;
}

/** The export section. */
export async function benchExport(
  sql: postgres.Sql,
  figure: Figure,
  goals: Goals,
): Promise<void> {
  const scale = Number(Deno.env.get("BENCH_EXPORT_SCALE") ?? 100);
  const { files, items, id } = await exportFor(scale);
  await emptyTargets(sql);
  // The jobs' read time: the bench loads files it wrote itself, made of the data set.
  const readAt = new Date();
  const jobs: string[] = [];
  for (const [source, list] of files) {
    // Named as the stack names an export: in its table's region (region_arns.ts).
    const region = TABLES.find((t) => t.sourceTable === source)!.region;
    const arn = `arn:aws:dynamodb:${region}:000000000000:table/${source}/export/${id}`;
    const [{ id: job }] = await sql`
      select sync.start_export_backfill(${source}, ${arn}, ${readAt}, ${stack.EXPORT_BUCKET},
        ${JSON.stringify(list)}::text::jsonb) as id`;
    jobs.push(String(job));
  }
  // The loader runs in a process of its own (tests/bench_export_load.ts): its peak memory
  // is then the loader's, not this process's, which wrote the export files.
  const postmaster = await postmasterPid();
  const pgCpuBefore = cpuSeconds(postmaster, true);
  const [{ lsn: walBefore }] = await sql`select pg_current_wal_lsn()::text as lsn`;
  // A loader that hangs (a job nobody finishes, a lock never granted) is stopped, and the
  // bench fails saying so, rather than wait for ever: 1 ms an item, 10 minutes at least,
  // over six times the slowest load recorded (762 s for 4.8 million items, 158 µs each).
  const timeoutMs = Math.max(600_000, items);
  const timeout = AbortSignal.timeout(timeoutMs);
  const child = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./bench_export_load.ts", import.meta.url).pathname,
      readAt.toISOString(),
      ...jobs,
    ],
    stdout: "piped",
    stderr: "inherit",
    signal: timeout,
  }).output();
  const out = new TextDecoder().decode(child.stdout);
  if (timeout.aborted) {
    throw new Error(
      `bench export: the loader of ${formatted(items)} items was stopped after ${
        timeoutMs / 1000
      } s, expected done within it (tests/bench_export_load.ts)`,
    );
  }
  if (!child.success) throw new Error(`the export loader failed (${child.code}): ${out}`);
  const load = JSON.parse(out.trim().split("\n").at(-1)!) as {
    seconds: number;
    cpuSeconds: number;
    peakRssMb: number;
  };
  const backfill = load.seconds;
  // The loader's backends have exited with its connections; the postmaster reaps them.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const postgresCpu = cpuSeconds(postmaster, true) - pgCpuBefore;
  const [{ bytes: walBytes }] = await sql`
    select pg_wal_lsn_diff(pg_current_wal_lsn(), ${walBefore}::pg_lsn)::bigint as bytes`;
  const [{ bytes: dataBytes }] = await sql.unsafe(
    `select (${
      [
        ...TABLES.map((t) => `public.${t.targetTable}`),
        "sync.observations",
        "analytics.visitor_sessions",
      ]
        .map((t) => `pg_total_relation_size('${t}')`).join(" + ")
    })::bigint as bytes`,
  );
  // The work timed, checked before its figures: every distinct key of every copy a row
  // (each copy is the data set at scale 1 with keys of its own, bench_export_files.ts), no
  // dead letter. Before the baselines too, which take minutes at 100 copies.
  const keys = Object.fromEntries(
    Object.entries(dataSetKeys(1)).map(([table, n]) => [table, n * scale]),
  );
  const copied = await checkCopied(sql, "export", keys);
  figure("export_items", items, 0);
  figure("export_rows", copied.rows, 0);
  figure("export_rows_expected", copied.expected, 0);
  figure("export_dead_letters", copied.letters, 0);
  figure("export_backfill_seconds", backfill, 2);
  figure("export_peak_rss_mb", load.peakRssMb, 0);
  figure("export_loader_cpu_seconds", load.cpuSeconds, 2);
  figure("export_postgres_cpu_seconds", postgresCpu, 2);
  figure("export_wal_mb", Number(walBytes) / 2 ** 20, 0);
  figure("export_data_mb", Number(dataBytes) / 2 ** 20, 0);
  // The baselines copy through the server's files and take a checkpoint: the cluster's
  // superuser's, as `postgres` may do neither (as hosted).
  // A connection per table: the baselines copy every table at once.
  const admin = connectAdminDb(TABLES.length);
  let raw: number, floor: number;
  try {
    raw = await rawCopySeconds(admin);
    figure("export_raw_copy_seconds", raw, 2);
    floor = await floorCopySeconds(admin);
    figure("export_floor_copy_seconds", floor, 2);
  } finally {
    await admin.end();
  }
  figure("export_floor_vs_raw_copy", floor / raw, 2);
  figure("export_backfill_vs_floor", backfill / floor, 2);
  goals.add({
    path: `backfill from an export, ${formatted(items)} items`,
    now: `${formatted(backfill, 1)} s`,
    raw: `${formatted(raw, 1)} s (the same rows COPYed by the server into unindexed tables)`,
    ratio: backfill / raw,
    kind: "max",
    target: 2,
    floor: {
      ratio: floor / raw,
      what: "the same rows and observations COPYed by the server into the real tables",
    },
  });
  // Issue 17's bound on the loader's memory: what it holds is the pages in flight, never a
  // whole file, whatever the export's size.
  goals.add({
    path: "backfill from an export, the loader's peak memory (VmHWM)",
    now: `${formatted(load.peakRssMb)} MB`,
    raw: "—",
    ratio: load.peakRssMb,
    unit: "MB",
    kind: "max",
    target: 512,
  });
  await emptyTargets(sql);
}
