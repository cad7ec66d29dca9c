/**
 * `npm run backfill -- --from-export`: every table's point-in-time export asked for (or
 * the one named), waited for and started (export_backfill.ts), then loaded here, next to
 * the database, by a few workers a table within the connections the command may take,
 * while the progress bars show (backfill_jobs.ts).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { processMeter } from "../functions-shared/cpu_meter.ts";
import { isSharedPooler, parseDbUrl } from "../functions-shared/db_url.ts";
import { loadExportJob } from "../functions-shared/export_load.ts";
import { RunGate } from "../functions-shared/run_gate.ts";
import { registrySchemaGuard, SchemaMismatch } from "../functions-shared/schema_guard.ts";
import { connectDb } from "../functions-shared/sync_db.ts";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { cutOverProblem, followBackfills } from "./backfill_jobs.ts";
import { BarScreen } from "./bar_screen.ts";
import {
  type ExportBackfillDeps,
  exportDynamoClients,
  startExportBackfill,
} from "./export_backfill.ts";
import { exportFileOpener, exportS3Client } from "./export_s3.ts";

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
  // Two at least: with one, a file's lease renewals and the stuck-chunk guard's look
  // (export_file_load.ts) would queue behind the chunk that holds it, and never run.
  return Math.max(2, Math.min(workers * tables, pooled ? POOLER_CONNECTIONS - 1 : 16));
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
export async function backfillFromExports(
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
    // The loaders' own lines (a chunk abandoned, a failure tried again, a file left, the
    // end's sweep) printed above the bars: each names its table or file, and they are
    // what says why the bars stand still.
    const screen = new BarScreen();
    const loading = Promise.all(
      started.map((job) =>
        loadExportJob(job.job, options.workers, loaderName, {
          sql: pool,
          open: exportFileOpener(deps.s3, job.bucket),
          readAt: job.readAt,
          cpu,
          fileSlots,
          log: (line) => screen.log(line),
        }).catch((error) => {
          const message = (error as Error).message;
          const table = job.spec.sourceTable;
          stoppedLoaders.push(message.includes(table) ? message : `${table}: ${message}`);
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
      screen,
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
