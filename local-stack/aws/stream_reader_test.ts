import assert from "node:assert/strict";
import { awsError, fakeClock, fakeDynamo } from "../../functions-shared/testing_fakes.ts";
import { DESCRIBE_ROUNDS, listShards } from "./stream_reader.ts";

const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-12-01T00:00:00.000";

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
