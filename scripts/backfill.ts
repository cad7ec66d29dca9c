/**
 * `npm run backfill -- <table ...|--all> [--segments N]`: queues backfills (by DynamoDB
 * or Postgres table name) with `sync.start_backfill`, then shows a progress bar per
 * table (items, rows, rate, ETA, segments) from `sync.backfill_progress` until every job
 * has finished. Exits non-zero if one failed, with its cause.
 *
 * `npm run backfill -- --from-export <table ...|--all> [--bucket B] [--prefix P]
 * [--export-arn ARN] [--workers N]`: backfills from point-in-time exports instead
 * (scripts/export_backfill.ts), loaded here, next to the database, by N workers (4) per
 * table. The bucket defaults to EXPORT_BUCKET (the local stack's S3 stand-in has one).
 *
 * Reads DATABASE_URL (default: the local stack's, with its DynamoDB Local) and, for the
 * ETA, the tables' item counts from DynamoDB (DYNAMODB_ENDPOINT and the usual AWS
 * settings; with DATABASE_URL given, the local stack's are not used).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { DescribeTableCommand } from "../functions-shared/dynamo_commands.ts";
import type { DynamoClient } from "../functions-shared/dynamo_http.ts";
import type postgres from "postgres";
import { processMeter } from "../functions-shared/cpu_meter.ts";
import { dynamoClients } from "../functions-shared/dynamo_client.ts";
import { loadExportJob } from "../functions-shared/export_load.ts";
import { connectDb } from "../functions-shared/sync_db.ts";
import { describeDbTarget, isSharedPooler, parseDbUrl } from "../functions-shared/db_url.ts";
import { RunGate } from "../functions-shared/run_gate.ts";
import { registrySchemaGuard, SchemaMismatch } from "../functions-shared/schema_guard.ts";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { type BackfillArgs, backfillArgs } from "./backfill_args.ts";
import { STACK_ENV_FILE } from "../local-stack/config.ts";
import { readStackEnv } from "../local-stack/stack_env.ts";
import {
  type ExportBackfillDeps,
  exportDynamoClients,
  startExportBackfill,
} from "./export_backfill.ts";
import { exportFileOpener, exportS3Client } from "./export_s3.ts";

/** A row of `sync.backfill_progress`. */
export interface Progress {
  job_id: string;
  target_table: string;
  status: string;
  segments_done: number;
  total_segments: number;
  items_scanned: number;
  rows_written: number;
  items_per_second: number | null;
  /** `scan`, or `export` (then the segments are the export's data files). */
  source?: string;
  /** An export's item count (its manifest's). */
  expected_items?: number | null;
}

const BAR = 24;

/** One line of progress for a job. */
export function progressLine(p: Progress, expectedItems: number | undefined): string {
  const items = Number(p.items_scanned);
  const total = Math.max(Number(p.expected_items ?? expectedItems ?? 0), items);
  const share = p.status === "done" ? 1 : total > 0 ? Math.min(1, items / total) : 0;
  const filled = Math.round(share * BAR);
  const rate = Number(p.items_per_second ?? 0);
  const eta = p.status === "done"
    ? "done"
    : p.status === "failed"
    ? "FAILED"
    : p.status === "cancelled"
    ? "CANCELLED"
    : rate > 0 && total > items
    ? `ETA ${Math.ceil((total - items) / rate)}s`
    : "ETA ?";
  return `${p.target_table.padEnd(27)} [${"#".repeat(filled)}${"-".repeat(BAR - filled)}] ` +
    `${items.toLocaleString("en-US").padStart(7)}/${
      total.toLocaleString("en-US").padEnd(7)
    } items ` +
    `${Number(p.rows_written).toLocaleString("en-US").padStart(7)} rows ` +
    `${rate.toFixed(0).padStart(6)}/s  ${p.source === "export" ? "files" : "segments"} ` +
    `${p.segments_done}/${p.total_segments}  ${eta}`;
}

