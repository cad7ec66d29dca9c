/**
 * `deno run -A demo/generate.ts [--seed N] [--scale N]`: fills the nine source tables in
 * DynamoDB Local with the demo data set (demo/demo_data.ts), deterministic from the seed,
 * the report's volumes times the scale. The tables are created if missing; existing
 * items with the same keys are overwritten.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { TABLES } from "../functions-shared/table_registry.ts";
import { ensureSourceTables, localDynamo } from "../local-stack/source_tables.ts";
import { readStackEnv } from "../local-stack/stack_env.ts";
import { demoItems } from "./demo_data.ts";
import { batchWrite } from "./load_dynamo.ts";

/** Loads the data set; prints a line per table; returns the items written per table. */
export async function generate(seed: number, scale: number): Promise<Record<string, number>> {
  const env = readStackEnv();
  await ensureSourceTables(env);
  const data = demoItems(seed, scale);
  const written: Record<string, number> = {};
  const started = performance.now();
  for (const spec of TABLES) {
    const t = performance.now();
    written[spec.sourceTable] = await batchWrite(
      localDynamo(env, spec.region),
      spec.sourceTable,
      data[spec.sourceTable],
    );
    const seconds = (performance.now() - t) / 1000;
    console.log(
      `generate: ${spec.sourceTable.padEnd(40)} ${
        String(written[spec.sourceTable]).padStart(7)
      } items` +
        `  ${seconds.toFixed(1)}s  ${
          (written[spec.sourceTable] / Math.max(seconds, 0.001)).toFixed(0)
        } items/s`,
    );
  }
  const total = Object.values(written).reduce((a, b) => a + b, 0);
  console.log(
    `generate: ${total} items in ${
      ((performance.now() - started) / 1000).toFixed(1)
    }s (seed ${seed}, scale ${scale})`,
  );
  return written;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seed: { type: "string", default: "20260206" },
      scale: { type: "string", default: "1" },
    },
  });
  await generate(Number(values.seed), Number(values.scale));
}
