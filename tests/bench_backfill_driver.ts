/**
 * An in-process driver of the import-worker's code, for profiling one table's backfill
 * (`deno run -A --cpu-prof tests/bench_backfill_driver.ts <target table> [segments]`):
 * the worker's own `runWorker` against the stack (the pooler, the DynamoDB proxy with its
 * faults), without the gateway, so that a CPU profile shows where a page's CPU goes (the
 * AWS SDK, the mapping, the encoding, postgres.js). It prints the wall time, the pages and
 * the time spent in Postgres per page (pg_stat_statements is not needed: the driver times
 * its own page transactions). The data must be loaded first (`npm run bench -- backfill`
 * or `npm start` leave it in DynamoDB Local).
 *
 * @module
 */

import { runWorker } from "../functions-shared/backfill_worker.ts";
import { connectDb } from "../functions-shared/sync_db.ts";
import { processMeter } from "../functions-shared/cpu_meter.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { functionsDynamo, stack } from "./stack_clients.ts";

if (import.meta.main) {
  const target = Deno.args[0] ?? "firespring_actions";
  const segments = Number(Deno.args[1] ?? 8);
  const spec = byTargetTable(target);
  if (!spec) throw new Error(`${target} is not a target table`);
  const sql = connectDb(stack.POOLER_URL, 3);
  const dynamo = functionsDynamo(spec.region);
  try {
    const [{ id }] =
      await sql`select sync.start_backfill(${spec.sourceTable}, ${segments}, false) as id`;
    const t = performance.now();
    const runs = Array.from({ length: segments }, (_, i) =>
      runWorker({
        sql,
        dynamo: () => dynamo,
        wake: () => Promise.resolve(),
        // No budget: the driver measures, the gateway's limits are not its business.
        cpu: processMeter(() => ({ user: 0, system: 0 })),
        cpuBudgetMs: 1e9,
        wallBudgetMs: 1e9,
        maxConcurrent: segments,
        maxRcuPerSecond: Number(Deno.env.get("IMPORT_WORKER_MAX_RCU_PER_SECOND") ?? 250),
      }, `driver-${i}`));
    const results = await Promise.all(runs);
    const seconds = (performance.now() - t) / 1000;
    const pages = results.reduce((n, r) => n + r.pages, 0);
    const items = results.reduce((n, r) => n + r.items, 0);
    console.log(JSON.stringify({ target, job: id, seconds, pages, items }));
  } finally {
    await sql.end();
  }
}
