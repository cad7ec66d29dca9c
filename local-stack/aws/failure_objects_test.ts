import assert from "node:assert/strict";
import type { StreamFailureMessage } from "./event_source_mapping.ts";
import { failureObject, failureObjectKey } from "./failure_objects.ts";

Deno.test("an S3 failure object's key: mapping, shard, day, then the time and a random part", () => {
  assert.equal(
    failureObjectKey(
      "a1b2c3d4-0000-4000-8000-000000000000",
      "shardId-00000001-abc",
      new Date("2026-12-05T04:07:09.123Z"),
      "r4nd0m",
    ),
    "aws/lambda/a1b2c3d4-0000-4000-8000-000000000000/shardId-00000001-abc/2026/12/05/" +
      "2026-12-05T04.07.09-r4nd0m",
  );
});

Deno.test("an S3 failure object is the message with the batch's event as escaped JSON text", () => {
  const message = { version: "1.0" } as StreamFailureMessage;
  const records = [{ eventID: "1", dynamodb: { SequenceNumber: "100" } }];
  assert.deepEqual(failureObject(message, records), {
    version: "1.0",
    payload: JSON.stringify({ Records: records }),
  });
});
