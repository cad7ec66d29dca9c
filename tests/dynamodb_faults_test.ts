/**
 * The stack's DynamoDB as production serves it (local-stack/aws/proxy.ts), end to end:
 * with DYNAMODB_FAULTS=stale_ms=2000,throttle_rcu=300,error_rate=0.02 an eventually
 * consistent read right after an update can return the old version and a consistent one
 * never does; reads past the capacity are throttled; ConsumedCapacity is reported as AWS
 * counts it; DynamoDB Streams' operations fail at the error rate too; and a backfill still
 * gives back exactly the rows the stream made. With `throttle_wcu` on too (off by
 * default), writes past the table's write capacity are refused as AWS refuses them, and a
 * BatchWriteItem writes what fits and answers the rest in UnprocessedItems.
 *
 * The test puts those faults into `.local/stack.env` and runs `stack:up` (which restarts
 * only the proxy) when they are not already in force, and puts the old value back after.
 */

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import {
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import {
  DescribeStreamCommand,
  GetShardIteratorCommand,
} from "../functions-shared/dynamo_commands.ts";
import { DynamoClient } from "../functions-shared/dynamo_http.ts";
import { awsClientConfig } from "../functions-shared/dynamo_client.ts";
import { stackEnvReader } from "../local-stack/stack_env.ts";
import { batchWrite } from "../demo/load_dynamo.ts";
import { setFaults } from "./stack_faults.ts";
import {
  HANDS_ON_FUNCTIONS,
  isolateLogOffset,
  killsSince,
} from "../local-stack/supabase/isolate_log.ts";
import { connectDb, dynamo, eventually, stack } from "./stack_clients.ts";

const FAULTS = "stale_ms=2000,throttle_rcu=300,error_rate=0.02";
type Item = Record<string, AttributeValue>;
const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

/** A client that does not retry, to see each answer of the proxy. */
function bareClient(): DynamoDBClient {
  return new DynamoDBClient({
    region: stack.AWS_REGION,
    endpoint: stack.DYNAMODB_ENDPOINT,
    credentials: {
      accessKeyId: stack.AWS_ACCESS_KEY_ID,
      secretAccessKey: stack.AWS_SECRET_ACCESS_KEY,
    },
    maxAttempts: 1,
  });
}

/** Retries a call through injected InternalServerErrors (the bare client does not). */
async function through500<T>(call: () => Promise<T>): Promise<T> {
  for (let i = 0;; i++) {
    try {
      return await call();
    } catch (error) {
      if ((error as Error).name !== "InternalServerError" || i > 20) throw error;
    }
  }
}

async function withTable(fn: (table: string) => Promise<void>): Promise<void> {
  const table = `faults-${crypto.randomUUID().slice(0, 8)}`;
  await dynamo().send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  try {
    await fn(table);
  } finally {
    await dynamo().send(new DeleteTableCommand({ TableName: table }));
  }
}

let previous: string | undefined;
Deno.test("set the faults", async () => {
  previous = await setFaults(FAULTS);
});

Deno.test("DynamoDB Streams' operations fail at error_rate too, each with AWS's InternalServerError", async () => {
  const table = byTargetTable("firespring_actions")!.sourceTable;
  const { Table } = await through500(() =>
    bareClient().send(new DescribeTableCommand({ TableName: table }))
  );
  const streams = new DynamoClient({
    ...awsClientConfig(stackEnvReader(stack), stack.AWS_REGION),
    maxAttempts: 1,
  });
  const StreamArn = Table!.LatestStreamArn!;
  // Its shard, by a client that retries (the injected 500s, and DescribeStream's throttle).
  const { StreamDescription } = await new DynamoClient(
    awsClientConfig(stackEnvReader(stack), stack.AWS_REGION),
  ).send(new DescribeStreamCommand({ StreamArn, Limit: 1 }));
  const ShardId = StreamDescription!.Shards![0].ShardId!;
  // GetShardIterator, not DescribeStream: AWS answers DescribeStream only 10 times a second
  // (local-stack/aws/describe_limit.ts), and 400 of them would be mostly throttled.
  // 2% of 400: about 8; none at all would be 0.98^400, 0.03%.
  const failures: Error[] = [];
  for (let i = 0; i < 400; i++) {
    await streams.send(
      new GetShardIteratorCommand({ StreamArn, ShardId, ShardIteratorType: "TRIM_HORIZON" }),
    ).catch((error: Error) => failures.push(error));
  }
  assert.ok(failures.length > 0, "no Streams request failed");
  for (const error of failures) {
    assert.equal(error.name, "InternalServerError");
    assert.match(error.message, /GetShardIterator/);
  }
});

Deno.test("an eventually consistent GetItem right after an update can return the old version; a consistent one never does", async () => {
  await withTable(async (table) => {
    const client = dynamo();
    const Key = { id: S("a") };
    await client.send(new PutItemCommand({ TableName: table, Item: { id: S("a"), v: N(1) } }));
    // Let version 1 age past the window, so that right after the update it is what a
    // stale replica most likely still has.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await client.send(
      new UpdateItemCommand({
        TableName: table,
        Key,
        UpdateExpression: "SET v = :v",
        ExpressionAttributeValues: { ":v": N(2) },
      }),
    );
    const eventual: string[] = [];
    const consistent: string[] = [];
    for (let i = 0; i < 20; i++) {
      const e = await client.send(new GetItemCommand({ TableName: table, Key }));
      eventual.push(e.Item?.v?.N ?? "absent");
      const c = await client.send(
        new GetItemCommand({ TableName: table, Key, ConsistentRead: true }),
      );
      consistent.push(c.Item?.v?.N ?? "absent");
    }
    assert.ok(eventual.includes("1"), `eventually consistent reads saw ${eventual}`);
    assert.ok(eventual.every((v) => v === "1" || v === "2"), `${eventual}`);
    assert.deepEqual(consistent, Array(20).fill("2"));
  });
});

