/**
 * GetRecords through the proxy with idle polls on (stream_reads.ts, idle_polls.ts, the
 * proxy's count of writes): polls of an idle stream stay off DynamoDB Local, and every
 * write, whatever its operation, outcome or timing, is seen by the table's next poll.
 */

import assert from "node:assert/strict";
import { crc32 } from "../../functions-shared/crc32.ts";
import { type Faults, NO_FAULTS } from "./faults.ts";
import { IdlePolls } from "./idle_polls.ts";
import { createProxy } from "./proxy.ts";
import { StreamTimes } from "./stream_times.ts";
import { recordsWithin } from "./stream_reads.ts";

type Body = Record<string, unknown>;

const arn = (table: string) =>
  `arn:aws:dynamodb:ddblocal:000000000000:table/${table}/stream/2026-11-29T00:00:00.000`;

/**
 * DynamoDB Local in small: tables keyed by `id`, each with one shard (an array of
 * records), iterators `ARN|position|tag`. `holdWriteMs` delays a write before it is
 * applied; `holdPollMs` delays a GetRecords answer after it is made.
 */
function fakeDynamo() {
  const streams = new Map<string, Body[]>();
  const streamOf = (table: string) => streams.get(table) ?? streams.set(table, []).get(table)!;
  const calls: string[] = [];
  const timing = { holdWriteMs: 0, holdPollMs: 0, closed: false, failPolls: false };
  // An item whose id begins "big-" makes a record of 300 KB (SizeBytes), the others 10 B.
  const record = (table: string, id: unknown) =>
    streamOf(table).push({
      eventName: "INSERT",
      dynamodb: {
        Keys: { id },
        NewImage: { id },
        SequenceNumber: String(streamOf(table).length + 1).padStart(21, "0"),
        SizeBytes: String((id as { S?: string }).S).startsWith("big-") ? 300_000 : 10,
      },
    });
  const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const op = (req.headers.get("x-amz-target") ?? "").split(".")[1];
    const body = await req.json();
    calls.push(op);
    let out: unknown = {};
    let status = 200;
    if (op === "DescribeTable") {
      out = {
        Table: {
          KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
          AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        },
      };
    } else if (op === "BatchGetItem") {
      out = { Responses: {} };
    } else if (op === "PutItem") {
      await hold(timing.holdWriteMs);
      record(body.TableName, body.Item.id);
    } else if (op === "BatchWriteItem") {
      for (const [table, writes] of Object.entries(body.RequestItems as Record<string, Body[]>)) {
        for (const w of writes) record(table, (w.PutRequest as Body & { Item: Body }).Item.id);
      }
    } else if (op === "TransactWriteItems") {
      for (const t of body.TransactItems as { Put: Body & { Item: Body } }[]) {
        record(t.Put.TableName as string, t.Put.Item.id);
      }
    } else if (op === "ExecuteStatement") {
      record("t", { S: "partiql" });
    } else if (op === "GetRecords" && typeof body?.ShardIterator !== "string") {
      status = 400;
      out = { __type: "com.amazonaws.dynamodb.v20120810#ValidationException" };
    } else if (op === "GetRecords") {
      const [stream, position] = body.ShardIterator.split("|");
      const table = /table\/([^/]+)\//.exec(stream)![1];
      const records = streamOf(table).slice(
        Number(position),
        Number(position) + (body.Limit ?? 1000),
      );
      if (timing.failPolls) {
        status = 400;
        out = { __type: "com.amazonaws.dynamodb.v20120810#ValidationException" };
      } else {
        out = {
          Records: records,
          ...(timing.closed ? {} : {
            NextShardIterator: `${stream}|${Number(position) + records.length}|${calls.length}`,
          }),
        };
      }
      await hold(timing.holdPollMs);
    }
    const text = JSON.stringify(out);
    return new Response(text, {
      status,
      headers: { "content-type": "application/x-amz-json-1.0", "x-amz-crc32": String(crc32(text)) },
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, server, calls, timing };
}

function setup(faults: Partial<Faults> = {}, random = () => 0.5) {
  const dynamo = fakeDynamo();
  let clock = 1_000_000;
  const proxy = createProxy({
    upstream: dynamo.url,
    faults: { ...NO_FAULTS, ...faults },
    random,
    now: () => clock,
    streamTimes: new StreamTimes(),
    idlePolls: new IdlePolls(10_000),
  });
  const send = async (target: string, body: unknown, key = "local") => {
    const response = await proxy.handle(
      new Request("http://proxy/", {
        method: "POST",
        headers: {
          "x-amz-target": target,
          "content-type": "application/x-amz-json-1.0",
          authorization:
            `AWS4-HMAC-SHA256 Credential=${key}/20261129/us-east-1/dynamodb/aws4_request`,
        },
        body: JSON.stringify(body),
      }),
    );
    const text = await response.text();
    assert.equal(response.headers.get("x-amz-crc32"), String(crc32(text)));
    return { status: response.status, ...JSON.parse(text) };
  };
  const write = (op: string, body: Body, key?: string) =>
    send(`DynamoDB_20120810.${op}`, body, key);
  const poll = (iterator: string, key?: string, extra: Body = {}) =>
    send("DynamoDBStreams_20120810.GetRecords", { ShardIterator: iterator, ...extra }, key);
  /** Polls `table` from its start until idle; the iterator an empty answer gave back. */
  const idle = async (table: string, key?: string) => {
    let answer = await poll(`${arn(table)}|0|first`, key);
    while (answer.Records.length > 0) answer = await poll(answer.NextShardIterator, key);
    return answer.NextShardIterator as string;
  };
  const forwarded = () => dynamo.calls.filter((c) => c === "GetRecords").length;
  return {
    dynamo,
    send,
    write,
    poll,
    idle,
    forwarded,
    tick: (ms: number) => (clock += ms),
    close: () => dynamo.server.shutdown(),
  };
}

type Setup = ReturnType<typeof setup>;

/** A test with a proxy and a fake DynamoDB Local of its own, closed however it ends. */
function proxyTest(
  name: string,
  body: (s: Setup) => Promise<void>,
  faults?: Partial<Faults>,
  random?: () => number,
) {
  Deno.test(name, async () => {
    const s = setup(faults, random);
    try {
      await body(s);
    } finally {
      await s.close();
    }
  });
}

const put = (table: string, id: string) => ({ TableName: table, Item: { id: { S: id } } });
const events = (answer: { Records: Body[] }) => answer.Records.map((r) => r.eventName);

proxyTest(
  "idle polls stay off DynamoDB Local until a write or refreshMs; the write is read next",
  async (s) => {
    const it = await s.idle("t");
    const before = s.forwarded();
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(await s.poll(it), { status: 200, Records: [], NextShardIterator: it });
    }
    assert.equal(s.forwarded(), before, "five idle polls answered by the proxy");
    await s.write("PutItem", put("t", "a"));
    assert.deepEqual(events(await s.poll(it)), ["INSERT"]);
    const again = await s.idle("t");
    s.tick(10_000);
    const forwarded = s.forwarded();
    await s.poll(again);
    assert.equal(s.forwarded(), forwarded + 1, "refreshed after refreshMs");
  },
);

