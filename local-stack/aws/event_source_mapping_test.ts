import assert from "node:assert/strict";
import type { BatchResponse, StreamRecord } from "../../lambda/stream_records.ts";
import { EventSourceMapping, type StreamFailureMessage } from "./event_source_mapping.ts";
import { batchesOf, EVENT_LIMIT_BYTES } from "./mapping_batches.ts";
import { DEPLOYED_MAPPING, mappingSetting } from "./mapping_settings.ts";
import { inProcess } from "./lambda_environments.ts";

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

/** A record written `ageS` seconds before `now` (ApproximateCreationDateTime in seconds). */
function written(n: number, now: number, ageS: number): StreamRecord {
  const r = record(n);
  (r.dynamodb as Record<string, unknown>).ApproximateCreationDateTime = Math.floor(
    (now - ageS * 1000) / 1000,
  );
  return r;
}

/** A mapping with the deployed settings, a fixed clock and `handler`; what it sent where. */
function mappingAt(
  now: () => number,
  handler: (records: StreamRecord[]) => Promise<BatchResponse | void>,
  settings: { maxRetryAttempts?: number; maxRecordAgeS?: number } = {},
) {
  const invoked: string[][] = [];
  const failures: StreamFailureMessage[] = [];
  const mapping = new EventSourceMapping({
    ...DEPLOYED_MAPPING,
    ...settings,
    invoke: inProcess((event) => {
      invoked.push(event.Records.map((r) => r.eventID!));
      return handler(event.Records);
    }),
    retryBaseDelayMs: 1,
    onFailure: (message) => Promise.resolve(void failures.push(message)),
    now,
  });
  return { mapping, invoked, failures };
}

Deno.test("records past the maximum record age go to the on-failure destination, never to the function", async () => {
  const now = Date.UTC(2026, 10, 29, 12);
  // A mapping turned on again after two hours off: three records older than the hour.
  const records = [
    written(1, now, 7_200),
    written(2, now, 5_000),
    written(3, now, 3_601),
    written(4, now, 3_000),
    written(5, now, 10),
  ];
  const { mapping, invoked, failures } = mappingAt(() => now, () => Promise.resolve());
  await mapping.process("arn:stream", "shard-1", records);
  assert.deepEqual(invoked, [["e4", "e5"]]);
  assert.equal(failures.length, 1);
  const [failure] = failures;
  assert.equal(failure.requestContext.condition, "RecordAgeExceeded");
  assert.equal(failure.requestContext.approximateInvokeCount, 0);
  assert.deepEqual(failure.DDBStreamBatchInfo, {
    shardId: "shard-1",
    startSequenceNumber: records[0].dynamodb!.SequenceNumber,
    endSequenceNumber: records[2].dynamodb!.SequenceNumber,
    approximateArrivalOfFirstRecord: new Date(now - 7_200_000).toISOString(),
    approximateArrivalOfLastRecord: new Date(now - 3_601_000).toISOString(),
    batchSize: 3,
    streamArn: "arn:stream",
  });
});

Deno.test("a batch retried past the maximum record age goes to the on-failure destination then", async () => {
  let now = Date.UTC(2026, 10, 29, 12);
  const records = [written(1, now, 0), written(2, now, 0)];
  // Each failed invocation takes 20 minutes of the clock: the records pass their hour
  // on the fourth attempt (retried until then, as deployed: no retry limit).
  const { mapping, invoked, failures } = mappingAt(() => now, () => {
    now += 20 * 60_000;
    return Promise.reject(new Error("the webhook is down"));
  });
  await mapping.process("arn:stream", "shard-1", records);
  // Bisected after the first failure, each half reaches its hour on its own.
  assert.deepEqual(
    failures.map((f) => [f.requestContext.condition, f.DDBStreamBatchInfo.startSequenceNumber]),
    records.map((r) => ["RecordAgeExceeded", r.dynamodb!.SequenceNumber]),
  );
  assert.equal(DEPLOYED_MAPPING.maxRetryAttempts, -1);
  assert.ok(invoked.length < 10, `${invoked.length} invocations`);
});

Deno.test("with no maximum age (-1), old records are still handed to the function", async () => {
  const now = Date.UTC(2026, 10, 29, 12);
  const { mapping, invoked, failures } = mappingAt(() => now, () => Promise.resolve());
  (mapping.config as { maxRecordAgeS: number }).maxRecordAgeS = -1;
  await mapping.process("arn:stream", "shard-1", [written(1, now, 86_000)]);
  assert.deepEqual(invoked, [["e1"]]);
  assert.equal(failures.length, 0);
});

