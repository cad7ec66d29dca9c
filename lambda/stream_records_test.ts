import assert from "node:assert/strict";
import { record } from "./forwarder_fakes.ts";
import { bodyStart, keyText, splitIntoBodies } from "./stream_records.ts";

Deno.test("bodies stay under the limit and keep the records' order", () => {
  const records = Array.from({ length: 10 }, (_, i) => record(String(i), 300));
  const bodies = splitIntoBodies(records, 1_000);
  assert.ok(bodies.length > 1);
  assert.deepEqual(bodies.flat(), records);
  for (const body of bodies) assert.ok(JSON.stringify(body).length <= 1_000 + body.length);
});

Deno.test("a record's key is written as the webhook's messages write one, numbers bare", () => {
  assert.equal(
    keyText({ id: { S: 'a"b' }, n: { N: "12.50" }, b: { B: "AAE=" } }),
    '[id="a\\"b", n=12.50, b="AAE="]',
  );
  assert.equal(keyText(undefined), "[]");
  assert.equal(keyText({ odd: null as never }), "[odd=null]");
});

Deno.test("a body's start names its table, first sequence number and key", () => {
  assert.equal(bodyStart([record("7"), record("8")]), 't from 7, key [id="xxxxxxxxxx"]');
  assert.equal(bodyStart([]), "an unnamed table from ?, key []");
});
