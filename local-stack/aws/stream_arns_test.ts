import assert from "node:assert/strict";
import { parseStreamArn, streamOfIterator } from "./stream_arns.ts";

const STREAM =
  "arn:aws:dynamodb:ddblocal:000000000000:table/actions/stream/2026-11-28T12:00:00.000";

Deno.test("stream ARNs and DynamoDB Local's iterators name the table", () => {
  assert.equal(streamOfIterator(`${STREAM}|001|c2hhcmQ=`), STREAM);
  assert.equal(streamOfIterator("opaque"), undefined);
  assert.deepEqual(parseStreamArn(STREAM), {
    table: "actions",
    createdAt: Date.parse("2026-11-28T12:00:00.000Z"),
  });
});