/**
 * Records named `ids`, written just now, through a mapping whose function fails every
 * batch holding the one named "poison", with `maxRetryAttempts`.
 */
async function poisonRun(ids: string[], maxRetryAttempts: number) {
  const now = Date.UTC(2026, 10, 29, 12);
  const records = ids.map((id, i) => {
    const r = written(i, now, 0);
    r.eventID = id;
    return r;
  });
  const run = mappingAt(
    () => now,
    (batch) =>
      batch.some((r) => r.eventID === "poison")
        ? Promise.reject(new Error("boom"))
        : Promise.resolve(),
    { maxRetryAttempts },
  );
  await run.mapping.process("arn:stream", "shard-1", records);
  return run;
}

Deno.test("splitting a failed batch uses up no retry: the bad record alone gets every one", async () => {
  const { invoked, failures } = await poisonRun(["a", "b", "c", "d", "e", "f", "poison", "h"], 10);
  // 8 → 4 → 2 → 1 by halves, then the record alone: its first attempt and 10 retries.
  const alone = invoked.filter((ids) => ids.length === 1 && ids[0] === "poison");
  assert.equal(alone.length, 1 + 10);
  assert.deepEqual(invoked.filter((ids) => !ids.includes("poison")).flat(), [
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "h",
  ]);
  assert.equal(failures.length, 1);
  assert.equal(failures[0].requestContext.condition, "RetryAttemptsExhausted");
  assert.equal(failures[0].requestContext.approximateInvokeCount, 11);
  assert.equal(failures[0].DDBStreamBatchInfo.batchSize, 1);
});

Deno.test("with no retry left, a failed batch is still split: only the record that fails alone is sent on", async () => {
  // "Splitting batches doesn't consume the retry quota": with no retries at all, the
  // batch is halved down to the bad record, which alone reaches the destination.
  const { invoked, failures } = await poisonRun(["a", "b", "poison", "d"], 0);
  assert.deepEqual(invoked, [["a", "b", "poison", "d"], ["a", "b"], ["poison", "d"], ["poison"], [
    "d",
  ]]);
  assert.equal(failures.length, 1);
  assert.equal(failures[0].requestContext.condition, "RetryAttemptsExhausted");
  assert.equal(failures[0].DDBStreamBatchInfo.batchSize, 1);
});

Deno.test("a region's function runs at most its reserved concurrency at once, across shards", async () => {
  const now = Date.UTC(2026, 10, 29, 12);
  let inFlight = 0;
  let most = 0;
  const mostByRegion = new Map<string, number>();
  const inRegion = new Map<string, number>();
  const { mapping, invoked } = mappingAt(() => now, async (batch) => {
    const region = batch[0].eventSourceARN!.split(":")[3];
    inRegion.set(region, (inRegion.get(region) ?? 0) + 1);
    mostByRegion.set(region, Math.max(mostByRegion.get(region) ?? 0, inRegion.get(region)!));
    most = Math.max(most, ++inFlight);
    await new Promise((resolve) => setTimeout(resolve, 5));
    inFlight--;
    inRegion.set(region, inRegion.get(region)! - 1);
  });
  (mapping.config as { reservedConcurrency?: number }).reservedConcurrency = 2;
  const shard = (region: string, table: string, n: number) => {
    const arn = `arn:aws:dynamodb:${region}:000000000000:table/${table}/stream/2026`;
    const records = Array.from({ length: 30 }, (_, i) => {
      const r = written(n * 100 + i, now, 0);
      r.eventSourceARN = arn;
      return r;
    });
    return mapping.process(arn, `shard-${n}`, records);
  };
  await Promise.all([
    ...[1, 2, 3, 4].map((n) => shard("us-east-1", `t${n}`, n)),
    shard("us-east-2", "leads", 5),
  ]);
  assert.equal(invoked.flat().length, 150, "every record delivered");
  assert.equal(mostByRegion.get("us-east-1"), 2, "four shards share us-east-1's two places");
  assert.equal(mostByRegion.get("us-east-2"), 1);
  assert.equal(most, 3);
});

