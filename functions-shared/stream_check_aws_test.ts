import assert from "node:assert/strict";
import { awsStreamReader, latestStreamArn } from "./stream_check_aws.ts";
import { awsError, fakeDynamo } from "./testing_fakes.ts";

const ARN = "arn:aws:dynamodb:us-east-2:123456789012:table/Lead/stream/2026-11-30T00:00:00.000";

Deno.test("a table's stream counts only while it is said to be enabled: a disabled one keeps its LatestStreamArn", async () => {
  for (
    const [table, expected] of [
      [{ LatestStreamArn: ARN, StreamSpecification: { StreamEnabled: true } }, ARN],
      [{ LatestStreamArn: ARN, StreamSpecification: { StreamEnabled: false } }, undefined],
      [{ LatestStreamArn: ARN }, undefined],
      [{}, undefined],
    ] as const
  ) {
    const dynamo = fakeDynamo(() => ({ Table: table }));
    assert.equal(await latestStreamArn(dynamo.client, "Lead"), expected, JSON.stringify(table));
  }
});

Deno.test("a shard expired since it was listed reads as trimmed, as a position past the trim does", async () => {
  for (const name of ["ResourceNotFoundException", "TrimmedDataAccessException"]) {
    const dynamo = fakeDynamo(() => {
      throw awsError(name);
    });
    const reader = awsStreamReader(dynamo.client, ARN);
    assert.equal(await reader.iterator("shardId-1", "oldest"), "trimmed", name);
  }
  const failing = fakeDynamo(() => {
    throw awsError("ThrottlingException");
  });
  await assert.rejects(
    awsStreamReader(failing.client, ARN).iterator("shardId-1", "oldest"),
    { name: "ThrottlingException" },
  );
});

Deno.test("a GetRecords trimmed under its iterator reads as trimmed; any other error stands", async () => {
  const trimmed = fakeDynamo(() => {
    throw awsError("TrimmedDataAccessException");
  });
  assert.equal(await awsStreamReader(trimmed.client, ARN).read("iterator"), "trimmed");
  const expired = fakeDynamo(() => {
    throw awsError("ExpiredIteratorException");
  });
  await assert.rejects(awsStreamReader(expired.client, ARN).read("iterator"), {
    name: "ExpiredIteratorException",
  });
});
