import assert from "node:assert/strict";
import { crc32 } from "./crc32.ts";
import { NO_FAULTS } from "./faults.ts";
import { IdlePolls } from "./idle_polls.ts";
import { createProxy } from "./proxy.ts";
import { StreamTimes } from "./stream_times.ts";

Deno.test("an empty answer is given again until its table is written to", () => {
  const polls = new IdlePolls(10_000);
  assert.equal(polls.answer("it-1", 0), undefined, "never answered: ask DynamoDB Local");
  polls.answeredEmpty("ns/a", "it-2", polls.writesTo("ns/a"), 0);
  assert.equal(polls.answer("it-2", 100), "it-2");
  assert.equal(polls.answer("it-2", 200), "it-2", "as often as it is asked");
  polls.written(["ns/b"]);
  assert.equal(polls.answer("it-2", 300), "it-2", "another table's write changes nothing");
  polls.written(["ns/a"]);
  assert.equal(polls.answer("it-2", 400), undefined, "its table's write: ask again");
  assert.equal(polls.answer("it-2", 500), undefined, "and forgotten");
});

Deno.test("a write answered while the poll was out sends the next poll to DynamoDB Local", () => {
  const polls = new IdlePolls(10_000);
  const before = polls.writesTo("ns/a");
  polls.written(["ns/a"]); // answered after the poll was sent, maybe after it was read
  polls.answeredEmpty("ns/a", "it-2", before, 0);
  assert.equal(polls.answer("it-2", 1), undefined);
});

Deno.test("a write of unknown tables counts for every table; answers are refreshed", () => {
  const polls = new IdlePolls(1_000);
  polls.answeredEmpty("ns/a", "it-a", polls.writesTo("ns/a"), 0);
  polls.answeredEmpty("ns/b", "it-b", polls.writesTo("ns/b"), 0);
  polls.written([]);
  assert.equal(polls.answer("it-a", 1), undefined);
  assert.equal(polls.answer("it-b", 1), undefined);
  polls.answeredEmpty("ns/a", "it-c", polls.writesTo("ns/a"), 0);
  assert.equal(polls.answer("it-c", 999), "it-c");
  assert.equal(polls.answer("it-c", 1_000), undefined, "refreshMs old: ask again");
});

Deno.test("only the newest iterators are remembered", () => {
  const polls = new IdlePolls(10_000, 2);
  for (const it of ["it-1", "it-2", "it-3"]) polls.answeredEmpty("ns/a", it, 0, 0);
  assert.equal(polls.answer("it-1", 1), undefined);
  assert.equal(polls.answer("it-3", 1), "it-3");
});

const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-11-29T00:00:00.000";

/** DynamoDB Local in small: one table `t` keyed by `id`, its stream as an array. */
function fakeDynamo() {
  const items = new Map<string, unknown>();
  const stream: unknown[] = [];
  const calls: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const op = (req.headers.get("x-amz-target") ?? "").split(".")[1];
    const body = await req.json();
    calls.push(op);
    let out: unknown = {};
    if (op === "DescribeTable") {
      out = { Table: { KeySchema: [{ AttributeName: "id", KeyType: "HASH" }] } };
    } else if (op === "BatchGetItem") {
      out = { Responses: { t: [...items.values()] } };
    } else if (op === "PutItem") {
      const was = items.get(body.Item.id.S);
      items.set(body.Item.id.S, body.Item);
      const seq = String(stream.length + 1).padStart(21, "0");
      stream.push({
        eventName: was ? "MODIFY" : "INSERT",
        dynamodb: { Keys: { id: body.Item.id }, NewImage: body.Item, SequenceNumber: seq },
      });
    } else if (op === "GetRecords") {
      const position = Number(body.ShardIterator.split("|")[1]);
      out = {
        Records: stream.slice(position),
        NextShardIterator: `${ARN}|${stream.length}|next`,
      };
    }
    const text = JSON.stringify(out);
    return new Response(text, {
      headers: { "content-type": "application/x-amz-json-1.0", "x-amz-crc32": String(crc32(text)) },
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, server, calls };
}

Deno.test("through the proxy: idle polls stay off DynamoDB Local, and no record is missed", async () => {
  const dynamo = fakeDynamo();
  let clock = 1_000_000;
  const proxy = createProxy({
    upstream: dynamo.url,
    faults: NO_FAULTS,
    now: () => clock,
    streamTimes: new StreamTimes(),
    idlePolls: new IdlePolls(10_000),
  });
  const send = async (target: string, body: unknown) => {
    const response = await proxy.handle(
      new Request("http://proxy/", {
        method: "POST",
        headers: {
          "x-amz-target": target,
          "content-type": "application/x-amz-json-1.0",
          authorization:
            "AWS4-HMAC-SHA256 Credential=local/20261129/us-east-1/dynamodb/aws4_request",
        },
        body: JSON.stringify(body),
      }),
    );
    const text = await response.text();
    assert.equal(response.headers.get("x-amz-crc32"), String(crc32(text)));
    return JSON.parse(text);
  };
  const poll = (iterator: string) =>
    send("DynamoDBStreams_20120810.GetRecords", { ShardIterator: iterator });
  const polls = () => dynamo.calls.filter((c) => c === "GetRecords").length;
  try {
    let answer = await poll(`${ARN}|0|first`);
    assert.deepEqual(answer, { Records: [], NextShardIterator: `${ARN}|0|next` });
    for (let i = 0; i < 5; i++) {
      answer = await poll(answer.NextShardIterator);
      assert.deepEqual(answer, { Records: [], NextShardIterator: `${ARN}|0|next` });
    }
    assert.equal(polls(), 1, "five idle polls answered by the proxy");

    await send("DynamoDB_20120810.PutItem", { TableName: "t", Item: { id: { S: "a" } } });
    answer = await poll(answer.NextShardIterator);
    assert.equal(polls(), 2, "the write sends the next poll to DynamoDB Local");
    assert.deepEqual(answer.Records.map((r: { eventName: string }) => r.eventName), ["INSERT"]);

    answer = await poll(answer.NextShardIterator);
    answer = await poll(answer.NextShardIterator);
    assert.equal(polls(), 3, "idle again after one empty answer");
    clock += 10_000;
    await poll(answer.NextShardIterator);
    assert.equal(polls(), 4, "refreshed after refreshMs");
  } finally {
    await dynamo.server.shutdown();
  }
});
