import assert from "node:assert/strict";
import type { Item } from "./capacity.ts";
import { currentImages, imageId } from "./current_images.ts";
import type { Body } from "./stale_reads.ts";

const key = (id: string): Item => ({ id: { S: id } });

Deno.test("currentImages: consistent reads of each key once, null for an item not there", async () => {
  const asked: Body[] = [];
  const stored = new Map([["a", { ...key("a"), v: { N: "1" } }]]);
  const batchGet = (body: Body) => {
    asked.push(body);
    const items = body.RequestItems as Record<string, { Keys: Item[] }>;
    return Promise.resolve({
      Responses: Object.fromEntries(
        Object.entries(items).map(([table, { Keys }]) => [
          table,
          Keys.map((k) => stored.get((k.id as { S: string }).S)).filter((i) => i !== undefined),
        ]),
      ),
    });
  };
  const images = await currentImages(batchGet, () => ["id"], [
    { table: "t", key: key("a") },
    { table: "t", key: key("b") },
    { table: "t", key: key("a") },
  ]);
  assert.deepEqual(asked, [
    { RequestItems: { t: { Keys: [key("a"), key("b")], ConsistentRead: true } } },
  ]);
  assert.deepEqual(images.get(imageId("t", key("a"))), stored.get("a"));
  assert.equal(images.get(imageId("t", key("b"))), null);
});

Deno.test("currentImages: more than 100 keys are read 100 at a time", async () => {
  const sizes: number[] = [];
  const batchGet = (body: Body) => {
    sizes.push((body.RequestItems as Record<string, { Keys: Item[] }>).t.Keys.length);
    return Promise.resolve({});
  };
  const keys = Array.from({ length: 250 }, (_, i) => ({ table: "t", key: key(String(i)) }));
  const images = await currentImages(batchGet, () => ["id"], keys);
  assert.deepEqual(sizes, [100, 100, 50]);
  assert.equal(images.size, 250);
});

Deno.test("currentImages: a key named 1.0 is read once with 1, and found as the item DynamoDB names 1", async () => {
  const asked: Body[] = [];
  const stored = { id: { N: "1" }, v: { N: "7" } };
  const batchGet = (body: Body) => {
    asked.push(body);
    return Promise.resolve({ Responses: { t: [stored] } });
  };
  const one = { id: { N: "1.0" } };
  const images = await currentImages(batchGet, () => ["id"], [
    { table: "t", key: one },
    { table: "t", key: { id: { N: "1" } } },
  ]);
  // One key asked for: DynamoDB refuses a batch naming one key twice.
  assert.deepEqual(asked, [{ RequestItems: { t: { Keys: [one], ConsistentRead: true } } }]);
  assert.deepEqual(images.get(imageId("t", one)), stored);
});

Deno.test("currentImages: keys an answer leaves unprocessed are asked for again, not taken as absent", async () => {
  const asked: Body[] = [];
  const big = { ...key("big"), blob: { S: "x" } };
  const batchGet = (body: Body) => {
    asked.push(body);
    const keys = (body.RequestItems as Record<string, { Keys: Item[] }>).t.Keys;
    // The first answer leaves the key unread, as past DynamoDB's 16 MB.
    return Promise.resolve(
      asked.length === 1
        ? {
          Responses: { t: [] },
          UnprocessedKeys: { t: { Keys: keys, ConsistentRead: true } },
        }
        : { Responses: { t: [big] } },
    );
  };
  const images = await currentImages(batchGet, () => ["id"], [{ table: "t", key: key("big") }]);
  assert.equal(asked.length, 2);
  assert.deepEqual(images.get(imageId("t", key("big"))), big);
});
