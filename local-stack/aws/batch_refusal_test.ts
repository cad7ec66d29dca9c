import assert from "node:assert/strict";
import type { Item } from "./capacity.ts";
import { refusedWhole } from "./batch_refusal.ts";
import type { KeyAttribute } from "./key_schema.ts";

/** An item of exactly `bytes` bytes as AWS counts them (`id` 2 + 1, `d` 1 + the rest). */
const sized = (id: string, bytes: number): Item => ({
  id: { S: id },
  d: { S: "x".repeat(bytes - 3 - id.length) },
});
const put = (id: string, bytes = 100) => ({ PutRequest: { Item: sized(id, bytes) } });
const del = (id: string) => ({ DeleteRequest: { Key: { id: { S: id } } } });
const putItem = (item: Item) => ({ PutRequest: { Item: item } });
const delKey = (key: Item) => ({ DeleteRequest: { Key: key } });
const schemas: Record<string, KeyAttribute[]> = {
  t: [{ name: "id", type: "S" }],
  u: [{ name: "id", type: "S" }],
  n: [{ name: "id", type: "N" }],
  c: [{ name: "pk", type: "B" }, { name: "sk", type: "N" }],
};
const keySchema = (table: string) => schemas[table];

Deno.test("a batch DynamoDB refuses whole is told apart", () => {
  assert.equal(refusedWhole({ t: [put("a"), del("b")] }, keySchema), false);
  assert.equal(refusedWhole(undefined, keySchema), true);
  assert.equal(refusedWhole({}, keySchema), true);
  assert.equal(refusedWhole({ t: [] }, keySchema), true, "a table with no request");
  const many = Array.from({ length: 26 }, (_, i) => put(`k${i}`));
  assert.equal(refusedWhole({ t: many.slice(0, 25) }, keySchema), false);
  assert.equal(refusedWhole({ t: many }, keySchema), true, "26 requests");
  assert.equal(
    refusedWhole({ t: many.slice(0, 13), u: many.slice(13) }, keySchema),
    true,
    "26 requests over two tables",
  );
  assert.equal(refusedWhole({ t: [put("a"), del("a")] }, keySchema), true, "a key twice");
  assert.equal(refusedWhole({ t: [{ ...put("a"), ...del("b") }] }, keySchema), true, "both");
  assert.equal(refusedWhole({ t: [{}] }, keySchema), true, "neither");
  assert.equal(refusedWhole({ t: [putItem({ v: { S: "x" } })] }, keySchema), true, "no key");
  assert.equal(refusedWhole({ t: [put("a", 400 * 1024)] }, keySchema), false);
  assert.equal(refusedWhole({ t: [put("a", 400 * 1024 + 1)] }, keySchema), true, "over 400 KB");
  assert.equal(refusedWhole({ missing: [put("a")] }, keySchema), true, "an unknown table");
});

Deno.test("a batch with a key that does not match its table's key schema is refused whole", () => {
  const ok = put("a");
  const refused = (requests: unknown[], table = "t") =>
    refusedWhole({ [table]: [ok, ...requests] }, keySchema);
  assert.equal(refused([putItem({ id: { N: "1" } })]), true, "N where the table says S");
  assert.equal(refused([delKey({ id: { N: "1" } })]), true, "a Key of the wrong type");
  assert.equal(refused([delKey({ id: { S: "b" }, x: { S: "y" } })]), true, "a Key with more");
  assert.equal(refused([putItem({ id: { S: "b" }, x: { S: "y" } })]), false, "an item may");
  assert.equal(refused([putItem({ id: { S: "" } })]), true, "an empty S key");
  assert.equal(refused([delKey({ id: { S: "" } })]), true, "an empty S Key");
  assert.equal(refused([putItem({ id: { S: "b", N: "1" } })]), true, "two types");
  assert.equal(refused([putItem({ id: { S: "k".repeat(2049) } })]), true, "over 2048 bytes");
  assert.equal(refused([putItem({ id: { S: "k".repeat(2048) } })]), false);
  const composite = (pk: unknown, sk: unknown) => ({ pk, sk } as Item);
  const c = (items: Item[]) => refusedWhole({ c: items.map(putItem) }, keySchema);
  assert.equal(c([composite({ B: "YQ==" }, { N: "1" })]), false);
  assert.equal(c([composite({ B: "" }, { N: "1" })]), true, "an empty B key");
  assert.equal(c([composite({ B: "YQ" }, { N: "1" })]), true, "a B key not padded");
  assert.equal(c([composite({ B: "YQ==" }, { N: "x" })]), true, "N not a number");
  assert.equal(c([composite({ B: "YQ==" }, { S: "1" })]), true, "a sort key of the wrong type");
  assert.equal(c([composite({ B: "YQ==" }, {})]), true, "a sort key of no type");
  assert.equal(c([{ pk: { B: "YQ==" } }]), true, "no sort key");
  assert.equal(
    refusedWhole({ n: [putItem({ id: { N: "1" } }), delKey({ id: { N: "1.0" } })] }, keySchema),
    true,
    "1 and 1.0: one key twice",
  );
  assert.equal(
    refusedWhole({ n: [putItem({ id: { N: "1" } }), putItem({ id: { N: "10" } })] }, keySchema),
    false,
  );
});

Deno.test("a batch with a value DynamoDB refuses in any item is refused whole, not split", () => {
  const bad = putItem({ id: { S: "b" }, tags: { SS: [] } });
  assert.equal(refusedWhole({ t: [put("a"), bad] }, keySchema), true, "an empty set");
  assert.equal(refusedWhole({ t: [put("a")], u: [bad] }, keySchema), true, "in another table");
  assert.equal(
    refusedWhole({ t: [put("a"), putItem({ id: { S: "b" }, n: { N: "1e126" } })] }, keySchema),
    true,
    "a number DynamoDB cannot store",
  );
  assert.equal(
    refusedWhole({ t: [put("a"), putItem({ id: { S: "b" }, tags: { SS: ["x"] } })] }, keySchema),
    false,
  );
});
