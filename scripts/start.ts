/**
 * `npm start [-- --scale N] [-- --seed N]`: the main job on the embedded stack
 * (docs/interfaces.md, "npm start"). Starts the stack; loads the demo data set into a fresh
 * DynamoDB Local (streams on after the load, as on AWS before a backfill); backfills
 * every table through the import-worker with a progress bar per table; pushes a burst
 * of live changes through DynamoDB Streams -> the Lambda handler -> the webhook
 * (inserts, updates, deletes, an Amplify soft delete, and late and duplicated
 * deliveries); validates every table; prints the migration report. Exits 0 only if
 * every table matches, no source item is unmappable and no dead letter is open (each
 * named in the report with its table and count).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadReportDataSet } from "../demo/load_report_data_set.ts";
import { dynamoClients } from "../functions-shared/dynamo_client.ts";
import { connectDb } from "../functions-shared/sync_db.ts";
import { TABLES } from "../functions-shared/table_registry.ts";
import { up } from "../local-stack/stack.ts";
import { readStackEnv } from "../local-stack/stack_env.ts";
import {
  HANDS_ON_FUNCTIONS,
  isolateLogOffset,
  killsSince,
} from "../local-stack/supabase/isolate_log.ts";
import { followBackfills, startBackfills } from "./backfill.ts";
import { drained, liveBurst, redeliver } from "./live_changes.ts";
import { openProblems, printReport, validateEveryTable } from "./migration_report.ts";

const say = (line = "") => console.log(line);

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scale: { type: "string", default: "1" },
      seed: { type: "string", default: "20260206" },
    },
  });
  const scale = Number(values.scale);
  const seed = Number(values.seed);
  const started = performance.now();
  await up();
  const isolateLog = isolateLogOffset();
  const env = readStackEnv();
  const sql = connectDb(env.DATABASE_URL, 4);
  try {
    say(`npm start: loading the demo data set (seed ${seed}, scale ${scale}) into DynamoDB Local`);
    await loadReportDataSet(env, sql, seed, scale);

    say("\nnpm start: backfilling every table through the import-worker");
    const backfillStarted = performance.now();
    const envOf = (name: string) => (env as unknown as Record<string, string>)[name];
    const { jobs, expected } = await startBackfills(sql, dynamoClients(envOf), [...TABLES], 8);
    const failures = await followBackfills(sql, jobs, expected);
    if (failures.length > 0) throw new Error(failures.join("\n"));
    const backfillSeconds = (performance.now() - backfillStarted) / 1000;

    say("\nnpm start: live changes through DynamoDB Streams -> Lambda -> webhook");
    const liveStarted = performance.now();
    const changes = await liveBurst(env, seed);
    await drained(sql);
    const again = await redeliver(env);
    say(`npm start: ${again} stream records delivered again, late and out of order`);
    await drained(sql);
    const liveSeconds = (performance.now() - liveStarted) / 1000;
    say(`npm start: ${changes} live changes applied in ${liveSeconds.toFixed(1)}s`);

    say("\nnpm start: validating every table");
    const report = await validateEveryTable(env, sql);
    printReport(report.rows, {
      backfillSeconds,
      liveSeconds,
      wholeSeconds: (performance.now() - started) / 1000,
    }, env.DATABASE_URL);
    // A killed isolate loses nothing (its lease is resumed) but on a hosted project it is
    // a 546 and a stalled minute: the functions must hand on before the hard limit.
    const problems = [
      ...await openProblems(sql, report.unmappable),
      ...killsSince(isolateLog, HANDS_ON_FUNCTIONS),
    ];
    if (problems.length > 0) {
      say("\nnpm start: the migration is not done; these need a fix:");
      for (const problem of problems) say(`  ${problem}`);
    }
    Deno.exit(report.allMatch && problems.length === 0 ? 0 : 1);
  } catch (error) {
    console.error(`npm start: ${(error as Error).message}`);
    Deno.exit(1);
  } finally {
    await sql.end();
  }
}
