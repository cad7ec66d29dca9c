import assert from "node:assert/strict";
import { StreamTrim, TRIM_PATH } from "./stream_trim.ts";

const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-11-28T00:00:00.000";
const URL_ = "http://127.0.0.1:8000/";

function streamsCall(operation: string, body: unknown): Request {
  return new Request(URL_, {
    method: "POST",
    headers: { "x-amz-target": `DynamoDBStreams_20120810.${operation}` },
    body: JSON.stringify(body),
  });
}

/** DynamoDB Local behind the hook: answers GetRecords with records 5, 6 and 7. */
function upstream(seen: string[]) {
  return async (request: Request) => {
    seen.push(await request.text());
    return Response.json({
      Records: ["5", "6", "7"].map((seq) => ({ dynamodb: { SequenceNumber: seq } })),
      NextShardIterator: `${ARN}|001|next`,
    });
  };
}

async function trimThrough(trim: StreamTrim, seq: string | null): Promise<Response> {
  return await trim.handle(
    new Request(`${URL_}${TRIM_PATH.slice(1)}`, {
      method: "POST",
      body: JSON.stringify({ streamArn: ARN, throughSequenceNumber: seq }),
    }),
    () => Promise.reject(new Error("the control path is not forwarded")),
  );
}

/** A TRIM_HORIZON iterator of the stream's shard, taken through the hook. */
async function trimHorizon(trim: StreamTrim): Promise<string> {
  const horizon = await trim.handle(
    streamsCall("GetShardIterator", {
      StreamArn: ARN,
      ShardId: "shardId-1",
      ShardIteratorType: "TRIM_HORIZON",
    }),
    () => Promise.resolve(Response.json({ ShardIterator: `${ARN}|001|horizon` })),
  );
  return (await horizon.json()).ShardIterator;
}

Deno.test("untrimmed, every request passes through untouched", async () => {
  const trim = new StreamTrim();
  const seen: string[] = [];
  const request = streamsCall("GetRecords", { ShardIterator: `${ARN}|001|x` });
  const response = await trim.handle(request, upstream(seen));
  assert.equal((await response.json()).Records.length, 3);
});

Deno.test("a trim horizon taken after the trim starts after it, with a right checksum", async () => {
  const trim = new StreamTrim();
  assert.equal((await trimThrough(trim, "6")).status, 200);
  const ShardIterator = await trimHorizon(trim);
  const seqs = async (response: Response) => {
    const text = await response.text();
    assert.ok(response.headers.get("x-amz-crc32"));
    return JSON.parse(text).Records.map((r: { dynamodb: { SequenceNumber: string } }) =>
      r.dynamodb.SequenceNumber
    );
  };
  const read = (iterator: string) =>
    trim.handle(streamsCall("GetRecords", { ShardIterator: iterator }), upstream([]));
  assert.deepEqual(await seqs(await read(ShardIterator)), ["7"]);
  // The iterator that follows from it starts after the trim too.
  assert.deepEqual(await seqs(await read(`${ARN}|001|next`)), ["7"]);
  const other = await trim.handle(
    streamsCall("GetRecords", { ShardIterator: "arn:other|001|x" }),
    upstream([]),
  );
  assert.equal((await other.json()).Records.length, 3, "other streams are not trimmed");
});

Deno.test("an iterator taken before the trim, still at a trimmed record, answers TrimmedDataAccessException", async () => {
  const trim = new StreamTrim();
  assert.equal((await trimThrough(trim, "6")).status, 200);
  const response = await trim.handle(
    streamsCall("GetRecords", { ShardIterator: `${ARN}|001|taken-before` }),
    upstream([]),
  );
  assert.equal(response.status, 400);
  const error = await response.json();
  assert.match(error.__type, /#TrimmedDataAccessException$/);
  assert.match(error.message, /the iterator is at 5, at or before the trim point 6/);
});

Deno.test("an iterator at or after a trimmed record answers TrimmedDataAccessException", async () => {
  const trim = new StreamTrim();
  await trimThrough(trim, "000000000000000000006");
  const ask = (type: string, seq?: string) =>
    trim.handle(
      streamsCall("GetShardIterator", {
        StreamArn: ARN,
        ShardId: "shardId-1",
        ShardIteratorType: type,
        SequenceNumber: seq,
      }),
      () => Promise.resolve(Response.json({ ShardIterator: "it" })),
    );
  const refused = await ask("AFTER_SEQUENCE_NUMBER", "000000000000000000006");
  assert.equal(refused.status, 400);
  const error = await refused.json();
  assert.match(error.__type, /#TrimmedDataAccessException$/);
  assert.match(error.message, /000000000000000000006 of shardId-1 is at or before the trim point/);
  assert.equal((await ask("AT_SEQUENCE_NUMBER", "7")).status, 200);
  assert.equal((await ask("TRIM_HORIZON")).status, 200);
  await trimThrough(trim, null);
  assert.equal((await ask("AT_SEQUENCE_NUMBER", "5")).status, 200, "untrimmed again");
});

Deno.test("the control path refuses a bad request and says why", async () => {
  const trim = new StreamTrim();
  const bad = await trimThrough(trim, "6e3");
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /throughSequenceNumber must be a sequence number/);
});

Deno.test("trimming another stream leaves this one's trim horizon as it was", async () => {
  const trim = new StreamTrim();
  await trimThrough(trim, "6");
  const ShardIterator = await trimHorizon(trim);
  trim.trim("arn:aws:dynamodb:ddblocal:000000000000:table/u/stream/2026", "3");
  const response = await trim.handle(
    streamsCall("GetRecords", { ShardIterator }),
    upstream([]),
  );
  assert.equal(response.status, 200);
  assert.equal((await response.json()).Records.length, 1);
});
