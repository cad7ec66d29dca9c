/**
 * The live path end to end: items put, updated and deleted in DynamoDB Local flow
 * through its streams, the stack's poller (Lambda's event source mapping), the real
 * Lambda handler and the webhook into Postgres, for all nine tables. Redelivering the
 * same records in any order and number changes nothing. A burst written while the
 * database is down arriving once it is back: tests/database_down_test.ts.
 */

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { DeleteItemCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { byTargetTable, TABLES } from "../functions-shared/table_registry.ts";
import {
  callFunction,
  connectDb,
  dynamo,
  eventually,
  postWebhook,
  serviceRoleHeaders,
  streamRecordsContaining,
} from "./stack_clients.ts";

type Item = Record<string, AttributeValue>;
const S = (s: string): AttributeValue => ({ S: s });
const N = (n: string | number): AttributeValue => ({ N: String(n) });

function put(target: string, item: Item) {
  const spec = byTargetTable(target)!;
  return dynamo(spec.region).send(new PutItemCommand({ TableName: spec.sourceTable, Item: item }));
}

function remove(target: string, key: Item) {
  const spec = byTargetTable(target)!;
  return dynamo(spec.region).send(new DeleteItemCommand({ TableName: spec.sourceTable, Key: key }));
}

function update(target: string, key: Item, set: string, values: Item) {
  const spec = byTargetTable(target)!;
  return dynamo(spec.region).send(
    new UpdateItemCommand({
      TableName: spec.sourceTable,
      Key: key,
      UpdateExpression: set,
      ExpressionAttributeValues: values,
    }),
  );
}

/** The test's rows of every table: key -> the columns the test checks. */
async function snapshot(prefix: string): Promise<Record<string, unknown>> {
  const sql = connectDb();
  const like = `${prefix}%`;
  try {
    const [row] = await sql`select jsonb_build_object(
      'actions', (select jsonb_object_agg(action_id, action_type) from firespring_actions where action_id like ${like}),
      'visitors', (select jsonb_object_agg(visitor_id, page_views) from firespring_visitors where visitor_id like ${like}),
      'jobs', (select jsonb_object_agg(job_id, status) from firespring_extraction_jobs where job_id like ${like}),
      'traffic', (select jsonb_object_agg(source_id, visitor_count) from firespring_traffic_sources where source_id like ${like}),
      'segments', (select jsonb_object_agg(segment_id, member_count::text) from firespring_segments where segment_id like ${like}),
      'searches', (select jsonb_object_agg(search_id, search_count) from firespring_searches where search_id like ${like}),
      'network', (select jsonb_object_agg(state_key, state_value) from firespring_network_state where state_key like ${like}),
      'leads', (select jsonb_object_agg(lead_id, name) from mmp_toledo_leads where lead_id like ${like}),
      'dashboard', (select jsonb_object_agg(pk || '/' || sk, metrics) from toledo_dashboard where pk like ${like})
    ) as s`;
    return row.s;
  } finally {
    await sql.end();
  }
}

/** Every column (but synced_at) of the test's rows, to compare states exactly. */
async function fullState(prefix: string): Promise<unknown> {
  const sql = connectDb();
  const like = `${prefix}%`;
  try {
    const [row] = await sql`select jsonb_build_array(
      (select jsonb_agg(to_jsonb(t) - 'synced_at' order by visitor_id) from firespring_visitors t where visitor_id like ${like}),
      (select jsonb_agg(to_jsonb(t) - 'synced_at' order by job_id) from firespring_extraction_jobs t where job_id like ${like}),
      (select jsonb_agg(to_jsonb(t) - 'synced_at' order by action_id) from firespring_actions t where action_id like ${like}),
      (select jsonb_agg(to_jsonb(t) - 'synced_at' order by lead_id) from mmp_toledo_leads t where lead_id like ${like})
    ) as s`;
    return row.s;
  } finally {
    await sql.end();
  }
}

const prefix = `e2e-${crypto.randomUUID().slice(0, 8)}-`;
const p = (id: string) => prefix + id;
const expected = {
  actions: { [p("a1")]: "submit" },
  visitors: { [p("v1")]: 1, [p("v2")]: 5 },
  jobs: { [p("j1")]: "complete" },
  traffic: { [p("t1")]: 11 },
  segments: { [p("s1")]: "12345678901234567890123456789012345678" },
  searches: { [p("q1")]: 3 },
  network: { [p("n1")]: { online: true, peers: 2 } },
  leads: { [p("l1")]: "Ada" },
  dashboard: { [`${p("d")}/s1`]: { visits: 10 } },
};

Deno.test("puts, updates and deletes in all nine tables arrive in Postgres", async () => {
  await put("firespring_actions", {
    action_id: S(p("a1")),
    type: S("click"),
    timestamp: N(1770379200),
  });
  await put("firespring_actions", { action_id: S(p("a2")), action_type: S("view") });
  await update("firespring_actions", { action_id: S(p("a1")) }, "SET action_type = :t", {
    ":t": S("submit"),
  });
  await remove("firespring_actions", { action_id: S(p("a2")) });

  await put("firespring_visitors", {
    session_id: S(p("v1")),
    timestamp: N(100),
    pages_viewed: N(1),
  });
  await put("firespring_visitors", {
    session_id: S(p("v1")),
    timestamp: N(200),
    pages_viewed: N(2),
  });
  await put("firespring_visitors", {
    session_id: S(p("v2")),
    timestamp: N(100),
    pages_viewed: N(5),
  });
  await remove("firespring_visitors", { session_id: S(p("v1")), timestamp: N(200) });

  await put("firespring_extraction_jobs", {
    job_id: S(p("j1")),
    updated_at: N(1000),
    status: S("running"),
  });
  await put("firespring_extraction_jobs", {
    job_id: S(p("j1")),
    updated_at: N(2000),
    status: S("complete"),
  });
  await put("firespring_extraction_jobs", {
    job_id: S(p("j2")),
    updated_at: N(1000),
    status: S("pending"),
  });
  await remove("firespring_extraction_jobs", { job_id: S(p("j2")), updated_at: N(1000) });

  await put("firespring_traffic_sources", {
    source_id: S(p("t1")),
    name: S("google"),
    visitors: N(10),
  });
  await update("firespring_traffic_sources", { source_id: S(p("t1")) }, "SET visitors = :v", {
    ":v": N(11),
  });

  await put("firespring_segments", {
    segment_id: S(p("s1")),
    value: N("12345678901234567890123456789012345678"),
  });

  await put("firespring_searches", { search_id: S(p("q1")), query: S("toledo"), count: N(3) });
  await put("firespring_searches", { search_id: S(p("q2")), query: S("ohio"), count: N(1) });
  await remove("firespring_searches", { search_id: S(p("q2")) });

  await put("firespring_network_state", {
    state_key: S(p("n1")),
    value: { M: { online: { BOOL: true }, peers: N(2) } },
  });

  await put("mmp_toledo_leads", { id: S(p("l1")), name: S("Ada"), _version: N(1) });
  await put("mmp_toledo_leads", { id: S(p("l2")), name: S("Bob"), _version: N(1) });
  await update("mmp_toledo_leads", { id: S(p("l2")) }, "SET #d = :d, #v = :v", {
    ":d": { BOOL: true },
    ":v": N(2),
  }).catch(async () => {
    // ExpressionAttributeNames are needed for names starting with an underscore.
    const spec = byTargetTable("mmp_toledo_leads")!;
    await dynamo(spec.region).send(
      new UpdateItemCommand({
        TableName: spec.sourceTable,
        Key: { id: S(p("l2")) },
        UpdateExpression: "SET #d = :d, #v = :v",
        ExpressionAttributeNames: { "#d": "_deleted", "#v": "_version" },
        ExpressionAttributeValues: { ":d": { BOOL: true }, ":v": N(2) },
      }),
    );
  });

  await put("toledo_dashboard", { pk: S(p("d")), sk: S("s1"), metrics: { M: { visits: N(10) } } });
  await put("toledo_dashboard", { pk: S(p("d")), sk: S("s2"), metrics: { M: { visits: N(20) } } });
  await remove("toledo_dashboard", { pk: S(p("d")), sk: S("s2") });

  const arrived = await eventually("every change to arrive", async () => {
    const state = await snapshot(prefix);
    return isDeepStrictEqual(state, expected) ? state : undefined;
  }, 60_000).catch(async (error) => {
    assert.deepEqual(await snapshot(prefix), expected, error.message);
  });
  assert.deepEqual(arrived, expected);
  await arrivedFromItsRegion();
});

/**
 * Each table's records came through its stream with the `eventSourceARN` Lambda gives
 * them, naming the table's registry region as AWS does (the stack's DynamoDB answers the
 * region a request was made in, never DynamoDB Local's `ddblocal`:
 * local-stack/aws/region_arns.ts), so the webhook's check of the region ran and passed:
 * the webhook noted each applied record under that ARN (sync.stream_batches_applied).
 */
async function arrivedFromItsRegion(): Promise<void> {
  const sql = connectDb();
  try {
    for (const spec of TABLES) {
      const target = spec.targetTable;
      const { streamArn, found } = await streamRecordsContaining(target, prefix);
      assert.ok(
        streamArn.startsWith(
          `arn:aws:dynamodb:${spec.region}:000000000000:table/${spec.sourceTable}/stream/`,
        ),
        `${target}: ${streamArn}`,
      );
      assert.ok(found.length > 0, target);
      for (const { record } of found) {
        assert.equal(record.awsRegion, spec.region, target);
        const seq = record.dynamodb!.SequenceNumber!;
        // Under the ARN the Lambda was handed (an earlier DynamoDB Local's stream of the
        // table numbered its records alike, under another ARN).
        const [{ noted }] = await sql<{ noted: boolean }[]>`
          select exists (select from sync.stream_batches_applied
                         where stream_arn = ${streamArn} and span @> ${seq}::numeric
                           and ${seq}::numeric = any(sequence_numbers)) as noted`;
        assert.ok(noted, `${target}: record ${seq} noted as applied from ${streamArn}`);
      }
    }
  } finally {
    await sql.end();
  }
}

/** Every record the streams of `targets` hold for this test, in Lambda's form. */
async function recordsOf(targets: string[]) {
  const all = [];
  for (const target of targets) {
    all.push(...(await streamRecordsContaining(target, prefix)).found.map((f) => f.record));
  }
  return all;
}

/**
 * Re-reads the visitors whose held observation the first test's deletes removed (queued
 * by the merge, 20261128002900_collapsed_rereads.sql) until none of this file's is left:
 * pg_cron's sweep would otherwise re-read them in the middle of the next test, writing
 * each such row again as a repair (its items unchanged, its stamp the read's).
 */
async function rereadQueued(): Promise<void> {
  const sql = connectDb();
  try {
    await eventually("this file's queued re-reads to be done", async () => {
      const [{ n }] = await sql`select count(*)::int as n from sync.collapsed_rereads
                                where row_key::text like ${`%${prefix}%`}`;
      if (n === 0) return true;
      const response = await callFunction("data-checksum-validator", {
        method: "POST",
        headers: serviceRoleHeaders(),
        body: JSON.stringify({ rereads: true }),
      });
      await response.body?.cancel();
      return undefined;
    });
  } finally {
    await sql.end();
  }
}

Deno.test("duplicated, reordered and replayed deliveries change nothing", async () => {
  await rereadQueued();
  const before = await fullState(prefix);
  const records = await recordsOf([
    "firespring_visitors",
    "firespring_extraction_jobs",
    "firespring_actions",
    "mmp_toledo_leads",
  ]);
  assert.ok(records.length >= 12, `the streams hold the test's records (${records.length})`);
  const reversed = [...records].reverse();
  const shuffled = [...records].sort(() => Math.random() - 0.5);
  for (const batch of [records, reversed, shuffled, [...records, ...records]]) {
    const response = await postWebhook(JSON.stringify({ records: batch }));
    assert.equal(response.status, 200);
    const counts = await response.json();
    assert.equal(counts.applied, 0, "a redelivery applies nothing");
    assert.equal(counts.deadLettered, 0);
  }
  // One at a time, newest first: each arrives after a newer one for its item.
  for (const record of reversed) {
    const response = await postWebhook(JSON.stringify({ records: [record] }));
    assert.equal((await response.json()).applied, 0);
  }
  assert.deepEqual(await fullState(prefix), before);
});