Deno.test("ReturnConsumedCapacity is reported as AWS counts it", async () => {
  await withTable(async (table) => {
    const client = dynamo();
    const Key = { id: S("big") };
    // 10,000 bytes of text plus the names and key: 3 blocks of 4 KB.
    await client.send(
      new PutItemCommand({ TableName: table, Item: { id: S("big"), t: S("x".repeat(10_000)) } }),
    );
    const strong = await client.send(
      new GetItemCommand({
        TableName: table,
        Key,
        ConsistentRead: true,
        ReturnConsumedCapacity: "TOTAL",
      }),
    );
    assert.deepEqual(strong.ConsumedCapacity, { TableName: table, CapacityUnits: 3 });
    const eventual = await client.send(
      new GetItemCommand({
        TableName: table,
        Key,
        ReturnConsumedCapacity: "TOTAL",
        ProjectionExpression: "id",
      }),
    );
    assert.deepEqual(eventual.ConsumedCapacity, { TableName: table, CapacityUnits: 1.5 });
    const unasked = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
    assert.equal(unasked.ConsumedCapacity, undefined);
  });
});

Deno.test("reads past the table's capacity get ProvisionedThroughputExceededException", async () => {
  await withTable(async (table) => {
    const client = dynamo();
    for (let i = 0; i < 8; i++) {
      await client.send(
        new PutItemCommand({
          TableName: table,
          Item: { id: S(`i${i}`), t: S("y".repeat(350_000)) },
        }),
      );
    }
    // A consistent Scan of 2.8 MB costs about 700 units; the table allows 300 a second
    // (and starts with one second's worth), so within a few Scans one is refused.
    const bare = bareClient();
    let throttled: Error | undefined;
    for (let i = 0; i < 40 && !throttled; i++) {
      let start: Item | undefined;
      try {
        do {
          const page = await through500(() =>
            bare.send(
              new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }),
            )
          );
          start = page.LastEvaluatedKey;
        } while (start);
      } catch (error) {
        throttled = error as Error;
      }
    }
    assert.ok(throttled, "no Scan was throttled");
    assert.equal(throttled.name, "ProvisionedThroughputExceededException");
    assert.match(throttled.message, /provisioned throughput for the table was exceeded/);
    assert.equal(
      (throttled as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode,
      400,
    );
  });
});

/** The data columns of the rows whose key starts with `p`. */
async function rows(sql: postgres.Sql, target: string, p: string): Promise<unknown[]> {
  const spec = byTargetTable(target)!;
  const key = spec.targetKey[0];
  const found = await sql.unsafe(
    `select to_jsonb(t) - 'sync_sequence' - 'sync_changed_at' - 'sync_source' - 'synced_at' as r
     from public.${target} t where ${key} like $1 order by ${spec.targetKey.join(", ")}`,
    [`${p}%`],
  );
  return found.map((row) => row.r);
}

Deno.test("a backfill under stale reads, throttling and errors gives back exactly the rows the stream made", async () => {
  await backfillGivesBackTheStreamsRows();
});

/**
 * Writes 450 visitors observations of a prefix of its own, lets the stream deliver them,
 * forgets their rows, backfills the table, and checks the rows are back exactly as the
 * stream made them.
 */
