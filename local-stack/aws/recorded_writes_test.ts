import assert from "node:assert/strict";
import type { Item } from "./capacity.ts";
import { imageId } from "./current_images.ts";
import { History } from "./history.ts";
import { KeyLocks } from "./key_locks.ts";
import { sendRecorded, type WriteRecording } from "./recorded_writes.ts";
import { StreamTimes } from "./stream_times.ts";

const key = { id: { S: "a" } };
const written = [{ table: "t", key }];

/** A fake table of one key: its images as read, and writes that set it. */
function fakeTable() {
  let current: Item | null = null;
  const reads: string[] = [];
  const images = (keys: { table: string; key: Item }[]) => {
    reads.push(keys.map((k) => imageId(k.table, k.key)).join());
    return Promise.resolve(new Map(keys.map((k) => [imageId(k.table, k.key), current])));
  };
  const writing = (image: Item | null, status = 200) => () => {
    if (status === 200) current = image;
    return Promise.resolve(new Response("{}", { status }));
  };
  return { images, writing, reads };
}

const recording = (streamTimes?: StreamTimes): WriteRecording => ({
  locks: new KeyLocks(),
  history: new History(60_000, () => 1),
  recentWrites: new History(180_000),
  streamTimes,
  now: () => 1_000,
});

Deno.test("sendRecorded: a write's images before and after go into the history", async () => {
  const deps = recording();
  const table = fakeTable();
  const image = { ...key, v: { N: "1" } };
  const { response, text } = await sendRecorded(deps, {
    scope: "s",
    written,
    stale: true,
    images: table.images,
    send: table.writing(image),
  });
  assert.equal(response.status, 200);
  assert.equal(text, "{}");
  assert.equal(table.reads.length, 2);
  assert.equal(deps.history.has("s/t", key), true);
  // The oldest moment of the window (random 1) sees the image before the write: none.
  assert.equal(deps.history.stale("s/t", key, image, 1_000), null);
});

Deno.test("sendRecorded: a refused write changes nothing, so no image is read after it", async () => {
  const deps = recording();
  const table = fakeTable();
  const { response } = await sendRecorded(deps, {
    scope: "s",
    written,
    stale: true,
    images: table.images,
    send: table.writing(key, 400),
  });
  assert.equal(response.status, 400);
  assert.equal(table.reads.length, 1);
  assert.equal(deps.history.has("s/t", key), false);
});

Deno.test("sendRecorded: no keys written, nothing read or noted", async () => {
  const deps = recording(new StreamTimes());
  const table = fakeTable();
  await sendRecorded(deps, {
    scope: "s",
    written: [],
    stale: true,
    images: table.images,
    send: table.writing(key),
  });
  assert.deepEqual(table.reads, []);
  assert.equal(deps.history.size(), 0);
  assert.equal(deps.streamTimes!.size(), 0);
});

Deno.test("sendRecorded: with stream times, writes of one key go one at a time and are noted", async () => {
  const deps = recording(new StreamTimes());
  const table = fakeTable();
  const order: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  const first = sendRecorded(deps, {
    scope: "s",
    written,
    stale: false,
    images: table.images,
    send: async () => {
      order.push("first sent");
      await gate;
      return await table.writing({ ...key, v: { N: "1" } })();
    },
  });
  const second = sendRecorded(deps, {
    scope: "s",
    written,
    stale: false,
    images: table.images,
    send: () => {
      order.push("second sent");
      return table.writing({ ...key, v: { N: "2" } })();
    },
  });
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(order, ["first sent"]);
  open();
  await Promise.all([first, second]);
  assert.deepEqual(order, ["first sent", "second sent"]);
  assert.equal(deps.streamTimes!.size(), 2);
  assert.equal(deps.locks.size(), 0);
  assert.equal(deps.history.size(), 0); // stale reads off
});

Deno.test("sendRecorded: a successful write goes into the recent writes, stale reads off too", async () => {
  const deps = recording();
  const table = fakeTable();
  const image = { ...key, v: { N: "1" } };
  await sendRecorded(deps, {
    scope: "s",
    written,
    stale: false,
    images: table.images,
    send: table.writing(image),
  });
  assert.equal(deps.history.size(), 0, "stale reads off: not in their history");
  assert.deepEqual(deps.recentWrites.keys("s/t"), [key]);
  assert.equal(deps.recentWrites.at("s/t", key, 999), null, "before the write: absent");
  assert.deepEqual(deps.recentWrites.at("s/t", key, 1_000), image);
});

Deno.test("sendRecorded: a refused write is not in the recent writes", async () => {
  for (const streamTimes of [undefined, new StreamTimes()]) {
    const deps = recording(streamTimes);
    const table = fakeTable();
    const { response } = await sendRecorded(deps, {
      scope: "s",
      written,
      stale: false,
      images: table.images,
      send: table.writing(key, 400),
    });
    assert.equal(response.status, 400);
    assert.deepEqual(deps.recentWrites.keys("s/t"), []);
    assert.equal(deps.recentWrites.size(), 0);
  }
});
