import assert from "node:assert/strict";
import {
  endedIterator,
  iteratorPosition,
  iteratorShard,
  unwrapIterator,
  wrapIterator,
} from "./shard_iterators.ts";

const REAL = "shardId-00000001796108950137-32f09a4a";
const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-12-01T07:09:10.119";

Deno.test("iterators: wrapped, ended, and DynamoDB Local's own position", () => {
  const real = `${ARN}|001|${btoa(`${REAL}|000000000000000000010|000000000000000001796109028213`)}`;
  assert.equal(iteratorPosition(real), "000000000000000000010");
  assert.equal(iteratorShard(real), REAL);
  assert.deepEqual(unwrapIterator(wrapIterator(real, "shardId-x")), {
    real,
    shardId: "shardId-x",
  });
  assert.deepEqual(unwrapIterator(endedIterator(ARN, "shardId-y", 1_000)), {
    ended: true,
    issuedAt: 1_000,
    shardId: "shardId-y",
  });
  assert.equal(unwrapIterator(real), undefined);
  assert.equal(iteratorPosition(`${ARN}|001|not base64!`), undefined);
});
