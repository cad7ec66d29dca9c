import assert from "node:assert/strict";
import { awsError, fakeClock, fakeDynamo } from "../../functions-shared/testing_fakes.ts";
import { DESCRIBE_ROUNDS, listShards, readRecords } from "./stream_reader.ts";

// The stream's ARN as the proxy answers it: in the table's region (region_arns.ts).
const ARN = "arn:aws:dynamodb:us-east-2:000000000000:table/t/stream/2026-12-01T00:00:00.000";

Deno.test("a DescribeStream page throttled past the client's retries is asked again after a wait; every page is listed", async () => {
  // Each page throttled once first (DescribeStream past 10 a second: describe_limit.ts).
  let calls = 0;
  const dynamo = fakeDynamo(({ input }) => {
    calls++;
    if (calls % 2 === 1) {
      throw awsError("ThrottlingException", "DescribeStream on t: Rate exceeded");
    }
    return input.ExclusiveStartShardId === undefined
      ? { StreamDescription: { Shards: [{ ShardId: "s1" }], LastEvaluatedShardId: "s1" } }
      : { StreamDescription: { Shards: [{ ShardId: "s2" }] } };
  });
  const clock = fakeClock(0.5);
  const shards = await listShards(dynamo.client, ARN, clock);
  assert.deepEqual(shards.map((s) => s.ShardId), ["s1", "s2"]);
  assert.deepEqual(
    dynamo.sent.map((c) => [c.name, c.input.ExclusiveStartShardId]),
    [
      ["DescribeStreamCommand", undefined],
      ["DescribeStreamCommand", undefined],
      ["DescribeStreamCommand", "s1"],
      ["DescribeStreamCommand", "s1"],
    ],
  );
  // Half of 1 s before each page's second round (random 0.5).
  assert.deepEqual(clock.slept, [500, 500]);
});

Deno.test("a DescribeStream throttled round after round is thrown after the last; any other error at once", async () => {
  assert.equal(DESCRIBE_ROUNDS, 5);
  const throttled = fakeDynamo(() => {
    throw awsError("ThrottlingException", "DescribeStream on t: Rate exceeded");
  });
  const clock = fakeClock(0.5);
  await assert.rejects(listShards(throttled.client, ARN, clock), {
    name: "ThrottlingException",
    message: "DescribeStream on t: Rate exceeded",
  });
  assert.equal(throttled.sent.length, DESCRIBE_ROUNDS);
  // Full jitter of 1 s doubling each round.
  assert.deepEqual(clock.slept, [500, 1000, 2000, 4000]);
  const gone = fakeDynamo(() => {
    throw awsError("ResourceNotFoundException");
  });
  const idle = fakeClock(0.5);
  await assert.rejects(listShards(gone.client, ARN, idle), { name: "ResourceNotFoundException" });
  assert.equal(gone.sent.length, 1);
  assert.deepEqual(idle.slept, []);
});

Deno.test("records reach the function as Lambda hands them: the stream's ARN and its region on each", async () => {
  const dynamo = fakeDynamo(() => ({
    Records: [{
      eventID: "e1",
      eventName: "INSERT",
      eventSource: "aws:dynamodb",
      awsRegion: "us-east-2",
      dynamodb: {
        ApproximateCreationDateTime: new Date(1_800_000_000_000),
        Keys: { id: { S: "a" } },
        SequenceNumber: "1",
      },
    }],
  }));
  const { records, next } = await readRecords(dynamo.client, ARN, "iterator");
  assert.equal(next, undefined);
  assert.equal(records[0].eventSourceARN, ARN);
  assert.equal((records[0] as { awsRegion?: string }).awsRegion, "us-east-2");
  assert.equal(
    (records[0].dynamodb as { ApproximateCreationDateTime?: number }).ApproximateCreationDateTime,
    1_800_000_000,
  );
});