proxyTest(
  "a write still being applied when a poll came is read by the poll after its answer",
  async (s) => {
    const it = await s.idle("t");
    s.dynamo.timing.holdWriteMs = 100;
    const writing = s.write("PutItem", put("t", "held"));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const during = await s.poll(it);
    assert.deepEqual(events(during), [], "not applied yet");
    await writing;
    assert.deepEqual(events(await s.poll(during.NextShardIterator)), ["INSERT"]);
  },
);

proxyTest(
  "a write answered while an empty answer was on its way is read by the next poll",
  async (s) => {
    await s.idle("t");
    s.dynamo.timing.holdPollMs = 100;
    const polling = s.poll(`${arn("t")}|0|fresh`);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await s.write("PutItem", put("t", "meanwhile"));
    const answer = await polling;
    assert.deepEqual(events(answer), [], "the answer was made before the write");
    s.dynamo.timing.holdPollMs = 0;
    assert.deepEqual(events(await s.poll(answer.NextShardIterator)), ["INSERT"]);
  },
);

proxyTest(
  "every kind of write is seen: batches over two tables, transactions, PartiQL",
  async (s) => {
    const [t, u] = [await s.idle("t"), await s.idle("u")];
    await s.write("BatchWriteItem", {
      RequestItems: {
        t: [{ PutRequest: { Item: { id: { S: "b1" } } } }],
        u: [{ PutRequest: { Item: { id: { S: "b2" } } } }],
      },
    });
    assert.deepEqual(events(await s.poll(t)), ["INSERT"]);
    assert.deepEqual(events(await s.poll(u)), ["INSERT"]);
    const t2 = await s.idle("t");
    await s.write("TransactWriteItems", { TransactItems: [{ Put: put("t", "x") }] });
    assert.deepEqual(events(await s.poll(t2)), ["INSERT"]);
    const [t3, u3] = [await s.idle("t"), await s.idle("u")];
    await s.write("ExecuteStatement", { Statement: "INSERT INTO t VALUE {'id': 'p'}" });
    const forwarded = s.forwarded();
    assert.deepEqual(events(await s.poll(t3)), ["INSERT"]);
    await s.poll(u3);
    assert.equal(s.forwarded(), forwarded + 2, "a statement counts for every table");
  },
);