async function backfillGivesBackTheStreamsRows(): Promise<void> {
  const sql = connectDb();
  const p = `flt-${crypto.randomUUID().slice(0, 8)}-`;
  const spec = byTargetTable("firespring_visitors")!;
  try {
    const items: Item[] = [];
    for (let i = 0; i < 150; i++) {
      for (let k = 0; k < 3; k++) {
        items.push({
          session_id: S(`${p}${i}`),
          timestamp: N(1770379200 + k),
          pages_viewed: N(k + i),
          sessions: {
            L: [{ M: { session_id: S(`${p}${i}-${k}`), geolocation: S("Toledo, Ohio, USA") } }],
          },
        });
      }
    }
    await batchWrite(dynamo(spec.region), spec.sourceTable, items);
    let reference: unknown[] = [];
    await eventually("the stream to deliver the items", async () => {
      const now = await rows(sql, spec.targetTable, p);
      const settled = now.length === 150 && isDeepStrictEqual(now, reference);
      reference = now;
      return settled ? true : undefined;
    }, 90_000);

    const key = spec.targetKey[0];
    await sql.unsafe(`delete from public.${spec.targetTable} where ${key} like $1`, [`${p}%`]);
    await sql`delete from sync.observations where target_table = ${spec.targetTable} and row_key ->> ${key} like ${
      p + "%"
    }`;
    await sql`delete from sync.tombstones where target_table = ${spec.targetTable} and row_key ->> ${key} like ${
      p + "%"
    }`;
    const [job] = await sql`select sync.start_backfill(${spec.sourceTable}, 4) as id`;
    const done = await eventually("the backfill to finish", async () => {
      const [r] = await sql`select status from sync.backfill_progress where job_id = ${job.id}`;
      return r.status === "done" || r.status === "failed" ? r.status : undefined;
    }, 180_000);
    assert.equal(done, "done");
    assert.deepEqual(await rows(sql, spec.targetTable, p), reference);
  } finally {
    await sql.end();
  }
}

Deno.test("the same, 50 ms away from DynamoDB: no worker killed, nothing lost", async () => {
  // The network from a Supabase project to AWS (latency_ms): every Scan page of the
  // backfill waits for it, within the Edge Runtime's limits and the segments' leases.
  await setFaults(`${FAULTS},latency_ms=50`);
  const offset = isolateLogOffset();
  await backfillGivesBackTheStreamsRows();
  assert.deepEqual(killsSince(offset, HANDS_ON_FUNCTIONS), []);
});

/** Whether `call` was refused for the table's capacity; anything else is thrown. */
async function refused(call: () => Promise<unknown>): Promise<Error | undefined> {
  try {
    await through500(call);
    return undefined;
  } catch (error) {
    if ((error as Error).name !== "ProvisionedThroughputExceededException") throw error;
    return error as Error;
  }
}

Deno.test("writes past the table's write capacity get ProvisionedThroughputExceededException; a batch writes what fits and returns the rest unprocessed", async () => {
  await setFaults(`${FAULTS},throttle_wcu=10`);
  await withTable(async (table) => {
    const bare = bareClient();
    // 20 write units each: the table allows 10 a second (and starts with one second's).
    const big = (id: string) => ({ id: S(id), t: S("z".repeat(20 * 1024 - 10)) });
    const spend = async () => {
      for (let i = 0; i < 40; i++) {
        const error = await refused(() =>
          bare.send(new PutItemCommand({ TableName: table, Item: big(`big${i}`) }))
        );
        if (error) return error;
      }
      throw new Error("no PutItem was throttled");
    };
    const put = await spend();
    assert.match(
      put.message,
      /^The level of configured provisioned throughput for the table was exceeded\. Consider increasing your provisioning level with the UpdateTable API\./,
    );
    assert.equal(
      (put as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode,
      400,
    );
    const requestsOf = (prefix: string) =>
      Array.from({ length: 25 }, (_, i) => ({ PutRequest: { Item: { id: S(`${prefix}${i}`) } } }));
    const batch = (requests: { PutRequest: { Item: Item } }[]) =>
      bare.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
    // Right after a refusal the bucket is spent: none of the batch fits.
    assert.ok(await refused(() => batch(requestsOf("none"))), "a batch on a spent table passed");
    // About a second later a few units are back: some of the batch is written, the rest
    // answered unprocessed, in AWS's shape (keyed by table name), in order.
    for (let attempt = 0;; attempt++) {
      assert.ok(attempt < 20, "no batch was written in part");
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const requests = requestsOf(`some${attempt}-`);
      let answer;
      try {
        answer = await through500(() => batch(requests));
      } catch (error) {
        if ((error as Error).name !== "ProvisionedThroughputExceededException") throw error;
        continue; // not yet refilled
      }
      const left = answer.UnprocessedItems?.[table];
      if (!left) {
        await spend(); // all of it fitted: spend the bucket again
        continue;
      }
      assert.deepEqual(Object.keys(answer.UnprocessedItems!), [table]);
      const ids = (list: { PutRequest?: { Item?: Item } }[]) =>
        list.map((r) => r.PutRequest!.Item!.id.S!);
      const written = requests.length - left.length;
      assert.ok(written > 0 && written < requests.length, `${written} written`);
      assert.deepEqual(ids(left), ids(requests.slice(written)));
      const { Items } = await dynamo().send(
        new ScanCommand({ TableName: table, ConsistentRead: true }),
      );
      const stored = new Set((Items ?? []).map((item) => item.id.S!));
      for (const id of ids(requests.slice(0, written))) assert.ok(stored.has(id), `${id} lost`);
      break;
    }
  });
  await setFaults(FAULTS);
});

Deno.test("put the faults back", async () => {
  if (previous !== undefined) await setFaults(previous);
});
