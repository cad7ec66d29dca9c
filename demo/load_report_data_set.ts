/**
 * Loads the demo data set into DynamoDB Local, the way a real migration finds its
 * tables: full of items, streams turned on only afterwards. DynamoDB Local is started
 * afresh with the source tables empty (without a stream); the stream poller is stopped
 * meanwhile and starts again on the new streams; the target tables and what the merge
 * remembers are emptied, so a backfill starts from nothing.
 *
 * Hence the order: a table's stream goes on after its load. Turning the visitors' stream
 * on halfway through their load, and starting their backfill then, was tried: their
 * backfill ended with the load, but the stream held 6,900 records that DynamoDB Local
 * serves slowly (reading them back for the drain and the redelivery took 30 s each on
 * the 2-core machine) and the webhook's deliveries slowed the actions' load by a third;
 * the whole run took longer (README, "`npm start`").
 *
 * `npm start` gets the fresh DynamoDB Local from `up({ freshSources: true })` (its JVM
 * starting beside Postgres, local-stack/stack.ts) and uses the pieces (emptyTargets,
 * loadTable) to start a table's backfill as soon as that table is loaded;
 * loadReportDataSet does all of it in one call.
 *
 * @module
 */

import type postgres from "postgres";
import { TABLES, type TableSpec } from "../functions-shared/table_registry.ts";
import { stopDetached } from "../local-stack/processes.ts";
import { up } from "../local-stack/stack.ts";
import { fillNewTable } from "../local-stack/aws/source_tables.ts";
import type { StackEnv } from "../local-stack/stack_env.ts";
import { demoItems } from "./demo_data.ts";
import { batchWrite, type Item } from "./load_dynamo.ts";

/**
 * Empties the target tables and what the merge remembers (tombstones, observations),
 * after cancelling backfills still under way (they would write into the empty tables)
 * and failing validation runs still under way (an interrupted run's: its Scan is one of
 * those jobs, so it would never end, and a table has one run at a time).
 * A worker with a page of a cancelled job in flight finds its checkpoint refused
 * (sync.checkpoint_segment, SQLSTATE SY002), so its page is not written; the cancel
 * commits before the truncate, and a page committing meanwhile holds the cancel back
 * until it is done (the checkpoint's share lock on its job), so it is truncated too.
 */
export async function emptyTargets(sql: postgres.Sql): Promise<void> {
  await sql`select sync.end_validation(id, 'failed', 'npm start emptied the tables it compared', false)
            from public.sync_checksums where status in ('queued', 'running')`;
  await sql`update sync.backfill_jobs set status = 'cancelled', finished_at = now()
            where status in ('pending', 'running')`;
  await sql.unsafe(
    `truncate ${TABLES.map((t) => `public.${t.targetTable}`).join(", ")}, sync.tombstones,
     sync.observations, analytics.visitor_sessions, sync.table_state, sync.dead_letters,
     sync.write_backs`,
  );
}

/**
 * Forgets what the lost-record check saw of the streams of the DynamoDB Local that a
 * fresh one replaces (`up({ freshSources: true })`): they go with their tables, as the
 * poller's checkpoints do. Otherwise the next hourly check (stream-check, minute 41)
 * finds every new stream "replaced since the last check", marks each table stale and
 * backfills it again beside the run's own backfills (an `npm start` across minute 41 took
 * 98.5 s instead of 60, every table matching). Called once the fresh tables are made,
 * and again once all their streams are on: a check while the tables loaded found "no
 * stream" on those still loading (and queued their backfills then: a check in that
 * window of about 30 s still costs a run that much), which the next hour's check would
 * take for changes no stream captured. On AWS tables are never swapped for fresh ones:
 * there a replaced stream is a problem, and the check still reports it.
 */
export async function forgetOldStreams(sql: postgres.Sql): Promise<void> {
  await sql`delete from sync.stream_checks`;
}

/**
 * Stops the stream poller, empties the targets, and starts a fresh DynamoDB Local with
 * every source table empty and without a stream: `up({ freshSources: true })`, as `npm
 * start` does, which also forgets the poller's checkpoints (the streams they belong to go
 * with the tables, and must not read as lost records) and starts the DynamoDB proxy again
 * beside the new DynamoDB Local (what it remembers of the old one goes with it). The
 * poller stays stopped: `up()` starts it again (loadReportDataSet does, once loaded).
 */
export async function resetSources(sql: postgres.Sql): Promise<void> {
  // First, so that nothing it still has in hand lands after the targets are emptied.
  await stopDetached("stream_poller");
  await emptyTargets(sql);
  // A fresh (in-memory) DynamoDB Local rather than each table dropped and created again:
  // after the whole test suite, a recreated table's stream brought back 15 leads that
  // earlier tests had written, and the report did not match.
  await up({ freshSources: true });
  await forgetOldStreams(sql);
}

/** What loading one table did. */
export interface TableLoad {
  table: string;
  items: number;
  seconds: number;
}

/**
 * Writes one table's items (parallel BatchWriteItem, load_dynamo.ts) into the new table,
 * past the proxy as DynamoDB's import from S3 fills a new table (fillNewTable), and then
 * turns its stream on; `onProgress` hears the items written so far. The data set stands
 * for what the company's tables held before the migration: the sync's own reads and
 * every later write go through the proxy and its faults.
 */
export async function loadTable(
  env: StackEnv,
  spec: TableSpec,
  items: Item[],
  onProgress: (written: number) => void = () => {},
): Promise<TableLoad> {
  const t = performance.now();
  const written = await fillNewTable(
    env,
    spec,
    (client) => batchWrite(client, spec.sourceTable, items, 16, onProgress),
  );
  return { table: spec.sourceTable, items: written, seconds: (performance.now() - t) / 1000 };
}

/** The load's line for a table: items, seconds, rate. */
export function loadLine(load: TableLoad): string {
  return `load: ${load.table.padEnd(40)} ${String(load.items).padStart(7)} items` +
    `  ${load.seconds.toFixed(1)}s  ${
      (load.items / Math.max(load.seconds, 0.001)).toFixed(0)
    } items/s`;
}

/**
 * Empties DynamoDB Local's tables, loads the data set, turns the streams on, empties the
 * targets and brings the stack back up (the poller on the new streams). Prints a line
 * per table; returns the item count per source table.
 */
export async function loadReportDataSet(
  env: StackEnv,
  sql: postgres.Sql,
  seed: number,
  scale: number,
  log: (line: string) => void = console.log,
): Promise<Record<string, number>> {
  await resetSources(sql);
  const data = demoItems(seed, scale);
  const written: Record<string, number> = {};
  for (const spec of TABLES) {
    const load = await loadTable(env, spec, data[spec.sourceTable]);
    written[spec.sourceTable] = load.items;
    log(loadLine(load));
  }
  // Again once every stream is on: a check while some were off found "no stream" there.
  await forgetOldStreams(sql);
  await up(); // the poller starts again, on the new streams
  return written;
}
