/**
 * The live path's latency (`npm run bench -- live`): a PutItem to DynamoDB until its row
 * is in Postgres, through the whole path (the DynamoDB proxy, the stream, the poller as
 * Lambda's event source mapping, the Lambda's handler, the gateway, the webhook, the
 * merge), one item at a time on an otherwise idle stack. Goal (issue "Close to the
 * limit"): p90 at most 300 ms, as it was when the issue was filed. There is no raw limit
 * to divide by: the stream's own polling (a shard read every 250 ms, as Lambda reads it)
 * is most of it.
 *
 * @module
 */

import { DeleteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { percentile } from "./bench_edge_cpu.ts";
import { type Figure, formatted, type Goals } from "./bench_goals.ts";
import { dynamo, eventually } from "./stack_clients.ts";

const SEARCHES = byTargetTable("firespring_searches")!;
/** The goal for the p90, in ms. */
const P90_GOAL_MS = 300;

/** How long one PutItem takes to reach its row (polled every 5 ms), in ms. */
async function oneItem(sql: postgres.Sql, id: string): Promise<number> {
  const started = performance.now();
  await dynamo(SEARCHES.region).send(
    new PutItemCommand({
      TableName: SEARCHES.sourceTable,
      Item: {
        search_id: { S: id },
        query: { S: "live" },
        count: { N: "1" },
        searched_at: { N: "1770379200" },
      },
    }),
  );
  for (;;) {
    const [row] = await sql`select 1 from public.firespring_searches where search_id = ${id}`;
    if (row) return performance.now() - started;
    if (performance.now() - started > 30_000) {
      throw new Error(`${SEARCHES.targetTable} [search_id=${id}]: no row 30 s after its PutItem`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Deletes the items in DynamoDB and waits for their rows to go the same way, so that the
 * table and its source still agree (a later validation of it would see them otherwise).
 */
async function removeItems(sql: postgres.Sql, ids: string[], run: string): Promise<void> {
  for (const id of ids) {
    await dynamo(SEARCHES.region).send(
      new DeleteItemCommand({ TableName: SEARCHES.sourceTable, Key: { search_id: { S: id } } }),
    );
  }
  await eventually(`the rows of ${run}* to be deleted by the stream`, async () => {
    const [r] = await sql`select count(*)::int as n from public.firespring_searches
                          where search_id like ${run + "%"}`;
    return r.n === 0 ? true : undefined;
  }, 60_000);
}

/** Writes `BENCH_LIVE_ITEMS` (50) items one at a time and prints the latencies. */
export async function benchLive(sql: postgres.Sql, figure: Figure, goals: Goals): Promise<void> {
  const run = `bench-live-${crypto.randomUUID().slice(0, 8)}-`;
  const n = Number(Deno.env.get("BENCH_LIVE_ITEMS") ?? 50);
  const latencies: number[] = [];
  const written: string[] = [];
  try {
    written.push(`${run}warm`);
    await oneItem(sql, `${run}warm`);
    for (let i = 0; i < n; i++) {
      written.push(`${run}${i}`);
      latencies.push(await oneItem(sql, `${run}${i}`));
      // Unaligned with the poller's 250 ms, as real writes are.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 250));
    }
  } finally {
    await removeItems(sql, written, run);
  }
  const [p50, p90] = [percentile(latencies, 50), percentile(latencies, 90)];
  figure("live_put_to_row_p50_ms", p50, 0);
  figure("live_put_to_row_p90_ms", p90, 0);
  goals.add({
    path: `live path, PutItem → row visible (${n} items, one at a time)`,
    now: `p50 ${formatted(p50)} ms, p90 ${formatted(p90)} ms`,
    raw: "— (the stream's polling is most of it)",
    ratio: p90,
    unit: "ms",
    kind: "max",
    target: P90_GOAL_MS,
  });
}
