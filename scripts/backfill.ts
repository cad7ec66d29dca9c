/**
 * `npm run backfill -- <table ...|--all> [--segments N]`: queues backfills (by DynamoDB
 * or Postgres table name) with `sync.start_backfill`, then shows a progress bar per
 * table (items, rows, rate, ETA, segments) from `sync.backfill_progress` until every job
 * has finished. Exits non-zero if one failed, with its cause.
 *
 * `npm run backfill -- --from-export <table ...|--all> [--bucket B] [--prefix P]
 * [--export-arn ARN] [--workers N]`: backfills from point-in-time exports instead
 * (scripts/export_backfill.ts), loaded here, next to the database, by N workers (4) per
 * table (backfill_from_exports.ts). The bucket defaults to EXPORT_BUCKET (the local stack's S3 stand-in has one).
 *
 * Reads DATABASE_URL (default: the local stack's, with its DynamoDB Local) and, for the
 * ETA, the tables' item counts from DynamoDB (DYNAMODB_ENDPOINT and the usual AWS
 * settings; with DATABASE_URL given, the local stack's are not used).
 *
 * @module
 */

import { existsSync } from "node:fs";
import { dynamoClients } from "../functions-shared/dynamo_client.ts";
import { describeDbTarget, parseDbUrl } from "../functions-shared/db_url.ts";
import { connectDb } from "../functions-shared/sync_db.ts";
import { STACK_ENV_FILE } from "../local-stack/config.ts";
import { readStackEnv } from "../local-stack/stack_env.ts";
import { type BackfillArgs, backfillArgs } from "./backfill_args.ts";
import { backfillFromExports } from "./backfill_from_exports.ts";
import { cutOverProblem, followBackfills, startBackfills } from "./backfill_jobs.ts";
import { BarScreen } from "./bar_screen.ts";

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
    // Lines printed while the bars show go above them.
    const screen = new BarScreen();
    const { jobs, expected } = await startBackfills(
      sql,
      dynamoClients(env),
      args.tables,
      args.segments,
      (line) => screen.log(line),
    );
    const failures = await followBackfills(sql, jobs, expected, undefined, screen);
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
