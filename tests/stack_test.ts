/**
 * The local stack itself: each part answers, pg_cron reaches a function through
 * pg_net, DynamoDB Local records changes in its streams, and the DynamoDB and S3
 * stand-ins check signatures. (That `stack:up` is
 * idempotent is tests/stack_reuse_test.ts, which runs meanwhile.)
 */

import assert from "node:assert/strict";
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "../functions-shared/dynamo_commands.ts";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { DYNAMODB_INTERNAL_PORT } from "../local-stack/config.ts";
import { fillNewTable } from "../local-stack/aws/source_tables.ts";
import { READING_MS } from "../local-stack/aws/shard_readers.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import {
  callFunction,
  connectDb,
  dynamo,
  dynamoStreams,
  eventually,
  stack,
} from "./stack_clients.ts";

const FUNCTIONS = [
  "data-checksum-validator",
  "import-worker",
  "mmp-toledo-sync",
  "stream-check",
  "write-back",
];

// First in the file: it waits for pg_cron's next minute, the one cron_test.ts waits for,
// and the tests before it had made it schedule its job seconds late, once in a while too
// late for that minute (then it waited for the next: 57-65 s).
Deno.test("a pg_cron job calling net.http_post reaches a function", async () => {
  const sql = connectDb();
  const job = `stack-test-${crypto.randomUUID()}`;
  try {
    await sql`create schema if not exists stack_test`;
    await sql`create table if not exists stack_test.cron_requests (request_id bigint primary key, job text)`;
    // The job reads the URL and key from Vault, as a migration's job does on a hosted project.
    // It calls the validator, which checks the key and then refuses the table by name,
    // doing nothing else: the import-worker is cron_test.ts's alone, which runs meanwhile
    // (scripts/e2e_plan.ts).
    await sql`select cron.schedule(${job}, '* * * * *', ${`
      insert into stack_test.cron_requests (job, request_id)
      select '${job}', net.http_post(
        url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url')
               || '/functions/v1/data-checksum-validator',
        headers := jsonb_build_object(
          'content-type', 'application/json',
          'authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets
                                         where name = 'service_role_key')),
        body := '{"table": "from_pg_cron"}'::jsonb,
        -- pg_net's default is 5 s: a loaded machine's cold isolate took longer.
        timeout_milliseconds := 60000)`})`;
    // pg_cron 1.4 (Debian bookworm) schedules by the minute: this waits up to one (the
    // same one as cron_test.ts).
    const response = await eventually("the cron job's request to be answered", async () => {
      const rows = await sql`
        select r.status_code, r.content, r.error_msg
        from stack_test.cron_requests q join net._http_response r on r.id = q.request_id
        where q.job = ${job}`;
      return rows[0];
    }, 90_000);
    assert.equal(response.error_msg, null);
    // Past the key check (a wrong or missing key would be 401): the table is refused.
    assert.equal(response.status_code, 400, response.content);
    assert.match(JSON.parse(response.content).error, /from_pg_cron is not a target table/);
    // pg_cron records the run as ended in a transaction of its own, after the command: the
    // response can be there first (CI saw 'running').
    const run = await eventually("pg_cron to record the run as ended", async () => {
      const [row] = await sql`select d.status from cron.job_run_details d
                              join cron.job j using (jobid) where j.jobname = ${job}`;
      return row && !["starting", "running"].includes(row.status) ? row : undefined;
    });
    assert.equal(run.status, "succeeded");
  } finally {
    await sql`select cron.unschedule(jobid) from cron.job where jobname = ${job}`;
    await sql`delete from stack_test.cron_requests where job = ${job}`;
    await sql.end();
  }
});

Deno.test("postgres answers as PostgreSQL 15 with the project's settings", async () => {
  const sql = connectDb();
  try {
    const [row] = await sql`select current_setting('server_version_num')::int as version,
                                   current_setting('cron.database_name') as cron_db`;
    assert.equal(Math.floor(row.version / 10000), 15);
    assert.equal(row.cron_db, "postgres");
  } finally {
    await sql.end();
  }
});

