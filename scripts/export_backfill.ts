/**
 * `npm run backfill -- --from-export <table ...|--all>`: backfills tables from DynamoDB
 * point-in-time exports (docs/sync-semantics.md, "Backfills from an export"), next to the
 * database: asks DynamoDB for an export of each table, or takes up the one an earlier run
 * asked for (scripts/export_to_wait_for.ts), or takes the one `--export-arn` names; waits
 * for it, reads its manifests from S3, starts the job
 * (`sync.start_export_backfill`) and loads its data files with several workers
 * (functions-shared/export_load.ts), while scripts/backfill.ts shows the progress bars.
 *
 * @module
 */

import { DynamoDBClient, type ExportDescription } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import type postgres from "postgres";
import { awsClientConfig, type EnvReader, perRegion } from "../functions-shared/dynamo_client.ts";
import { credentialsRefused, transientLoadFailure } from "../functions-shared/export_failures.ts";
import { safeMessage } from "../functions-shared/dynamo_errors.ts";
import { EXPORT_WINDOW_MS, parseExportFiles } from "../functions-shared/export_manifest.ts";
import { ExportStillRunning, waitForExport } from "./export_request.ts";
import { manifestText } from "./export_s3.ts";
import { checkedSummary } from "./export_manifest_check.ts";
import { streamCoversExport, streamDeliveredBy } from "./export_stream_cover.ts";
import { exportToWaitFor } from "./export_to_wait_for.ts";
import { arnRegionProblem, type TableSpec } from "../functions-shared/table_registry.ts";

/** Where exports go, or which one to load. */
export interface ExportSource {
  bucket: string;
  prefix: string;
  /** An export already made (then nothing is asked for). */
  exportArn?: string;
}

/**
 * The AWS SDK's DynamoDB clients, by region, for asking for exports and reading their
 * descriptions: this command runs next to the database, not in an Edge Function, so it
 * may load the SDK (the functions read DynamoDB with their own small client,
 * functions-shared/dynamo_http.ts).
 */
export function exportDynamoClients(env: EnvReader): (region: string) => DynamoDBClient {
  return perRegion((region) => new DynamoDBClient(awsClientConfig(env, region)));
}

