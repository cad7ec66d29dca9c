import assert from "node:assert/strict";
import { crc32 } from "../../functions-shared/crc32.ts";
import { awsJsonAnswer } from "./json_answer.ts";
import { inwardNumbers, outwardMessage, outwardNumbers, sequenceEdge } from "./sequence_edge.ts";

const TARGET = "DynamoDBStreams_20120810.";
const request = (target: string, body: unknown, path = "/") =>
  new Request(`http://proxy${path}`, {
    method: "POST",
    headers: { "x-amz-target": target },
    body: JSON.stringify(body),
  });

Deno.test("GetRecords' numbers go out as AWS's; item data stays", async () => {
  const seen: string[] = [];
  const edge = sequenceEdge(async (r) => {
    seen.push(await r.text());
    return awsJsonAnswer(200, {
      Records: [{
        dynamodb: {
          SequenceNumber: "000000000000000000004",
          Keys: { SequenceNumber: { S: "000000000000000000004" } },
          NewImage: { n: { N: "000000000000000000004" } },
        },
      }],
      NextShardIterator: "it",
    });
  });
  const answer = await edge(request(`${TARGET}GetRecords`, { ShardIterator: "it" }));
  const text = await answer.text();
  assert.equal(answer.headers.get("x-amz-crc32"), String(crc32(text)));
  const record = JSON.parse(text).Records[0].dynamodb;
  assert.equal(record.SequenceNumber, "1000000000000000000004");
  assert.deepEqual(record.Keys, { SequenceNumber: { S: "000000000000000000004" } });
  assert.deepEqual(record.NewImage, { n: { N: "000000000000000000004" } });
  assert.deepEqual(JSON.parse(seen[0]), { ShardIterator: "it" });
});

Deno.test("DescribeStream's ranges go out as AWS's", () => {
  const out = outwardNumbers({
    StreamDescription: {
      Shards: [{
        ShardId: "shardId-1",
        SequenceNumberRange: {
          StartingSequenceNumber: "000000000000000000001",
          EndingSequenceNumber: "000000000000000000016",
        },
      }],
    },
  }) as { StreamDescription: { Shards: { SequenceNumberRange: unknown }[] } };
  assert.deepEqual(out.StreamDescription.Shards[0].SequenceNumberRange, {
    StartingSequenceNumber: "100000000000000000001",
    EndingSequenceNumber: "10000000000000000000016",
  });
});

Deno.test("GetShardIterator's number comes in as DynamoDB Local's; one never given is refused", async () => {
  const seen: Record<string, unknown>[] = [];
  const edge = sequenceEdge(async (r) => {
    seen.push(await r.json());
    return awsJsonAnswer(200, { ShardIterator: "it" });
  });
  const body = {
    StreamArn: "arn",
    ShardId: "s",
    ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
    SequenceNumber: "1000000000000000000004",
  };
  assert.equal((await edge(request(`${TARGET}GetShardIterator`, body))).status, 200);
  assert.equal(seen[0].SequenceNumber, "000000000000000000004");
  for (const bad of ["000000000000000000004", "100000000000000000004", "4", "x".repeat(21)]) {
    const answer = await edge(
      request(`${TARGET}GetShardIterator`, { ...body, SequenceNumber: bad }),
    );
    assert.equal(answer.status, 400, bad);
    const error = await answer.json();
    assert.match(error.__type, /ValidationException$/);
    assert.match(
      error.message,
      bad.length < 21 ? /length greater than or equal to 21/ : /Invalid SequenceNumber/,
    );
  }
  assert.equal(seen.length, 1, "nothing refused went behind the edge");
});

Deno.test("an error's numbers go out as AWS's", async () => {
  assert.equal(
    outwardMessage("000000000000000000042 of shardId-00000001796426516348-dd2d2658 is trimmed"),
    "10000000000000000000042 of shardId-00000001796426516348-dd2d2658 is trimmed",
  );
  const edge = sequenceEdge(() =>
    Promise.resolve(awsJsonAnswer(400, {
      __type: "x#TrimmedDataAccessException",
      message: "through 000000000000000000005",
    }))
  );
  const answer = await edge(request(`${TARGET}GetShardIterator`, { ShardIteratorType: "LATEST" }));
  assert.equal((await answer.json()).message, "through 1000000000000000000005");
});

Deno.test("the control paths take and give the numbers clients saw", async () => {
  const seen: unknown[] = [];
  const edge = sequenceEdge(async (r) => {
    const body = await r.json();
    seen.push(body);
    return Response.json({ streamArn: "arn", trimmedThrough: body.throughSequenceNumber });
  });
  const trim = (seq: unknown) =>
    edge(request("", { streamArn: "arn", throughSequenceNumber: seq }, "/__local/streams/trim"));
  const answer = await trim("10000000000000000000016");
  assert.deepEqual(seen.at(-1), {
    streamArn: "arn",
    throughSequenceNumber: "000000000000000000016",
  });
  assert.deepEqual(await answer.json(), {
    streamArn: "arn",
    trimmedThrough: "10000000000000000000016",
  });
  assert.deepEqual(await (await trim(null)).json(), { streamArn: "arn", trimmedThrough: null });
  const refused = await trim("000000000000000000016");
  assert.equal(refused.status, 400);
  assert.match((await refused.json()).error, /Invalid SequenceNumber/);
  assert.equal(seen.length, 2);
});

Deno.test("DynamoDB's own requests pass untouched", async () => {
  const original = request("DynamoDB_20120810.PutItem", {
    SequenceNumber: "000000000000000000001",
  });
  const answer = awsJsonAnswer(200, { Attributes: { SequenceNumber: "000000000000000000001" } });
  const edge = sequenceEdge((r) => {
    assert.equal(r, original);
    return Promise.resolve(answer);
  });
  assert.equal(await edge(original), answer);
  assert.deepEqual(inwardNumbers({ a: 1 }), { body: { a: 1 }, changed: false });
});

Deno.test("an answer with no sequence number keeps its bytes", async () => {
  const text = '{"Records": [], "NextShardIterator": "it"}';
  const edge = sequenceEdge(() =>
    Promise.resolve(new Response(text, { headers: { "x-amz-crc32": String(crc32(text)) } }))
  );
  const answer = await edge(request(`${TARGET}GetRecords`, { ShardIterator: "it" }));
  assert.equal(await answer.text(), text);
  assert.equal(answer.headers.get("x-amz-crc32"), String(crc32(text)));
});