/** Queues a backfill of each table; returns the job ids and each table's item count (for the ETA). */
export async function startBackfills(
  sql: postgres.Sql,
  dynamo: (region: string) => DynamoClient,
  tables: TableSpec[],
  segments: number,
): Promise<{ jobs: string[]; expected: Map<string, number | undefined> }> {
  const expected = new Map<string, number | undefined>();
  const jobs: string[] = [];
  for (const spec of tables) {
    // Only for the ETA: without it the backfill runs the same, and says why it shows "?".
    const description = await dynamo(spec.region).send(
      new DescribeTableCommand({ TableName: spec.sourceTable }),
    ).catch((error) => {
      console.error(
        `${spec.targetTable}: no item count for the ETA (DescribeTable of ${spec.sourceTable} in ${spec.region}: ${
          (error as Error).message
        })`,
      );
      return undefined;
    });
    expected.set(spec.targetTable, description?.Table?.ItemCount);
    // A Scan backfill of the table that is still pending or running (a run of this
    // command interrupted, say) is followed, not started again beside it: two would read
    // the table at twice its read budget, which is each job's. Every one of them: a heal
    // may have queued a newer job behind a running one, and the table is whole (its stale
    // mark cleared) only once that one ends too.
    const active = await sql<{ id: string; status: string }[]>`
      select id, status from sync.backfill_jobs
      where source_table = ${spec.sourceTable} and status in ('pending', 'running')
        and checksum_run_id is null and export_arn is null
      order by id`;
    if (active.length > 0) {
      for (const job of active) {
        console.log(
          `backfill: ${spec.targetTable}: following backfill job ${job.id}, already ${job.status}`,
        );
        jobs.push(job.id);
      }
      continue;
    }
    const [row] = await sql`select sync.start_backfill(${spec.sourceTable}, ${segments}) as id`;
    jobs.push(row.id);
  }
  return { jobs, expected };
}

/**
 * Shows a progress bar per job (redrawn in place on a terminal, a block every 2 s
 * otherwise) until every job has finished, or `until` settles (the loaders of the jobs
 * have all stopped: a job still running then waits for a later run); returns the failed
 * jobs' causes, and names each job left running.
 */
