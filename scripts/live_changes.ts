/**
 * The live phase of `npm start` (docs/interfaces.md, "npm start"): changes of every kind
 * written to DynamoDB Local, so that they travel the real stream path (DynamoDB Streams ->
 * the Lambda handler -> the webhook); then every record of the streams delivered again,
 * late and newest first; and the wait until the stream has drained.
 *
 * @module
 */

import {
  type AttributeValue,
  DeleteItemCommand,
  DescribeTableCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { TABLES, type TableSpec } from "../functions-shared/table_registry.ts";
import { signWebhook } from "../functions-shared/webhook_signing.ts";
import { localDynamo } from "../local-stack/source_tables.ts";
import { listShards, localStreams, readShard } from "../local-stack/stream_reader.ts";
import type { StackEnv } from "../local-stack/stack_env.ts";

/** An item in DynamoDB JSON. */
export type Item = Record<string, AttributeValue>;

/**
 * Every item of a table (for the live burst and the report's distinct keys), read
 * consistently: an eventually consistent Scan may miss the latest writes.
 */
export async function scanAll(env: StackEnv, spec: TableSpec): Promise<Item[]> {
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const page = await localDynamo(env, spec.region).send(
      new ScanCommand({
        TableName: spec.sourceTable,
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The live phase: changes of every kind through the real stream path; returns how many. */
export async function liveBurst(env: StackEnv, seed: number): Promise<number> {
  const table = (name: string) => TABLES.find((t) => t.targetTable === name)!;
  const put = (spec: TableSpec, item: Item) =>
    localDynamo(env, spec.region).send(
      new PutItemCommand({ TableName: spec.sourceTable, Item: item }),
    );
  const remove = (spec: TableSpec, key: Item) =>
    localDynamo(env, spec.region).send(
      new DeleteItemCommand({ TableName: spec.sourceTable, Key: key }),
    );
  let changes = 0;
  const actions = table("firespring_actions");
  for (let i = 0; i < 50; i++) {
    await put(actions, {
      action_id: { S: `live-${seed}-${i}` },
      action_type: { S: "page_view" },
      timestamp: { N: String(1770379200 + i) },
      data: { M: { live: { BOOL: true } } },
    });
    changes++;
  }
  const existing = (await scanAll(env, actions)).filter((a) => !a.action_id.S!.startsWith("live-"));
  for (const item of existing.slice(0, 20)) {
    await remove(actions, { action_id: item.action_id });
    changes++;
  }
  const visitors = table("firespring_visitors");
  const observations = await scanAll(env, visitors);
  const byVisitor = new Map<string, Item[]>();
  for (const o of observations) {
    byVisitor.set(o.session_id.S!, [...(byVisitor.get(o.session_id.S!) ?? []), o]);
  }
  let v = 0;
  for (const [id, items] of byVisitor) {
    if (v++ >= 20) break;
    const sorted = items.sort((a, b) => Number(a.timestamp.N) - Number(b.timestamp.N));
    const latest = sorted.at(-1)!;
    if (v % 2 === 0 && sorted.length > 1) {
      // Delete the observation the row holds: the row falls back to the one before.
      await remove(visitors, { session_id: { S: id }, timestamp: latest.timestamp });
    } else {
      await put(visitors, {
        ...latest,
        timestamp: { N: String(Number(latest.timestamp.N) + 60) },
        pages_viewed: { N: String(Number(latest.pages_viewed?.N ?? 0) + 1) },
      });
    }
    changes++;
  }
  const traffic = table("firespring_traffic_sources");
  for (const item of (await scanAll(env, traffic)).slice(0, 20)) {
    await localDynamo(env, traffic.region).send(
      new UpdateItemCommand({
        TableName: traffic.sourceTable,
        Key: { source_id: item.source_id },
        UpdateExpression: "SET visitors = visitors + :one",
        ExpressionAttributeValues: { ":one": { N: "1" } },
      }),
    );
    changes++;
  }
  const leads = table("mmp_toledo_leads");
  const [lead] = await scanAll(env, leads);
  if (lead) {
    // Amplify's soft delete: the row goes away as if the item had been removed.
    await put(leads, { ...lead, _deleted: { BOOL: true }, _version: { N: "2" } });
    changes++;
  }
  const dashboard = table("toledo_dashboard");
  await put(dashboard, {
    pk: { S: "dashboard#toledo" },
    sk: { S: "metrics#2026-03" },
    metrics: { M: { visitors: { N: "12" } } },
    updated_at: { S: new Date().toISOString() },
  });
  changes++;
  return changes;
}

/**
 * Late and duplicated deliveries: every record the streams of the live phase hold, sent
 * to the webhook again, newest first, as a retrying Lambda or a replay would.
 */
export async function redeliver(env: StackEnv): Promise<number> {
  let sent = 0;
  for (const spec of TABLES) {
    const { Table } = await localDynamo(env, spec.region).send(
      new DescribeTableCommand({ TableName: spec.sourceTable }),
    );
    const arn = Table?.LatestStreamArn;
    if (!arn) continue;
    const client = localStreams(env, spec.region);
    const records = [];
    for (const shard of await listShards(client, arn)) {
      records.push(...await readShard(client, arn, shard.ShardId!));
    }
    records.reverse();
    for (let i = 0; i < records.length; i += 25) {
      const body = JSON.stringify({ records: records.slice(i, i + 25) });
      const response = await fetch(`${env.FUNCTIONS_URL}/mmp-toledo-sync`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...signWebhook(env.SYNC_WEBHOOK_SECRET, body),
        },
        body,
      });
      if (!response.ok) {
        throw new Error(`redelivery refused: ${response.status} ${await response.text()}`);
      }
      await response.body?.cancel();
      sent += Math.min(25, records.length - i);
    }
  }
  return sent;
}

/** Waits until the poller has handed every stream record to the webhook. */
export async function drained(sql: postgres.Sql, timeoutMs = 120_000): Promise<void> {
  // The stream is drained when no row changed for a few seconds.
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const [row] = await sql.unsafe(
      `select ${
        TABLES.map((t) => `(select max(synced_at) from public.${t.targetTable})`).join(
          " || ' ' || ",
        )
      } as marks`,
    );
    if (row.marks !== last) {
      last = row.marks;
      stableSince = Date.now();
    } else if (Date.now() - stableSince > 5_000) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
