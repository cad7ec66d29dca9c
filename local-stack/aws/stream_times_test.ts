import assert from "node:assert/strict";
import type { WireStreamRecord } from "./record_images.ts";
import { StreamTimes } from "./stream_times.ts";

const STREAM =
  "arn:aws:dynamodb:ddblocal:000000000000:table/actions/stream/2026-11-28T12:00:00.000";
const T0 = Date.parse("2026-11-28T12:00:10.000Z");
const MINUTE = Math.floor(T0 / 60_000) * 60;
const key = { id: { S: "a" } };
const image = (v: string) => ({ id: { S: "a" }, v: { S: v } });

function record(
  seq: number,
  eventName: string,
  old: ReturnType<typeof image> | undefined,
  now: ReturnType<typeof image> | undefined,
  minute = MINUTE,
): WireStreamRecord {
  return {
    eventName,
    dynamodb: {
      ApproximateCreationDateTime: minute,
      Keys: key,
      ...(old ? { OldImage: old } : {}),
      ...(now ? { NewImage: now } : {}),
      SequenceNumber: String(seq).padStart(21, "0"),
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  };
}

const seconds = (records: WireStreamRecord[]) =>
  records.map((r) => r.dynamodb!.ApproximateCreationDateTime);

Deno.test("each record gets the second its write was answered in, matched by key and images", () => {
  const times = new StreamTimes();
  times.recordWrite("ns/actions", key, null, image("1"), T0 + 300, T0 + 320);
  times.recordWrite("ns/actions", key, image("1"), image("2"), T0 + 2_700, T0 + 2_720);
  times.recordWrite("ns/actions", key, image("2"), null, T0 + 5_100, T0 + 5_110);
  const records = [
    record(1, "INSERT", undefined, image("1")),
    record(2, "MODIFY", image("1"), image("2")),
    record(3, "REMOVE", image("2"), undefined),
  ];
  assert.deepEqual(times.timeRecords("ns", STREAM, records), { matched: 3, unmatched: 0 });
  const s = Math.floor(T0 / 1000);
  assert.deepEqual(seconds(records), [s, s + 2, s + 5]);
});

Deno.test("a write DynamoDB Local applied seconds after it was forwarded gets its answer's second, never the earlier one", () => {
  // On a loaded machine: forwarded at T0 + 0.3 s, answered 2.5 s later. A consistent Scan
  // sent at T0 + 2 s may still have read the item as it was before: the record must not
  // claim a time before that Scan (the ordering guard would let the Scan's image win).
  const times = new StreamTimes();
  times.recordWrite("ns/actions", key, image("1"), null, T0 + 300, T0 + 2_800);
  const records = [record(4, "REMOVE", image("1"), undefined)];
  times.timeRecords("ns", STREAM, records);
  assert.deepEqual(seconds(records), [Math.floor(T0 / 1000) + 2]);
  assert.equal(times.counts().straddled, 1);
});

Deno.test("a write that changes nothing is not noted: the next record matches the next change", () => {
  const times = new StreamTimes();
  times.recordWrite("ns/actions", key, image("1"), image("1"), T0, T0 + 10);
  times.recordWrite("ns/actions", key, image("1"), image("2"), T0 + 3_000, T0 + 3_010);
  assert.equal(times.size(), 1);
  const records = [record(7, "MODIFY", image("1"), image("2"))];
  times.timeRecords("ns", STREAM, records);
  assert.deepEqual(seconds(records), [Math.floor(T0 / 1000) + 3]);
});

Deno.test("a record no single write explains keeps DynamoDB Local's minute and is counted", () => {
  const times = new StreamTimes();
  // Two writes with the same images, and a record read on its own: either could be its write.
  times.recordWrite("ns/actions", key, image("1"), image("2"), T0, T0 + 10);
  times.recordWrite("ns/actions", key, image("2"), image("1"), T0 + 1_000, T0 + 1_010);
  times.recordWrite("ns/actions", key, image("1"), image("2"), T0 + 2_000, T0 + 2_010);
  const alone = [record(9, "MODIFY", image("1"), image("2"))];
  times.timeRecords("ns", STREAM, alone);
  assert.deepEqual(seconds(alone), [MINUTE]);
  // No write of that key or table; images no write produced; another namespace.
  const others = [
    { ...record(10, "INSERT", undefined, image("9")) },
    record(11, "MODIFY", image("7"), image("8")),
  ];
  times.timeRecords("ns", STREAM, others);
  times.timeRecords("other", STREAM, [record(12, "MODIFY", image("2"), image("1"))]);
  assert.deepEqual(seconds(others), [MINUTE, MINUTE]);
  const { recentUnmatched, ...counts } = times.counts();
  assert.deepEqual(counts, { matched: 0, unmatched: 4, straddled: 0 });
  assert.equal(recentUnmatched.length, 4);
  assert.match(recentUnmatched[3], /^other\/actions \{"id":\{"S":"a"\}\} MODIFY 0+12$/);
  // Counted by a part of their keys: a test's own, whatever else the poller read.
  assert.equal(times.counts('"S":"a"').unmatchedWithKey, 4);
  assert.equal(times.counts('"S":"b"').unmatchedWithKey, 0);
  assert.equal(times.counts().unmatchedWithKey, undefined);
});

Deno.test("read in order, repeated images are told apart by the records before them", () => {
  const times = new StreamTimes();
  times.recordWrite("ns/actions", key, image("1"), image("2"), T0, T0 + 10);
  times.recordWrite("ns/actions", key, image("2"), image("1"), T0 + 1_000, T0 + 1_010);
  times.recordWrite("ns/actions", key, image("1"), image("2"), T0 + 2_000, T0 + 2_010);
  const all = [
    record(1, "MODIFY", image("1"), image("2")),
    record(2, "MODIFY", image("2"), image("1")),
    record(3, "MODIFY", image("1"), image("2")),
  ];
  times.timeRecords("ns", STREAM, all);
  const s = Math.floor(T0 / 1000);
  assert.deepEqual(seconds(all), [s, s + 1, s + 2]);
  // Read again (a checkpoint re-read, a replay), one at a time: the same seconds.
  const again = [
    record(3, "MODIFY", image("1"), image("2")),
    record(1, "MODIFY", image("1"), image("2")),
  ];
  times.timeRecords("ns", STREAM, again);
  assert.deepEqual(seconds(again), [s + 2, s]);
});

Deno.test("a record of a stream created after the write, or of a minute before it, is not matched", () => {
  const times = new StreamTimes();
  times.recordWrite("ns/actions", key, null, image("1"), T0, T0 + 10);
  const later = STREAM.replace("12:00:00.000", "12:00:30.000");
  const records = [record(1, "INSERT", undefined, image("1"))];
  times.timeRecords("ns", later, records);
  const early = [record(1, "INSERT", undefined, image("1"), MINUTE - 120)];
  times.timeRecords("ns", STREAM, early);
  assert.deepEqual([...seconds(records), ...seconds(early)], [MINUTE, MINUTE - 120]);
});

Deno.test("writes wait out the edge of a second; the margin follows the slowest recent write", () => {
  const times = new StreamTimes();
  assert.equal(times.edgeMarginMs(), 20);
  assert.equal(times.delayBeforeForwarding(T0 + 500), 0);
  assert.equal(times.delayBeforeForwarding(T0 + 990), 10);
  times.recordWrite("ns/actions", key, null, image("1"), T0, T0 + 60);
  assert.equal(times.edgeMarginMs(), 120);
  assert.equal(times.delayBeforeForwarding(T0 + 900), 100);
});

Deno.test("sweep forgets old writes", () => {
  const times = new StreamTimes(60_000);
  times.recordWrite("ns/actions", key, null, image("1"), T0, T0 + 10);
  times.sweep(T0 + 30_000);
  assert.equal(times.size(), 1);
  times.sweep(T0 + 61_000);
  assert.equal(times.size(), 0);
});

Deno.test("a GetRecords answer waits for the writes in flight when it came, not for later ones", async () => {
  const times = new StreamTimes();
  const first = times.inFlight();
  let settled = false;
  const waiting = times.settled().then(() => settled = true);
  const later = times.inFlight();
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(settled, false);
  // The write is noted, then its flight ends: the record read meanwhile now matches.
  times.recordWrite("ns/actions", key, null, image("1"), T0, T0 + 10);
  first();
  await waiting;
  assert.equal(settled, true);
  const records = [record(1, "INSERT", undefined, image("1"))];
  times.timeRecords("ns", STREAM, records);
  assert.deepEqual(seconds(records), [Math.floor(T0 / 1000)]);
  later();
  await times.settled();
});
