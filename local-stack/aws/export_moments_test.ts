import assert from "node:assert/strict";
import type { Item } from "./capacity.ts";
import {
  EXPORT_WINDOW_MS,
  exportItems,
  exportMoment,
  RECENT_WRITES_MS,
  windowStart,
} from "./export_moments.ts";
import { History, seededRandom } from "./history.ts";

/** A whole minute (ms since the epoch). */
const T0 = 1_800_000_000_000;

Deno.test("the window starts a minute before the export time's minute: 60 to 120 s before it", () => {
  assert.equal(T0 % 60_000, 0);
  assert.equal(windowStart(T0), T0 - 60_000);
  assert.equal(windowStart(T0 + 30_000), T0 - 60_000, "at :30, 90 s before");
  assert.equal(windowStart(T0 + 59_999), T0 - 60_000, "at :59.999, almost 120 s before");
  assert.equal(windowStart(T0 + 60_000), T0);
  assert.equal(windowStart(T0 - 1), T0 - 120_000);
  assert.equal(exportMoment(T0 + 45_000, T0 + 47_000, () => 0), T0 - 60_000);
});

Deno.test("the recent writes reach back to the window's start from a read a minute late", () => {
  // The earliest start, less than 120 s before the export time; the latest moment drawn,
  // a minute after it; and a minute's margin for an export read later than that.
  const exportTime = T0 + 59_999;
  const lateRead = exportTime + EXPORT_WINDOW_MS + 60_000;
  assert.ok(lateRead - RECENT_WRITES_MS <= windowStart(exportTime));
});

Deno.test("a moment lies from the window's start to when its items are read", () => {
  assert.equal(EXPORT_WINDOW_MS, 60_000);
  assert.equal(exportMoment(T0, T0 + 2_000, () => 0), T0 - 60_000);
  assert.equal(exportMoment(T0, T0 + 2_000, () => 0.5), T0 - 29_000);
  assert.ok(exportMoment(T0, T0 + 2_000, () => 0.999_999) < T0 + 2_000);
  // Read later than a minute after the export time: no moment past that minute (AWS).
  assert.equal(exportMoment(T0, T0 + 600_000, () => 0.5), T0);
  const random = seededRandom(5);
  for (let i = 0; i < 1000; i++) {
    const moment = exportMoment(T0, T0 + 2_000, random);
    assert.ok(moment >= T0 - 60_000 && moment < T0 + 2_000, String(moment));
  }
});

const item = (pk: string, sk: number, v: number): Item => ({
  pk: { S: pk },
  sk: { N: String(sk) },
  v: { N: String(v) },
});

/** The read of table `s/t` (key pk, sk) at T0 + 2 s, its recent writes in `history`. */
const read = (scanned: Item[], history: History | undefined, random = () => 0) => ({
  scanned,
  table: "s/t",
  keyNames: ["pk", "sk"],
  exportTime: T0,
  readAt: T0 + 2_000,
  versions: history,
  random,
});

Deno.test("without versions, the export is the Scan's items", () => {
  const scanned = [item("a", 1, 1), item("b", 1, 1)];
  assert.deepEqual(exportItems(read(scanned, undefined)), scanned);
});

Deno.test("each written key is as at its moment; the Scan's order is kept, deleted keys after", () => {
  const history = new History(180_000);
  // Keys as a request names them: attributes in another order than the items'.
  const key = (pk: string) => ({ sk: { N: "1" }, pk: { S: pk } });
  history.record("s/t", key("a"), item("a", 1, 1), item("a", 1, 2), T0 - 30_000);
  history.record("s/t", key("gone"), item("gone", 1, 1), null, T0 - 30_000);
  history.record("s/t", key("new"), null, item("new", 1, 1), T0 - 30_000);
  history.record("other/t", key("quiet"), null, item("quiet", 1, 9), T0 - 30_000);
  const scanned = [item("new", 1, 1), item("quiet", 1, 1), item("a", 1, 2)];
  // Random 0: a minute before the export time, before every change.
  assert.deepEqual(exportItems(read(scanned, history)), [
    item("quiet", 1, 1),
    item("a", 1, 1),
    item("gone", 1, 1),
  ]);
  // Close to 1: when the items were read, after every change: the Scan's items.
  assert.deepEqual(exportItems(read(scanned, history, () => 0.999)), scanned);
});

Deno.test("a key's moment is its own: one export may mix old and new images", () => {
  const history = new History(180_000);
  const scanned: Item[] = [];
  for (let i = 0; i < 20; i++) {
    history.record(
      "s/t",
      { pk: { S: `k${i}` }, sk: { N: "1" } },
      item(`k${i}`, 1, 1),
      item(`k${i}`, 1, 2),
      T0 - 30_000,
    );
    scanned.push(item(`k${i}`, 1, 2));
  }
  const versions = new Set(
    exportItems(read(scanned, history, seededRandom(3))).map((i) => i.v.N),
  );
  assert.deepEqual(versions, new Set(["1", "2"]));
});
