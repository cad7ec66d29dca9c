import assert from "node:assert/strict";
import type { StreamRecord } from "../lambda/stream_forwarder.ts";
import { batchesOf, EVENT_LIMIT_BYTES } from "./event_source_mapping.ts";

/** A record of about `bytes` bytes of JSON, numbered by its sequence number. */
function record(n: number, bytes = 200): StreamRecord {
  return {
    eventID: `e${n}`,
    eventName: "INSERT",
    dynamodb: {
      SequenceNumber: String(n).padStart(21, "0"),
      NewImage: { id: { S: `k${n}` }, pad: { S: "x".repeat(Math.max(0, bytes - 120)) } },
    },
  } as StreamRecord;
}

const eventBytes = (batch: StreamRecord[]) =>
  new TextEncoder().encode(JSON.stringify({ Records: batch })).length;

Deno.test("batches hold at most batchSize records, in order", () => {
  const records = Array.from({ length: 250 }, (_, i) => record(i));
  const batches = batchesOf(records, 100);
  assert.deepEqual(batches.map((b) => b.length), [100, 100, 50]);
  assert.deepEqual(batches.flat(), records);
});

Deno.test("a batch ends before its event would reach Lambda's 6 MB payload limit", () => {
  // 100 records of about 300 KB: 30 MB, which Lambda never sends in one invocation.
  const records = Array.from({ length: 100 }, (_, i) => record(i, 300_000));
  const batches = batchesOf(records, 100);
  assert.deepEqual(batches.flat(), records, "every record, in order");
  for (const batch of batches) {
    assert.ok(eventBytes(batch) < EVENT_LIMIT_BYTES, `${eventBytes(batch)} bytes`);
  }
  assert.equal(batches[0].length, 20, "as many as fit: 20 of 300 KB");
  assert.ok(
    eventBytes([...batches[0], batches[1][0]]) >= EVENT_LIMIT_BYTES,
    "one more would not have fitted",
  );
});

Deno.test("the limit is counted exactly: the envelope, the records and their commas", () => {
  const records = [record(1), record(2), record(3)];
  const exact = eventBytes(records);
  assert.deepEqual(batchesOf(records, 10, exact + 1).map((b) => b.length), [3]);
  assert.deepEqual(batchesOf(records, 10, exact).map((b) => b.length), [2, 1], "smaller than");
  assert.deepEqual(batchesOf([record(1, 5_000)], 10, 100).map((b) => b.length), [1]);
});