Deno.test("every Edge Function answers at /functions/v1/NAME", async () => {
  for (const name of FUNCTIONS) {
    const response = await callFunction(name, { method: "GET" });
    assert.equal(response.status, 405, `${name} refuses GET`);
    assert.equal(response.headers.get("allow"), "POST");
    assert.match((await response.json()).error, /method not allowed/);
  }
  const missing = await callFunction("no-such-function");
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("sb-error-code"), "NOT_FOUND");
  assert.equal((await missing.json()).message, "Requested function was not found");
  // The gateway passes only POST, GET, PUT, PATCH, DELETE and OPTIONS to a function.
  const head = await callFunction(FUNCTIONS[0], { method: "HEAD" });
  assert.equal(head.status, 405);
  assert.equal(head.headers.get("allow"), "POST, GET, PUT, PATCH, DELETE, OPTIONS");
});

Deno.test("pg_net sends only committed requests and records failures", async () => {
  const sql = connectDb();
  try {
    const rolledBack = await sql.begin(async (tx) => {
      const [row] = await tx`select net.http_post('http://127.0.0.1:9/rolled-back') as id`;
      await tx`select pg_notify('pg_net_request', '')`;
      throw Object.assign(new Error("roll back"), { id: row.id });
    }).catch((error) => error.id as string);
    const closed = Deno.listen({ port: 0, hostname: "127.0.0.1" });
    const closedPort = (closed.addr as Deno.NetAddr).port;
    closed.close();
    const [failed] = await sql`
      select net.http_get(${`http://127.0.0.1:${closedPort}/closed-port`}) as id`;
    const outcome = await eventually("the failed request's outcome", async () => {
      const rows = await sql`select status_code, error_msg from net._http_response
                             where id = ${failed.id}`;
      return rows[0];
    });
    assert.equal(outcome.status_code, null);
    assert.equal(outcome.error_msg, "Couldn't connect to server", "libcurl's words, as pg_net's");
    const ghost = await sql`select id from net._http_response where id = ${rolledBack}`;
    assert.equal(ghost.length, 0, "a rolled-back request is never sent");
  } finally {
    await sql.end();
  }
});

Deno.test("a request in flight stays in pg_net's queue until its answer is recorded", async () => {
  // pg_net takes a batch off the queue, sends it and records its answers in one
  // transaction (src/worker.c), so until the answer is in, the request is still queued.
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  let arrived!: () => void;
  const arrival = new Promise<void>((resolve) => arrived = resolve);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    arrived();
    await released;
    return new Response("held", { status: 200 });
  });
  const sql = connectDb();
  try {
    const [request] = await sql`
      select net.http_post(${`http://127.0.0.1:${server.addr.port}/held`}) as id`;
    await arrival;
    const queued = await sql`select id from net.http_request_queue where id = ${request.id}`;
    const answered = await sql`select id from net._http_response where id = ${request.id}`;
    assert.deepEqual([queued.length, answered.length], [1, 0], "sent, still queued, no answer");
    release();
    const outcome = await eventually("the held request's answer", async () => {
      const [row] = await sql`select status_code, content from net._http_response
                              where id = ${request.id}`;
      return row;
    });
    assert.deepEqual({ ...outcome }, { status_code: 200, content: "held" });
    const left = await sql`select id from net.http_request_queue where id = ${request.id}`;
    assert.equal(left.length, 0, "the answer recorded, the request is off the queue");
  } finally {
    release();
    await server.shutdown();
    await sql.end();
  }
});