export async function followBackfills(
  sql: postgres.Sql,
  jobs: string[],
  expected: Map<string, number | undefined>,
  until?: Promise<unknown>,
): Promise<string[]> {
  const tty = Deno.stdout.isTerminal();
  let printed = 0;
  let lastPlain = 0;
  let stopped = false;
  until?.finally(() => (stopped = true)).catch(() => {});
  for (;;) {
    // Read before the rows: loaders that stopped before the query are seen by it.
    const loadersStopped = stopped;
    const rows = await sql<Progress[]>`
      select * from sync.backfill_progress where job_id = any(${jobs}::bigint[]) order by job_id`;
    const lines = rows.map((p) => progressLine(p, expected.get(p.target_table)));
    // Cancelled too (npm start's reset, the validator, an operator's update): it never
    // finishes otherwise, and the bar would show its last ETA for ever.
    const over = (p: Progress) => ["done", "failed", "cancelled"].includes(p.status);
    const finished = loadersStopped || rows.every(over);
    if (tty) {
      if (printed > 0) Deno.stdout.writeSync(new TextEncoder().encode(`\x1b[${printed}A`));
      console.log(lines.map((l) => `\x1b[2K${l}`).join("\n"));
      printed = lines.length;
    } else if (finished || Date.now() - lastPlain > 2_000) {
      console.log(lines.join("\n"));
      lastPlain = Date.now();
    }
    if (finished) {
      const failed = await sql`select id, source_table, status, error from sync.backfill_jobs
                               where id = any(${jobs}::bigint[])
                                 and status in ('failed', 'cancelled')`;
      return [
        ...failed.map((f) =>
          f.status === "cancelled"
            ? `backfill job ${f.id} of ${f.source_table} was cancelled${
              f.error ? `: ${f.error}` : ""
            }; start it again`
            : `backfill job ${f.id} of ${f.source_table} failed: ${f.error}`
        ),
        ...rows.filter((p) => !over(p)).map((p) =>
          `backfill job ${p.job_id} of ${p.target_table} is left ${p.status}: its loader ` +
          "stopped (above); run the command again to go on from its checkpoints"
        ),
      ];
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * The direct connections the export loaders share: one a worker, at most 16. A hosted
 * project's smallest compute takes 60 direct connections, shared with PostgREST, Auth,
 * Storage and the pooler's (https://supabase.com/docs/guides/platform/compute-add-ons),
 * and `--all` at 4 workers asked for 36; past 16 the workers only wait on Postgres's two
 * cores anyway (a chunk holds its connection for its COPY and merge).
 *
 * Through a pooler the Edge Functions share (`isSharedPooler`: Supavisor in either mode,
 * a transaction pooler) the command takes {@link POOLER_CONNECTIONS} in all, its
 * progress bars' one included: Supavisor's pool is shared between its session and
 * transaction modes (https://supabase.com/docs/guides/database/connecting-to-postgres),
 * 15 connections on the smallest compute, and a chunk holds a server connection for its
 * COPY and merge, so a loader holding them all left the webhook and the workers none
 * (ECHECKOUTTIMEOUT for the whole load).
 */
export function exportPoolSize(workers: number, tables: number, pooled = false): number {
  return Math.min(workers * tables, pooled ? POOLER_CONNECTIONS - 1 : 16);
}

/** The export command's connections at most through a pooler (its bars' one included). */
export const POOLER_CONNECTIONS = 4;

/**
 * The files the command's workers load at once, every table's together: one fewer than
 * the loaders' connections, so that a claim, a lease renewed or a file given back always
 * finds one. A worker waits for a place before it claims a file: a file's lease runs
 * only while its worker has a connection to load it with (more workers than connections
 * let leases run out in postgres.js's queue, and files be taken over for nothing).
 */
export function exportFileSlots(poolSize: number): number {
  return Math.max(1, poolSize - 1);
}

/**
 * The name this run's export loaders hold their files' leases by: the host, the process
 * and a random part. A lease is its owner's only while no other loader has the same name,
 * and a process id alone is not unique: two containers (or two machines) running the
 * command each often see the same small pid, and would then each take the other's file
 * for its own and load it twice at once.
 */
export function exportLoaderName(host: string, pid: number, random: string): string {
  return `export-loader-${host}-${pid}-${random.slice(0, 8)}`;
}

/**
 * The `--from-export` mode: every table's export asked for (or the one named), waited
 * for and started, then loaded here by `workers` workers per table while the progress
 * bars show; answers the exit code.
 */
async function backfillFromExports(
  env: (name: string) => string | undefined,
  databaseUrl: string,
  tables: TableSpec[],
  options: {
    bucket: string;
    prefix: string;
    exportArn?: string;
    workers: number;
    withoutStream?: boolean;
  },
): Promise<number> {
  if (!options.exportArn && !options.bucket) {
    console.error("backfill --from-export: name the export bucket (--bucket, or EXPORT_BUCKET)");
    return 2;
  }
  if (!(options.workers >= 1)) {
    console.error(`backfill --from-export: --workers must be 1 or more, not ${options.workers}`);
    return 2;
  }
  const pooled = isSharedPooler(parseDbUrl(databaseUrl));
  if (pooled) {
    console.log(
      `through a pooler the Edge Functions share: ${POOLER_CONNECTIONS} connections at most, ` +
        "so that they keep the rest of its pool (a direct connection loads faster)",
    );
  }
  const sql = connectDb(databaseUrl, pooled ? 1 : 2);
  const poolSize = exportPoolSize(options.workers, tables.length, pooled);
  const pool = connectDb(databaseUrl, poolSize);
  const fileSlots = new RunGate(exportFileSlots(poolSize));
  const deps: ExportBackfillDeps = {
    sql,
    dynamo: exportDynamoClients(env),
    s3: exportS3Client(env),
    log: (line) => console.log(line),
    withoutStream: options.withoutStream,
  };
  const now = new Date();
  try {
    // Before any export is asked for (and paid for): after the cutover no merge would take
    // its rows.
    const cut = await cutOverProblem(sql);
    if (cut) {
      console.error(`backfill --from-export: ${cut}`);
      return 2;
    }
    // Before any export is asked for: a column this version maps that the database lacks
    // would be dropped from every row loaded (schema_guard.ts).
    try {
      await registrySchemaGuard(sql)();
    } catch (error) {
      if (!(error instanceof SchemaMismatch)) throw error;
      console.error(`backfill --from-export: ${error.message}`);
      return 1;
    }
    // Each table's export on its own: one that fails (its export FAILED, its manifest
    // refused) leaves the others' jobs to load. A job made and left unloaded runs for
    // ever, holding every tombstone since its export time from the purge.
    const starts = await Promise.allSettled(
      tables.map((spec) =>
        startExportBackfill(deps, spec, options, exportClientToken(spec, options, now))
      ),
    );
    const started = starts.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
    const notStarted = starts.flatMap((s) =>
      s.status === "rejected" ? [(s.reason as Error).message] : []
    );
    for (const problem of notStarted) console.error(problem);
    if (started.length === 0) return 1;
    const cpu = processMeter(() => ({ user: 0, system: 0 }));
    const loaderName = exportLoaderName(Deno.hostname(), Deno.pid, crypto.randomUUID());
    // Every table's loader runs to its end whatever the others meet: one that stops early
    // must not end the pool (below) under the others, which would strand their jobs.
    const stoppedLoaders: string[] = [];
    const loading = Promise.all(
      started.map((job) =>
        loadExportJob(job.job, options.workers, loaderName, {
          sql: pool,
          open: exportFileOpener(deps.s3, job.bucket),
          readAt: job.readAt,
          cpu,
          fileSlots,
        }).catch((error) => {
          stoppedLoaders.push((error as Error).message);
        })
      ),
    );
    // The bars end when every job is over, or when every loader has stopped (a job still
    // running then is named: the bars would otherwise wait for a job nobody loads).
    const failures = await followBackfills(
      sql,
      started.map((job) => job.job),
      new Map(started.map((job) => [job.spec.targetTable, job.items])),
      loading,
    ).finally(() => loading);
    // Each loader's own error (what it met), then each job's end (what the job records).
    for (const stopped of stoppedLoaders) console.error(stopped);
    for (const failure of failures) console.error(failure);
    if (notStarted.length > 0) {
      console.error(
        `backfill --from-export: ${notStarted.length} of ${tables.length} tables did not start (above); the others were loaded`,
      );
    }
    return failures.length + notStarted.length + stoppedLoaders.length > 0 ? 1 : 0;
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  } finally {
    deps.s3.destroy();
    await pool.end();
    await sql.end();
  }
}

/**
 * The ClientToken of a table's export request: the same for the same table, bucket and
 * prefix within one UTC hour. DynamoDB answers a request with a token it saw in the last
 * 8 hours, and the same parameters, with that export: a run interrupted while it waited
 * for its export (minutes: the likeliest moment for a Ctrl-C) joins that export when run
 * again, rather than order and pay for a second. A later hour asks for a new one.
 */
export function exportClientToken(
  spec: TableSpec,
  target: { bucket: string; prefix: string },
  now: Date,
): string {
  const hour = now.toISOString().slice(0, 13);
  const digest = createHash("sha256")
    .update(JSON.stringify([spec.sourceTable, spec.region, target.bucket, target.prefix, hour]))
    .digest("hex");
  return `backfill-${digest.slice(0, 48)}`;
}

/**
 * Why a backfill may not start, when the sync is cut over (`write_back` `cutover`):
 * Supabase is then the source of truth, and every merge is refused (sync.enter_merge,
 * SY005), so the Scan's reads (or the export, paid for) would be for nothing.
 */
export async function cutOverProblem(sql: postgres.Sql): Promise<string | undefined> {
  const [row] = await sql<{ value: string }[]>`
    select value from sync.settings where key = ${"write_back"}`;
  if (row?.value !== "cutover") return undefined;
  return "the sync is cut over (sync.settings write_back is cutover): Supabase is the " +
    "source of truth, and nothing from DynamoDB is merged; to sync again, follow the " +
    'README\'s "Rolling back" (write_back off first)';
}

async function main(): Promise<number> {
  let args: BackfillArgs;
  try {
    args = backfillArgs(Deno.args);
  } catch (error) {
    console.error(`backfill: ${(error as Error).message}`);
    return 2;
  }
  // The local stack's settings, unless a database is named: then DynamoDB is AWS's too
  // (its keys from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN: for a
  // profile or a role, `eval "$(aws configure export-credentials --format env)"` first).
  const local = !Deno.env.get("DATABASE_URL") && existsSync(STACK_ENV_FILE)
    ? readStackEnv()
    : undefined;
  const env = (name: string) =>
    Deno.env.get(name) ?? (local as Record<string, string> | undefined)?.[name];
  const databaseUrl = env("DATABASE_URL");
  if (!databaseUrl) {
    console.error("backfill: set DATABASE_URL, or start the local stack (npm run stack:up)");
    return 2;
  }
  let target: string;
  try {
    target = describeDbTarget(parseDbUrl(databaseUrl));
  } catch (error) {
    console.error(`backfill: DATABASE_URL: ${(error as Error).message}`);
    return 2;
  }
  console.log(`backfill: database ${target}${local ? " (the local stack's)" : ""}`);
  if (args.fromExport) {
    // Against the local stack, DynamoDB and S3 are asked as the operator's exporter, whose
    // policy the stack holds to Terraform's (exports.tf), unless keys are given: what this
    // mode needs of them is then what that policy grants, as on AWS.
    const exporterKeys: Record<string, string> = local
      ? {
        AWS_ACCESS_KEY_ID: local.AWS_EXPORTER_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY: local.AWS_EXPORTER_SECRET_ACCESS_KEY,
        S3_ACCESS_KEY_ID: local.AWS_EXPORTER_ACCESS_KEY_ID,
        S3_SECRET_ACCESS_KEY: local.AWS_EXPORTER_SECRET_ACCESS_KEY,
      }
      : {};
    const exporter = local && !Deno.env.get("AWS_ACCESS_KEY_ID")
      ? (name: string) => exporterKeys[name] ?? env(name)
      : env;
    return await backfillFromExports(exporter, databaseUrl, args.tables, {
      bucket: args.bucket ?? env("EXPORT_BUCKET") ?? "",
      prefix: args.prefix,
      exportArn: args.exportArn,
      workers: args.workers,
      withoutStream: args.withoutStream,
    });
  }
  const sql = connectDb(databaseUrl, 2);
  try {
    const cut = await cutOverProblem(sql);
    if (cut) {
      console.error(`backfill: ${cut}`);
      return 2;
    }
    const { jobs, expected } = await startBackfills(
      sql,
      dynamoClients(env),
      args.tables,
      args.segments,
    );
    const failures = await followBackfills(sql, jobs, expected);
    for (const failure of failures) console.error(failure);
    return failures.length > 0 ? 1 : 0;
  } catch (error) {
    console.error(`backfill: ${(error as Error).message}`);
    return 1;
  } finally {
    await sql.end();
  }
}

if (import.meta.main) Deno.exit(await main());
