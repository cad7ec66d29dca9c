/**
 * The live phase of `npm start` (docs/interfaces.md, "npm start"): changes of every kind
 * written to DynamoDB Local, so that they travel the real stream path (DynamoDB Streams ->
 * the Lambda handler -> the webhook). The streams' redelivery and drain are
 * live_streams.ts.
 *
 * @module
 */

import {
  type AttributeValue,
  DeleteItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { TABLES, type TableSpec } from "../functions-shared/table_registry.ts";
import { localDynamo } from "../local-stack/aws/source_tables.ts";
import type { StackEnv } from "../local-stack/stack_env.ts";

/** An item in DynamoDB JSON. */
export type Item = Record<string, AttributeValue>;

/** Runs `work` over `items`, `concurrency` at a time (each item its own key). */
async function eachLimited<T>(
  items: T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

/**
 * The live phase: changes of every kind through the real stream path; returns how many.
 * The items it changes are picked from `loaded`, the data set just written (per source
 * table), not read back with a Scan: a consistent Scan of the visitors costs as many
 * read units as their backfill (the proxy's 300 a second per table) and would only find
 * what was written. Writes to different keys go several at a time; each key is written
 * once, so their order does not matter.
 */
export async function liveBurst(
  env: StackEnv,
  seed: number,
  loaded: Record<string, Item[]>,
  tables: ReadonlySet<string> = LIVE_TABLES,
): Promise<number> {
  const table = (name: string) => TABLES.find((t) => t.targetTable === name)!;
  const clients = new Map<string, ReturnType<typeof localDynamo>>();
  const client = (region: string) => {
    if (!clients.has(region)) clients.set(region, localDynamo(env, region));
    return clients.get(region)!;
  };
  const put = (spec: TableSpec, item: Item) =>
    client(spec.region).send(
      new PutItemCommand({ TableName: spec.sourceTable, Item: item }),
    );
  const remove = (spec: TableSpec, key: Item) =>
    client(spec.region).send(
      new DeleteItemCommand({ TableName: spec.sourceTable, Key: key }),
    );
  const itemsOf = (spec: TableSpec) => loaded[spec.sourceTable] ?? [];
  let changes = 0;
  const writes: (() => Promise<unknown>)[] = [];
  // The changes of the tables asked for only: each table's part is the same whichever
  // tables are asked for, so a burst in parts writes what one burst writes.
  const add = (spec: TableSpec, write: () => Promise<unknown>) => {
    if (tables.has(spec.targetTable)) writes.push(write);
  };
  const actions = table("firespring_actions");
  for (let i = 0; i < 50; i++) {
    add(actions, () =>
      put(actions, {
        action_id: { S: `live-${seed}-${i}` },
        action_type: { S: "page_view" },
        timestamp: { N: String(1770379200 + i) },
        data: { M: { live: { BOOL: true } } },
      }));
  }
  for (const item of itemsOf(actions).slice(0, 20)) {
    add(actions, () => remove(actions, { action_id: item.action_id }));
  }
  const visitors = table("firespring_visitors");
  const byVisitor = new Map<string, Item[]>();
  for (const o of itemsOf(visitors)) {
    byVisitor.set(o.session_id.S!, [...(byVisitor.get(o.session_id.S!) ?? []), o]);
  }
  let v = 0;
  for (const [id, items] of byVisitor) {
    if (v++ >= 20) break;
    const sorted = [...items].sort((a, b) => Number(a.timestamp.N) - Number(b.timestamp.N));
    const latest = sorted.at(-1)!;
    if (v % 2 === 0 && sorted.length > 1) {
      // Delete the observation the row holds: the row falls back to the one before.
      add(visitors, () => remove(visitors, { session_id: { S: id }, timestamp: latest.timestamp }));
    } else {
      add(visitors, () =>
        put(visitors, {
          ...latest,
          timestamp: { N: String(Number(latest.timestamp.N) + 60) },
          pages_viewed: { N: String(Number(latest.pages_viewed?.N ?? 0) + 1) },
        }));
    }
  }
  const traffic = table("firespring_traffic_sources");
  for (const item of itemsOf(traffic).slice(0, 20)) {
    add(traffic, () =>
      client(traffic.region).send(
        new UpdateItemCommand({
          TableName: traffic.sourceTable,
          Key: { source_id: item.source_id },
          UpdateExpression: "SET visitors = visitors + :one",
          ExpressionAttributeValues: { ":one": { N: "1" } },
        }),
      ));
  }
  const leads = table("mmp_toledo_leads");
  const [lead] = itemsOf(leads);
  if (lead) {
    // Amplify's soft delete: the row goes away as if the item had been removed.
    add(leads, () => put(leads, { ...lead, _deleted: { BOOL: true }, _version: { N: "2" } }));
  }
  const dashboard = table("toledo_dashboard");
  add(dashboard, () =>
    put(dashboard, {
      pk: { S: "dashboard#toledo" },
      sk: { S: "metrics#2026-03" },
      metrics: { M: { visitors: { N: "12" } } },
      updated_at: { S: new Date().toISOString() },
    }));
  await eachLimited(writes, 8, async (write) => {
    await write();
    changes++;
  });
  return changes;
}

/** The target tables the live phase changes: their validation waits for it. */
export const LIVE_TABLES: ReadonlySet<string> = new Set([
  "firespring_actions",
  "firespring_visitors",
  "firespring_traffic_sources",
  "mmp_toledo_leads",
  "toledo_dashboard",
]);

/** The source tables of the given target tables (every table when none are given). */
export function specsOf(tables?: ReadonlySet<string>): TableSpec[] {
  return TABLES.filter((spec) => tables === undefined || tables.has(spec.targetTable));
}