/** What an export backfill needs. */
export interface ExportBackfillDeps {
  sql: postgres.Sql;
  dynamo: (region: string) => DynamoDBClient;
  s3: S3Client;
  log: (line: string) => void;
  /**
   * Loads a table that has no stream all the same (`--without-stream`): its rows are the
   * export's, and nothing after it reaches them. Refused otherwise.
   */
  withoutStream?: boolean;
  /** This machine's clock and a pause (tests give their own). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** A started export backfill. */
export interface ExportJob {
  job: string;
  spec: TableSpec;
  bucket: string;
  /** When the export's items are taken as read (export_manifest.ts): every row's stamp. */
  readAt: Date;
  items: number;
}

/**
 * Asks for (or takes) `spec`'s export, waits for it, checks its manifests and starts
 * its job. `token` names the request, so that a retried request joins its export.
 */
export function startExportBackfill(
  deps: ExportBackfillDeps,
  spec: TableSpec,
  source: ExportSource,
  token: string,
): Promise<ExportJob> {
  // What fails names the table (the SDK's own errors, e.g. S3's Access Denied, name none),
  // and never what DynamoDB echoes of a refused signature: its canonical request holds the
  // session token (this path signs with the AWS SDK, not the project's client).
  return startOne(deps, spec, source, token).catch((error) => {
    const raw = (error as Error).message;
    const message = safeMessage(raw, []);
    if (message === raw && message.includes(spec.sourceTable)) throw error;
    throw new Error(
      message.includes(spec.sourceTable)
        ? message
        : `export backfill of ${spec.sourceTable}: ${message}`,
      { cause: error },
    );
  });
}

async function startOne(
  deps: ExportBackfillDeps,
  spec: TableSpec,
  source: ExportSource,
  token: string,
): Promise<ExportJob> {
  const dynamo = deps.dynamo(spec.region);
  // A job of this table that a dead loader left unfinished is taken up where it stopped,
  // before anything is asked of DynamoDB: a new export would start a second job, and the
  // first, running for ever, would hold every tombstone since its export time (the purge
  // keeps them while a backfill runs).
  const [unfinished] = await deps.sql`
    select id, export_arn, started_at from sync.backfill_jobs
    where source_table = ${spec.sourceTable} and export_arn is not null
      and status in ('pending', 'running')
    order by id desc limit 1`;
  if (unfinished && source.exportArn && unfinished.export_arn !== source.exportArn) {
    throw new Error(
      `export backfill of ${spec.sourceTable}: job ${unfinished.id}, of export ` +
        `${unfinished.export_arn}, is unfinished; finish it first (the same command ` +
        `without --export-arn takes it up) or cancel it: update sync.backfill_jobs set ` +
        `status = 'cancelled', finished_at = now() where id = ${unfinished.id}`,
    );
  }
  const arn = unfinished?.export_arn ?? source.exportArn ??
    await exportToWaitFor(deps, spec, source, token);
  deps.log(`${spec.targetTable}: export ${arn}`);
  const description = await waitForExport(dynamo, spec.sourceTable, arn, {
    progress: (d) => deps.log(`${spec.targetTable}: export ${d.ExportStatus ?? "?"}, waiting`),
  }).catch((error) => {
    if (!(error instanceof ExportStillRunning)) throw error;
    throw new Error(
      `${error.message}; the same command run again goes on waiting for it (it is remembered)`,
    );
  });
  try {
    return await jobOf(deps, spec, arn, description, unfinished);
  } catch (error) {
    // Refused for good (an export older than the table's stream, of another table, too
    // old to load): forgotten, so that the next run asks for a new one. One that may pass
    // (S3, the network, the database, credentials) is taken up again by the next run;
    // once a job has it, it is taken up as that job's (sync.export_request_to_resume).
    if (
      !transientLoadFailure(error) && !credentialsRefused(error) &&
      !(error instanceof MadeElsewhere)
    ) {
      await deps.sql`delete from sync.export_requests where export_arn = ${arn}`.catch(() => {});
      // An unfinished job of this export would be taken up again by every run, and
      // refused the same way: it must be cancelled before a new export can be asked for.
      if (unfinished) {
        throw new Error(
          `${(error as Error).message}; job ${unfinished.id}, of this export, is unfinished ` +
            "and every run would take it up again: cancel it, then run the command again " +
            "for a new export: update sync.backfill_jobs set status = 'cancelled', " +
            `finished_at = now() where id = ${unfinished.id}`,
          { cause: error },
        );
      }
    }
    throw error;
  }
}

/** Checks export `arn`'s manifests and starts its job (or takes `unfinished` up). */
async function jobOf(
  deps: ExportBackfillDeps,
  spec: TableSpec,
  arn: string,
  description: ExportDescription,
  unfinished: postgres.Row | undefined,
): Promise<ExportJob> {
  const dynamo = deps.dynamo(spec.region);
  const { bucket, summary } = await checkedSummary(deps, spec, arn, description);
  // A job taken up keeps the read time it started with (its started_at), which its rows
  // already loaded carry; a new one's is the manifest's.
  const readAt = unfinished ? new Date(unfinished.started_at) : summary.readAt;
  await streamCoversExport(
    dynamo,
    spec,
    arn,
    readAt,
    deps.log,
    // A job taken up passed this when it started: the notes that vouched for it may have
    // been purged since (48 h).
    unfinished ? () => Promise.resolve(true) : (arn, at) => streamDeliveredBy(deps.sql, arn, at),
    deps.withoutStream,
  );
  const elsewhere = arnRegionProblem(spec, summary.tableArn);
  if (elsewhere) {
    throw new Error(`export backfill of ${spec.sourceTable}: export ${arn}: ${elsewhere}`);
  }
  const files = parseExportFiles(
    await manifestText(deps.s3, bucket, summary.manifestFilesKey, deps.log),
    summary,
    `s3://${bucket}/${summary.manifestFilesKey}`,
  );
  if (unfinished) {
    deps.log(
      `${spec.targetTable}: job ${unfinished.id} of this export is unfinished: taking it up ` +
        `(files held by a loader that died come free when their lease runs out)`,
    );
    return {
      job: String(unfinished.id),
      spec,
      bucket,
      readAt,
      items: summary.itemCount,
    };
  }
  const id = await startJob(deps, spec, arn, readAt, bucket, files);
  deps.log(
    `${spec.targetTable}: job ${id}, ${files.length} files, ${summary.itemCount} items as of ${summary.exportTime.toISOString()}, stamped ${summary.readAt.toISOString()} (an export's items may be up to ${
      EXPORT_WINDOW_MS / 1000
    } s older than its time)`,
  );
  return {
    job: String(id),
    spec,
    bucket,
    readAt: summary.readAt,
    items: summary.itemCount,
  };
}

/** Another command made a job of the table while this one waited (a unique index). */
class MadeElsewhere extends Error {
  constructor(table: string, cause: unknown) {
    super(
      `export backfill of ${table}: another command made a job of this table while this ` +
        "one waited; run the command again to take that job up",
      { cause },
    );
    this.name = "MadeElsewhere";
  }
}

/**
 * Makes export `arn`'s job (`sync.start_export_backfill`), its rows stamped `readAt`;
 * answers its id. Another command that made a job of the table since this one looked for
 * one is named.
 */
async function startJob(
  deps: ExportBackfillDeps,
  spec: TableSpec,
  arn: string,
  readAt: Date,
  bucket: string,
  files: ReturnType<typeof parseExportFiles>,
): Promise<string> {
  const listed = files.map((f) => ({
    key: f.key,
    itemCount: f.itemCount,
    md5: f.md5Checksum,
    etag: f.etag,
  }));
  try {
    const [{ id }] = await deps.sql`
      select sync.start_export_backfill(${spec.sourceTable}, ${arn}, ${readAt}, ${bucket},
        ${JSON.stringify(listed)}::text::jsonb) as id`;
    return String(id);
  } catch (error) {
    const { code, constraint_name } = error as { code?: string; constraint_name?: string };
    if (code !== "23505" || constraint_name !== "backfill_jobs_one_unfinished_export_idx") {
      throw error;
    }
    throw new MadeElsewhere(spec.sourceTable, error);
  }
}