Deno.test("mapping settings are whole numbers within AWS's ranges, or a line naming them", () => {
  const age = { min: 60, max: 604_800, allowNone: true };
  assert.equal(mappingSetting("STREAM_MAX_RECORD_AGE_S", undefined, 3600, age), 3600);
  assert.equal(mappingSetting("STREAM_MAX_RECORD_AGE_S", "-1", 3600, age), -1);
  assert.equal(mappingSetting("STREAM_MAX_RECORD_AGE_S", "604800", 3600, age), 604_800);
  for (const text of ["abc", "", "59", "604801", "1.5", "-2"]) {
    assert.throws(() => mappingSetting("STREAM_MAX_RECORD_AGE_S", text, 3600, age), {
      message:
        `STREAM_MAX_RECORD_AGE_S must be a whole number from 60 to 604800 or -1 (no limit), as AWS allows, not ${
          JSON.stringify(text)
        }`,
    });
  }
  assert.throws(() => mappingSetting("STREAM_BATCH_SIZE", "-1", 10, { min: 1, max: 10_000 }), {
    message: /STREAM_BATCH_SIZE must be a whole number from 1 to 10000, as AWS allows, not "-1"/,
  });
});

Deno.test("with no age limit, records are retried until the stream trims them at 24 h, then lost", async () => {
  let now = Date.parse("2026-11-28T12:00:00Z");
  const start = now;
  const { mapping, invoked, failures } = mappingAt(() => now, () => {
    now += 6 * 60 * 60 * 1000; // each failed try takes the clock 6 h on
    return Promise.reject(new Error("the webhook is down"));
  }, { maxRetryAttempts: -1, maxRecordAgeS: -1 });
  await mapping.process("arn:s", "shard-1", [written(1, start, 1)]);
  assert.equal(invoked.length, 4, "tried at 0, 6, 12 and 18 h; at 24 h the record is gone");
  assert.deepEqual(
    failures,
    [],
    "nothing reaches the on-failure destination: the stream trimmed it",
  );
});

Deno.test("an age limit past the stream's 24 h retention meets the trim first", async () => {
  let now = Date.parse("2026-11-28T12:00:00Z");
  const start = now;
  const { mapping, invoked, failures } = mappingAt(() => now, () => {
    now += 6 * 60 * 60 * 1000;
    return Promise.reject(new Error("the webhook is down"));
  }, { maxRetryAttempts: -1, maxRecordAgeS: 604_800 });
  await mapping.process("arn:s", "shard-1", [written(1, start, 1)]);
  assert.equal(invoked.length, 4, "lost at 24 h, not retried for 7 days");
  assert.deepEqual(failures, []);
});

Deno.test("an event of exactly 6,291,456 bytes is too big for one invocation; a byte less fits", () => {
  assert.equal(EVENT_LIMIT_BYTES, 6_291_456);
  const first = record(1, 3_000_000);
  const sized = (total: number) => {
    const second = record(2, 3_000_000);
    const pad = (second.dynamodb as { NewImage: { pad: { S: string } } }).NewImage.pad;
    pad.S += "x".repeat(total - eventBytes([first, second]));
    assert.equal(eventBytes([first, second]), total);
    return [first, second];
  };
  assert.deepEqual(batchesOf(sized(6_291_456), 10).map((b) => b.length), [1, 1]);
  assert.deepEqual(batchesOf(sized(6_291_455), 10).map((b) => b.length), [2]);
});

Deno.test("a partial failure naming no record of the batch fails the whole batch", async () => {
  const now = Date.UTC(2026, 10, 29, 12);
  const records = [0, 1, 2].map((i) => written(i, now, 0));
  let calls = 0;
  const { mapping, invoked, failures } = mappingAt(
    () => now,
    () =>
      Promise.resolve({
        batchItemFailures: calls++ === 0 ? [{ itemIdentifier: "nope" }] : [],
      }),
  );
  await mapping.process("arn:stream", "shard-1", records);
  assert.deepEqual(invoked, [["e0", "e1", "e2"], ["e0", "e1", "e2"]]);
  assert.equal(failures.length, 0);
});

Deno.test("a partial failure retries from the lowest failed record on", async () => {
  const now = Date.UTC(2026, 10, 29, 12);
  const records = [0, 1, 2, 3, 4].map((i) => written(i, now, 0));
  const seq = (i: number) => records[i].dynamodb!.SequenceNumber!;
  let calls = 0;
  const { mapping, invoked } = mappingAt(
    () => now,
    () =>
      Promise.resolve({
        batchItemFailures: calls++ === 0
          ? [{ itemIdentifier: seq(3) }, { itemIdentifier: seq(1) }]
          : [],
      }),
  );
  await mapping.process("arn:stream", "shard-1", records);
  assert.deepEqual(invoked, [["e0", "e1", "e2", "e3", "e4"], ["e1", "e2", "e3", "e4"]]);
});