Deno.test("a function's failed answer to a call of sync.call_edge_function shows in sync.status", async () => {
  // Through the stack's pg_net worker and gateway, as pg_cron's calls go: the call is
  // noted with pg_net's id, and the gateway's 404 for a function not deployed is read back.
  const sql = connectDb();
  const name = `not-deployed-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await sql`select sync.call_edge_function(${name}, '{}'::jsonb, 5000)`;
    const problem = await eventually("the function's answer in sync.status", async () => {
      const [row] = await sql`select function_problem from sync.status limit 1`;
      return (row.function_problem as string | null)?.split("; ").find((p) => p.startsWith(name));
    });
    assert.match(
      problem,
      new RegExp(
        `^${name} answered 404 to its call at \\S+Z: .*Requested function was not found`,
      ),
    );
  } finally {
    await sql`delete from sync.function_calls where function_name = ${name}`;
    await sql.end();
  }
});

/** The records of a us-east-1 stream's first shard, from its start (TRIM_HORIZON). */
async function recordsFromStart(StreamArn: string) {
  const streams = dynamoStreams("us-east-1");
  const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn }));
  const { ShardIterator } = await streams.send(
    new GetShardIteratorCommand({
      StreamArn,
      ShardId: StreamDescription!.Shards![0].ShardId!,
      ShardIteratorType: "TRIM_HORIZON",
    }),
  );
  const { Records } = await streams.send(new GetRecordsCommand({ ShardIterator: ShardIterator! }));
  return Records;
}

Deno.test("DynamoDB Local records item changes in its stream", async () => {
  const client = dynamo("us-east-1");
  const TableName = `stack-test-${crypto.randomUUID()}`;
  try {
    await client.send(
      new CreateTableCommand({
        TableName,
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
        StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
      }),
    );
    await client.send(
      new PutItemCommand({ TableName, Item: { id: { S: "a" }, n: { N: "12345678901234567890" } } }),
    );
    const table = await client.send(new DescribeTableCommand({ TableName }));
    const Records = await recordsFromStart(table.Table!.LatestStreamArn!);
    assert.equal(Records?.length, 1);
    assert.equal(Records![0].eventName, "INSERT");
    assert.deepEqual(Records![0].dynamodb?.NewImage?.n, { N: "12345678901234567890" });
    assert.match(Records![0].dynamodb!.SequenceNumber!, /^\d+$/);

    // A third reader of the shard at once is throttled, as on AWS
    // (local-stack/aws/shard_readers.ts); two are served. The client does not retry, so
    // that the throttle shows; the stack's injected 500s are asked again here, and so is
    // a DescribeStream past AWS's 10 a second (local-stack/aws/describe_limit.ts; the
    // stack's poller and the lost-record check share them), after a wait.
    const streams = dynamoStreams("us-east-1", 1);
    const again = async <T>(ask: () => Promise<T>): Promise<T> => {
      for (let attempt = 1;; attempt++) {
        try {
          return await ask();
        } catch (error) {
          const name = (error as Error).name;
          if (!["InternalServerError", "ThrottlingException"].includes(name) || attempt >= 10) {
            throw error;
          }
          if (name === "ThrottlingException") {
            await new Promise((resolve) => setTimeout(resolve, Math.random() * 1000));
          }
        }
      }
    };
    const StreamArn = table.Table!.LatestStreamArn!;
    // Past 10 DescribeStream a second, each is answered 400 ThrottlingException, "Rate
    // exceeded" (local-stack/aws/describe_limit.ts): of 20 at once, 10 at most are served.
    const answers = await Promise.allSettled(
      Array.from({ length: 20 }, () => streams.send(new DescribeStreamCommand({ StreamArn }))),
    );
    const throttled = answers.flatMap((a) =>
      a.status === "rejected" && a.reason.name === "ThrottlingException" ? [a.reason] : []
    );
    assert.ok(throttled.length >= 10, `${throttled.length} of 20 throttled`);
    assert.equal(throttled[0].$metadata.httpStatusCode, 400);
    assert.match(throttled[0].message, /^DescribeStream on stack-test-.*: Rate exceeded$/);
    const { StreamDescription } = await again(() =>
      streams.send(new DescribeStreamCommand({ StreamArn }))
    );
    const ShardId = StreamDescription!.Shards![0].ShardId!;
    // The read above has stopped reading by then.
    await new Promise((resolve) => setTimeout(resolve, READING_MS + 100));
    const readers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { ShardIterator } = await again(() =>
        streams.send(
          new GetShardIteratorCommand({ StreamArn, ShardId, ShardIteratorType: "TRIM_HORIZON" }),
        )
      );
      readers.push(ShardIterator!);
    }
    const read = (i: number) =>
      again(() => streams.send(new GetRecordsCommand({ ShardIterator: readers[i] })));
    assert.equal((await read(0)).Records?.length, 1);
    assert.equal((await read(1)).Records?.length, 1);
    await assert.rejects(read(2), (error: Error) => {
      assert.equal(error.name, "LimitExceededException");
      assert.match(error.message, /more than 2 processes are reading from the same streams shard/);
      return true;
    });
  } finally {
    await client.send(new DeleteTableCommand({ TableName })).catch(() => {});
  }
});

Deno.test("DynamoDB Local keeps the two regions apart", async () => {
  const east2 = dynamo("us-east-2");
  const TableName = `stack-test-${crypto.randomUUID()}`;
  try {
    await east2.send(
      new CreateTableCommand({
        TableName,
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    const inEast1 = await dynamo("us-east-1").send(new ListTablesCommand({}));
    const inEast2 = await east2.send(new ListTablesCommand({}));
    assert.ok(inEast2.TableNames?.includes(TableName));
    assert.ok(!inEast1.TableNames?.includes(TableName));
  } finally {
    await east2.send(new DeleteTableCommand({ TableName })).catch(() => {});
  }
});

Deno.test("a new table is filled past the proxy as DynamoDB's import fills one: no stream record, then its stream on", async () => {
  const client = dynamo("us-east-1");
  const spec = { sourceTable: `stack-test-${crypto.randomUUID()}`, region: "us-east-1" as const };
  const full = { sourceTable: `stack-test-${crypto.randomUUID()}`, region: "us-east-1" as const };
  const create = (TableName: string) =>
    client.send(
      new CreateTableCommand({
        TableName,
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
  try {
    await create(spec.sourceTable);
    const written = await fillNewTable(stack, spec, async (importer) => {
      const endpoint = await importer.config.endpoint!();
      assert.equal(Number(endpoint.port), DYNAMODB_INTERNAL_PORT, "DynamoDB Local itself");
      for (const id of ["a", "b", "c"]) {
        await importer.send(
          new PutItemCommand({ TableName: spec.sourceTable, Item: { id: { S: id } } }),
        );
      }
      return 3;
    });
    assert.equal(written, 3);
    const { Items } = await client.send(
      new ScanCommand({ TableName: spec.sourceTable, ConsistentRead: true }),
    );
    assert.deepEqual(Items?.map((i) => i.id.S).sort(), ["a", "b", "c"]);
    const table = await client.send(new DescribeTableCommand({ TableName: spec.sourceTable }));
    assert.equal(table.Table?.StreamSpecification?.StreamEnabled, true, "its stream is on");
    const Records = await recordsFromStart(table.Table!.LatestStreamArn!);
    assert.deepEqual(Records, [], "the items filled in are not in the stream");
    // No longer new (its stream on), or never (it holds an item): refused before any write.
    await create(full.sourceTable);
    await client.send(
      new PutItemCommand({ TableName: full.sourceTable, Item: { id: { S: "x" } } }),
    );
    for (
      const [table, why] of [[spec, "its stream is on"], [full, "it holds items"]] as const
    ) {
      let wrote = false;
      await assert.rejects(
        fillNewTable(stack, table, () => Promise.resolve(wrote = true)),
        new RegExp(`${table.sourceTable} \\(us-east-1\\): ${why}; only a new table`),
      );
      assert.equal(wrote, false, `${why}: nothing written`);
    }
  } finally {
    for (const TableName of [spec.sourceTable, full.sourceTable]) {
      await client.send(new DeleteTableCommand({ TableName })).catch(() => {});
    }
  }
});

Deno.test("the stack's DynamoDB and S3 refuse a wrong secret as AWS does, before anything is read", async () => {
  const wrong = { accessKeyId: stack.AWS_ACCESS_KEY_ID, secretAccessKey: "not-the-secret" };
  const client = new DynamoDBClient({
    region: stack.AWS_REGION,
    endpoint: stack.DYNAMODB_ENDPOINT,
    credentials: wrong,
    maxAttempts: 1,
  });
  await assert.rejects(
    client.send(new ListTablesCommand({})),
    (error: Error & { $metadata?: { httpStatusCode?: number } }) =>
      error.name === "InvalidSignatureException" && error.$metadata?.httpStatusCode === 400,
  );
  const s3 = new S3Client({
    region: "us-east-1",
    endpoint: stack.S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: stack.S3_ACCESS_KEY_ID, secretAccessKey: "not-the-secret" },
    maxAttempts: 1,
  });
  await assert.rejects(
    s3.send(new ListObjectsV2Command({ Bucket: stack.EXPORT_BUCKET })),
    (error: Error & { $metadata?: { httpStatusCode?: number } }) =>
      error.name === "SignatureDoesNotMatch" && error.$metadata?.httpStatusCode === 403,
  );
  client.destroy();
  s3.destroy();
});

Deno.test("the functions' reader and writer are held to their Terraform policies by the stack's DynamoDB", async () => {
  const segments = byTargetTable("firespring_segments")!;
  const as = (accessKeyId: string, secretAccessKey: string) =>
    new DynamoDBClient({
      region: segments.region,
      endpoint: stack.DYNAMODB_ENDPOINT,
      credentials: { accessKeyId, secretAccessKey },
      // The SDK's standard retries: the stack injects its faults' error_rate, which
      // failed the reader's one Scan without them (a fresh clone's run); a refusal
      // (AccessDeniedException) is not retried either way.
      maxAttempts: 3,
    });
  const reader = as(stack.AWS_READER_ACCESS_KEY_ID, stack.AWS_READER_SECRET_ACCESS_KEY);
  const writer = as(stack.AWS_WRITER_ACCESS_KEY_ID, stack.AWS_WRITER_SECRET_ACCESS_KEY);
  const key = { segment_id: { S: `iam-${crypto.randomUUID().slice(0, 8)}` } };
  const denied =
    (action: string, user: string) =>
    (error: Error & { $metadata?: { httpStatusCode?: number } }) =>
      error.name === "AccessDeniedException" && error.$metadata?.httpStatusCode === 400 &&
      error.message.includes(
        `user/${user} is not authorized to perform: ${action} on resource: `,
      ) &&
      error.message.includes(`table/${segments.sourceTable}`);
  try {
    // The reader reads the stack's own tables (one database for every key of the stack).
    const page = await reader.send(new ScanCommand({ TableName: segments.sourceTable, Limit: 1 }));
    assert.equal(page.$metadata.httpStatusCode, 200);
    await assert.rejects(
      reader.send(new PutItemCommand({ TableName: segments.sourceTable, Item: key })),
      denied("dynamodb:PutItem", "supabase-reader"),
    );
    await assert.rejects(
      writer.send(new GetItemCommand({ TableName: segments.sourceTable, Key: key })),
      denied("dynamodb:GetItem", "supabase-writer"),
    );
    await assert.rejects(
      writer.send(
        new UpdateItemCommand({
          TableName: segments.sourceTable,
          Key: key,
          UpdateExpression: "SET not_mapped = :v",
          ExpressionAttributeValues: { ":v": { S: "x" } },
        }),
      ),
      denied("dynamodb:UpdateItem", "supabase-writer"),
      "an attribute the registry does not map",
    );
    const read = await dynamo(segments.region).send(
      new GetItemCommand({ TableName: segments.sourceTable, Key: key, ConsistentRead: true }),
    );
    assert.equal(read.Item, undefined, "nothing refused was written");
  } finally {
    reader.destroy();
    writer.destroy();
  }
});
