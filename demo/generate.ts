/**
 * `npm run generate -- [--seed N] [--scale N]`: loads the demo data set (the report's
 * volumes times the scale, deterministic from the seed) into a fresh DynamoDB Local,
 * streams turned on after the load, and empties the target tables, ready for a
 * backfill (demo/load_report_data_set.ts). Prints a line per table.
 *
 * @module
 */

import { dataSetArgs } from "./demo_data.ts";
import { parseArgs } from "node:util";
import { connectDb } from "../functions-shared/sync_db.ts";
import { readStackEnv } from "../local-stack/stack_env.ts";
import { loadReportDataSet } from "./load_report_data_set.ts";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seed: { type: "string", default: "20260206" },
      scale: { type: "string", default: "1" },
    },
  });
  // Checked before anything is reset: a bad value must cost nothing.
  let args: { scale: number; seed: number };
  try {
    args = dataSetArgs(values.scale, values.seed);
  } catch (error) {
    console.error(`generate: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const env = readStackEnv();
  const sql = connectDb(env.DATABASE_URL, 2);
  try {
    const started = performance.now();
    const written = await loadReportDataSet(env, sql, args.seed, args.scale);
    const total = Object.values(written).reduce((a, b) => a + b, 0);
    console.log(
      `generate: ${total} items in ${((performance.now() - started) / 1000).toFixed(1)}s ` +
        `(seed ${values.seed}, scale ${values.scale})`,
    );
  } finally {
    await sql.end();
  }
}
