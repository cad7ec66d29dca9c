import assert from "node:assert/strict";
import { byTargetTable } from "./table_registry.ts";
import { awsError, fakeCpuMeter, fakeDynamo, type SentCommand } from "./testing_fakes.ts";
import { MAX_POINT_READ_PAGES, POINT_READ_CPU_MS, pointRead } from "./point_reads.ts";

const segments = byTargetTable("firespring_segments")!;
const visitors = byTargetTable("firespring_visitors")!;

const item = (id: string, value = "1") => ({ segment_id: { S: id }, value: { N: value } });

Deno.test("pointRead gets a plain table's item consistently, or nothing", async () => {
  const dynamo = fakeDynamo((c: SentCommand) =>
    (c.input.Key as { segment_id: { S: string } }).segment_id.S === "a" ? { Item: item("a") } : {}
  );
  const cpu = fakeCpuMeter(0);
  const d = { dynamo: dynamo.dynamo, cpu };
  assert.deepEqual(await pointRead(d, segments, { segment_id: "a" }), [item("a")]);
  assert.deepEqual(await pointRead(d, segments, { segment_id: "b" }), []);
  // Each read's request is charged on the isolate's meter: no step of it is measured.
  assert.equal(cpu.usedMs(), 2 * POINT_READ_CPU_MS);
  assert.deepEqual(dynamo.sent[0], {
    name: "GetItemCommand",
    input: {
      TableName: "firespring-backdoor-segments-dev",
      Key: { segment_id: { S: "a" } },
      ConsistentRead: true,
    },
  });
});

Deno.test("each attempt of a point read is charged, answered or failed", async () => {
  const answers = [
    { Item: item("a"), $metadata: { attempts: 3 } },
    awsError("ProvisionedThroughputExceededException"),
  ];
  const dynamo = fakeDynamo(() => {
    const answer = answers.shift();
    if (answer instanceof Error) {
      Object.assign(answer, { $metadata: { attempts: 5 } });
      throw answer;
    }
    return answer;
  });
  const cpu = fakeCpuMeter(0);
  const d = { dynamo: dynamo.dynamo, cpu };
  assert.deepEqual(await pointRead(d, segments, { segment_id: "a" }), [item("a")]);
  assert.equal(cpu.usedMs(), 3 * POINT_READ_CPU_MS, "three attempts to an answer");
  await assert.rejects(pointRead(d, segments, { segment_id: "b" }));
  assert.equal(cpu.usedMs(), 8 * POINT_READ_CPU_MS, "and five that failed");
});

Deno.test("pointRead queries every observation of a collapsed key, page by page", async () => {
  const obs = (t: string) => ({ session_id: { S: "v" }, timestamp: { N: t } });
  const dynamo = fakeDynamo((c: SentCommand) =>
    c.input.ExclusiveStartKey === undefined
      ? { Items: [obs("1"), obs("2")], LastEvaluatedKey: obs("2") }
      : { Items: [obs("3")] }
  );
  const cpu = fakeCpuMeter(0);
  const items = await pointRead({ dynamo: dynamo.dynamo, cpu }, visitors, {
    visitor_id: "v",
  });
  assert.deepEqual(items, [obs("1"), obs("2"), obs("3")]);
  assert.equal(dynamo.sent.length, 2);
  assert.equal(cpu.usedMs(), 2 * POINT_READ_CPU_MS, "each Query page charged");
  assert.deepEqual(dynamo.sent[0].input, {
    TableName: "firespring-backdoor-visitors-dev",
    KeyConditionExpression: "#h = :h",
    ExpressionAttributeNames: { "#h": "session_id" },
    ExpressionAttributeValues: { ":h": { S: "v" } },
    ConsistentRead: true,
    ExclusiveStartKey: undefined,
  });
  assert.deepEqual(dynamo.sent[1].input.ExclusiveStartKey, obs("2"));
});

Deno.test("pointRead refuses a collapsed key whose partition passes its page limit, naming the table and the key", async () => {
  const obs = (t: string) => ({ session_id: { S: "v" }, timestamp: { N: t } });
  let page = 0;
  const dynamo = fakeDynamo(() => {
    page++;
    return { Items: [obs(String(page))], LastEvaluatedKey: obs(String(page)) };
  });
  await assert.rejects(
    pointRead({ dynamo: dynamo.dynamo }, visitors, { visitor_id: "v" }, {
      maxPages: MAX_POINT_READ_PAGES,
    }),
    new RegExp(
      `^PartitionTooLarge: firespring-backdoor-visitors-dev: key \\{"visitor_id":"v"\\}: its partition holds more than ${MAX_POINT_READ_PAGES} Query pages`,
    ),
  );
  assert.equal(dynamo.sent.length, MAX_POINT_READ_PAGES, "no page read past the limit");
});