// error_rate 0.8, and a random that passes the polls (Streams' requests fail too) and
// picks "fail after forwarding" for the write (errors.ts).
let failing = false;
proxyTest(
  "a write that took effect before its injected error is seen",
  async (s) => {
    const it = await s.idle("t");
    failing = true;
    const answer = await s.write("PutItem", put("t", "failed-but-written"));
    failing = false;
    assert.equal(answer.status, 500);
    assert.deepEqual(events(await s.poll(it)), ["INSERT"]);
  },
  { errorRate: 0.8 },
  () => failing ? 0.7 : 0.99,
);

proxyTest(
  "a GetRecords failed by error_rate is not forwarded: its iterator reads the same records after",
  async (s) => {
    const it = await s.idle("t");
    await s.write("PutItem", put("t", "a"));
    failing = true;
    const failed = await s.poll(it);
    failing = false;
    assert.equal(failed.status, 500);
    assert.match(failed.__type, /#InternalServerError$/);
    assert.deepEqual(events(await s.poll(it)), ["INSERT"], "the same iterator, the record");
  },
  { errorRate: 0.8 },
  () => failing ? 0.7 : 0.99,
);

proxyTest("another database's writes and polls are its own", async (s) => {
  const it = await s.idle("t", "key-a");
  await s.write("PutItem", put("t", "other"), "key-b");
  const forwarded = s.forwarded();
  assert.deepEqual(events(await s.poll(it, "key-a")), [], "key-b's write is not key-a's");
  assert.equal(s.forwarded(), forwarded);
  await s.poll(it, "key-b");
  assert.equal(s.forwarded(), forwarded + 1, "key-a's answer is not given to key-b");
});

proxyTest("only an empty, open, valid answer is given again", async (s) => {
  const it = await s.idle("t");
  let forwarded = s.forwarded();
  await s.poll(it, undefined, { Limit: 0 });
  await s.poll(it, undefined, { Limit: 1001 });
  await s.poll(it, undefined, { Unknown: true });
  const notAnObject = await s.send("DynamoDBStreams_20120810.GetRecords", null);
  assert.equal(notAnObject.status, 400, "a body that is no object goes to DynamoDB Local");
  const notAString = await s.send("DynamoDBStreams_20120810.GetRecords", { ShardIterator: 5 });
  assert.equal(notAString.status, 400, "an iterator that is no string goes to it too");
  assert.equal(s.forwarded(), forwarded + 5, "what DynamoDB would refuse goes to it");
  await s.poll(it, undefined, { Limit: 5 });
  assert.equal(s.forwarded(), forwarded + 5, "a valid Limit is answered here");

  await s.write("PutItem", put("t", "r"));
  const withRecords = await s.poll(it);
  assert.deepEqual(events(withRecords), ["INSERT"]);
  forwarded = s.forwarded();
  await s.poll(it);
  assert.equal(s.forwarded(), forwarded + 1, "an answer with records is not remembered");

  const open = await s.idle("t");
  await s.write("PutItem", put("t", "s"));
  s.dynamo.timing.failPolls = true;
  assert.equal((await s.poll(open)).status, 400);
  s.dynamo.timing.failPolls = false;
  s.dynamo.timing.closed = true;
  const closed = await s.poll(`${arn("t")}|99|end`);
  assert.equal(closed.NextShardIterator, undefined, "a closed shard's end");
  forwarded = s.forwarded();
  await s.poll(`${arn("t")}|99|end`);
  assert.equal(s.forwarded(), forwarded + 1, "nothing to give again");
});

proxyTest(
  "a description is given again until its table is written to, apart per database",
  async (s) => {
    // The proxy reads a table's key schema (a DescribeTable of its own) at its first write.
    await s.write("PutItem", put("t", "a"));
    await s.write("PutItem", put("u", "a"));
    const start = s.dynamo.calls.filter((c) => c === "DescribeTable").length;
    const described = () => s.dynamo.calls.filter((c) => c === "DescribeTable").length - start;
    const describe = (table: string, key?: string) =>
      s.send("DynamoDB_20120810.DescribeTable", { TableName: table }, key);
    const first = await describe("t");
    assert.deepEqual(await describe("t"), first);
    assert.equal(described(), 1, "the second answer was the proxy's");
    await describe("t", "other-key");
    assert.equal(described(), 2, "another database's table is another table");
    await s.write("PutItem", put("u", "b"));
    await describe("t");
    assert.equal(described(), 2, "a write to another table changes nothing");
    await s.write("PutItem", put("t", "b"));
    await describe("t");
    assert.equal(described(), 3, "a write to the table sends its next description on");
    s.tick(10_000);
    await describe("t");
    assert.equal(described(), 4, "so does refreshMs");
  },
);

proxyTest(
  "error_rate fails a description given again as often as one passed on",
  async (s) => {
    const answer = await s.send("DynamoDB_20120810.DescribeTable", { TableName: "t" });
    assert.equal(answer.status, 500);
    assert.match(answer.message, /InternalServerError|injected/i);
  },
  { errorRate: 1 },
);

proxyTest(
  "a GetRecords answer holds at most 1 MB of records; the next iterator follows the last",
  async (s) => {
    const it = await s.idle("t");
    for (let i = 0; i < 5; i++) await s.write("PutItem", put("t", `big-${i}`));
    const first = await s.poll(it);
    // 3 × 300 KB fit in 1 MB (1,048,576 B); a fourth would not.
    assert.deepEqual(first.Records.map((r: Body) => (r.dynamodb as Body).SequenceNumber), [
      "000000000000000000001",
      "000000000000000000002",
      "000000000000000000003",
    ]);
    const second = await s.poll(first.NextShardIterator);
    assert.equal(second.Records.length, 2, "the rest, none lost or repeated");
    assert.equal((second.Records[0].dynamodb as Body).SequenceNumber, "000000000000000000004");
  },
);

Deno.test("recordsWithin: the records that fit, at least one", () => {
  const sized = (n: number) => ({ dynamodb: { SizeBytes: n } });
  assert.equal(recordsWithin([sized(600), sized(400), sized(1)], 1000), 2);
  assert.equal(recordsWithin([sized(2000), sized(1)], 1000), 1, "one too big alone still goes");
  assert.equal(recordsWithin([sized(10), sized(10)], 1000), 2);
  assert.equal(recordsWithin([], 1000), 0);
});

Deno.test("recordsWithin: a page holds at most 1 MB (1,048,576 bytes) of records", () => {
  const sized = (n: number) => ({ dynamodb: { SizeBytes: n } });
  assert.equal(recordsWithin([sized(1_048_575), sized(1)]), 2);
  assert.equal(recordsWithin([sized(1_048_576), sized(1)]), 1);
  assert.equal(recordsWithin([sized(1_048_000), sized(577)]), 1);
});
