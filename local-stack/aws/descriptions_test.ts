import assert from "node:assert/strict";
import { Descriptions } from "./descriptions.ts";

/** Descriptions over a write count the test moves, and an ask that counts its calls. */
function setup() {
  const writes = new Map<string, number>();
  let epoch = "1";
  const described = new Descriptions(
    { writesTo: (t) => writes.get(t) ?? 0 },
    () => epoch,
    10_000,
    2,
  );
  let asked = 0;
  let status = 200;
  const ask = () => {
    asked++;
    const text = JSON.stringify({ Table: { TableName: "t", asked } });
    return Promise.resolve(
      new Response(text, { status, headers: { "x-amz-crc32": String(text.length) } }),
    );
  };
  const describe = async (table: string, now: number, key = `DescribeTable ${table}`) => {
    const response = await described.describe(key, table, now, ask);
    return {
      status: response.status,
      body: await response.json(),
      crc: response.headers.get("x-amz-crc32"),
    };
  };
  return {
    describe,
    write: (t: string) => writes.set(t, (writes.get(t) ?? 0) + 1),
    asked: () => asked,
    refuse: () => status = 400,
    restartUpstream: () => epoch = String(Number(epoch) + 1),
  };
}

Deno.test("a table with no write since is described again without asking, headers and all", async () => {
  const s = setup();
  const first = await s.describe("db/t", 0);
  const again = await s.describe("db/t", 9_999);
  assert.equal(s.asked(), 1);
  assert.deepEqual(again, first);
  assert.equal(again.crc, String(JSON.stringify(first.body).length));
});

Deno.test("a write to the table, or refreshMs gone by, sends the next description to DynamoDB Local", async () => {
  const s = setup();
  await s.describe("db/t", 0);
  s.write("db/other");
  await s.describe("db/t", 1);
  assert.equal(s.asked(), 1, "another table's write changes nothing");
  s.write("db/t");
  assert.deepEqual((await s.describe("db/t", 2)).body, { Table: { TableName: "t", asked: 2 } });
  assert.equal((await s.describe("db/t", 10_002)).body.Table.asked, 3);
  assert.equal(s.asked(), 3);
});

Deno.test("each request is kept apart, and a write to their table refreshes them all", async () => {
  const s = setup();
  await s.describe("db/t", 0, "DescribeTable t");
  await s.describe("db/t", 0, "DescribeStream t's stream");
  await s.describe("db/t", 1, "DescribeTable t");
  await s.describe("db/t", 1, "DescribeStream t's stream");
  assert.equal(s.asked(), 2);
  s.write("db/t");
  await s.describe("db/t", 2, "DescribeTable t");
  await s.describe("db/t", 2, "DescribeStream t's stream");
  assert.equal(s.asked(), 4);
});

Deno.test("a refused description is not kept, and only the newest tables are", async () => {
  const s = setup();
  s.refuse();
  assert.equal((await s.describe("db/gone", 0)).status, 400);
  assert.equal((await s.describe("db/gone", 1)).status, 400);
  assert.equal(s.asked(), 2);
  const t = setup();
  await t.describe("db/a", 0);
  await t.describe("db/b", 0);
  await t.describe("db/c", 0);
  await t.describe("db/c", 1);
  await t.describe("db/b", 1);
  assert.equal(t.asked(), 3);
  await t.describe("db/a", 1);
  assert.equal(t.asked(), 4, "the oldest was forgotten");
});

Deno.test("DynamoDB Local started again (it forgot its tables) drops every kept answer", async () => {
  const s = setup();
  await s.describe("db/t", 0);
  await s.describe("db/t", 1);
  assert.equal(s.asked(), 1);
  s.restartUpstream();
  await s.describe("db/t", 2);
  assert.equal(s.asked(), 2);
});
