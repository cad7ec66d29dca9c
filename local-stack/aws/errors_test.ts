import assert from "node:assert/strict";
import { decideError, internalServerError } from "./errors.ts";
import { seededRandom } from "./history.ts";

function tally(target: string, rate: number, n = 10_000) {
  const random = seededRandom(42);
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const d = decideError(target, rate, random);
    counts[d] = (counts[d] ?? 0) + 1;
  }
  return counts;
}

Deno.test("no error rate, no errors; no other service's", () => {
  assert.deepEqual(tally("DynamoDB_20120810.GetItem", 0), { none: 10_000 });
  assert.deepEqual(tally("DynamoDBStreams_20120810.GetRecords", 0), { none: 10_000 });
  assert.deepEqual(tally("AmazonS3.GetObject", 0.5), { none: 10_000 });
});

Deno.test("DynamoDB Streams' operations fail as often, always before forwarding", () => {
  for (const op of ["GetRecords", "GetShardIterator", "DescribeStream", "ListStreams"]) {
    const counts = tally(`DynamoDBStreams_20120810.${op}`, 0.1);
    assert.equal(counts["fail after forwarding"], undefined, op);
    assert.ok(
      counts["fail before forwarding"] > 800 && counts["fail before forwarding"] < 1200,
      op,
    );
  }
});

Deno.test("about that share of reads fail, always before forwarding", () => {
  const counts = tally("DynamoDB_20120810.Scan", 0.1);
  assert.equal(counts["fail after forwarding"], undefined);
  assert.ok(counts["fail before forwarding"] > 800 && counts["fail before forwarding"] < 1200);
});

Deno.test("failed writes are split between before and after forwarding", () => {
  const counts = tally("DynamoDB_20120810.PutItem", 0.2);
  const before = counts["fail before forwarding"];
  const after = counts["fail after forwarding"];
  assert.ok(before + after > 1700 && before + after < 2300, JSON.stringify(counts));
  assert.ok(before > 800 && after > 800, JSON.stringify(counts));
});

Deno.test("the error is AWS's InternalServerError and names the operation and table", () => {
  const body = JSON.parse(internalServerError("Scan", "firespring-backdoor-actions-dev"));
  assert.equal(body.__type, "com.amazonaws.dynamodb.v20120810#InternalServerError");
  assert.match(body.message, /Scan on table firespring-backdoor-actions-dev/);
});

Deno.test("every write, transactions included, may fail after it took effect", () => {
  for (
    const op of ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"]
  ) {
    const counts = tally(`DynamoDB_20120810.${op}`, 0.2);
    assert.ok(counts["fail after forwarding"] > 800, `${op}: ${JSON.stringify(counts)}`);
  }
});

Deno.test("an export or a PITR change may fail after it took effect; describing one never does", () => {
  for (const op of ["ExportTableToPointInTime", "UpdateContinuousBackups"]) {
    const counts = tally(`DynamoDB_20120810.${op}`, 0.2);
    assert.ok(counts["fail after forwarding"] > 800, `${op}: ${JSON.stringify(counts)}`);
  }
  for (const op of ["DescribeExport", "DescribeContinuousBackups", "ListExports"]) {
    assert.equal(tally(`DynamoDB_20120810.${op}`, 0.2)["fail after forwarding"], undefined, op);
  }
});
