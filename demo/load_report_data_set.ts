/**
 * Loads the demo data set into a fresh DynamoDB Local, the way a real migration finds its
 * tables: full of items, streams turned on only afterwards. The stream poller is stopped
 * meanwhile and starts again on the new, empty streams; the target tables and what the
 * merge remembers are emptied, so a backfill starts from nothing.
 *
 * Bulk loading into tables whose streams are on is a hundred times slower in DynamoDB
 * Local (the streams keep every record), hence the order.
 *
 * @module
 */

import { rmSync } from "node:fs";
import type postgres from "postgres";
import { TABLES } from "../functions-shared/table_registry.ts";
import { startDynamo, stopDynamo } from "../local-stack/dynamodb.ts";
import { stopDetached } from "../local-stack/processes.ts";
import { up } from "../local-stack/stack.ts";
import { enableStream, ensureSourceTable, localDynamo } from "../local-stack/source_tables.ts";
import { POLLER_STATE_FILE } from "../local-stack/stream_positions.ts";
import type { StackEnv } from "../local-stack/stack_env.ts";
import { demoItems } from "./demo_data.ts";
import { batchWrite } from "./load_dynamo.ts";

/**
 * Empties the target tables and what the merge remembers (tombstones, observations),
 * after cancelling backfills still under way (they would write into the empty tables).
 */
export async function emptyTargets(sql: postgres.Sql): Promise<void> {
  await sql`update sync.backfill_jobs set status = 'cancelled', finished_at = now()
            where status in ('pending', 'running')`;
  await sql.unsafe(
    `truncate ${TABLES.map((t) => `public.${t.targetTable}`).join(", ")}, sync.tombstones,
     sync.observations, analytics.visitor_sessions, sync.table_state, sync.dead_letters`,
  );
}

/**
 * Restarts DynamoDB Local empty, loads the data set, turns the streams on, empties the
 * targets and brings the stack back up. Prints a line per table; returns the item count.
 */
export async function loadReportDataSet(
  env: StackEnv,
  sql: postgres.Sql,
  seed: number,
  scale: number,
  log: (line: string) => void = console.log,
): Promise<Record<string, number>> {
  await stopDetached("stream_poller");
  await stopDynamo();
  await startDynamo();
  // New DynamoDB Local, new streams: the poller's checkpoints are of streams that are gone,
  // and must not read as lost records.
  rmSync(POLLER_STATE_FILE, { force: true });
  const data = demoItems(seed, scale);
  const written: Record<string, number> = {};
  for (const spec of TABLES) {
    const client = localDynamo(env, spec.region);
    await ensureSourceTable(client, spec, false);
    const t = performance.now();
    written[spec.sourceTable] = await batchWrite(
      client,
      spec.sourceTable,
      data[spec.sourceTable],
      16,
    );
    const seconds = (performance.now() - t) / 1000;
    log(
      `load: ${spec.sourceTable.padEnd(40)} ${
        String(written[spec.sourceTable]).padStart(7)
      } items` +
        `  ${seconds.toFixed(1)}s  ${
          (written[spec.sourceTable] / Math.max(seconds, 0.001)).toFixed(0)
        } items/s`,
    );
    await enableStream(client, spec);
  }
  await emptyTargets(sql);
  await up(); // the poller starts again, on the new streams
  return written;
}
