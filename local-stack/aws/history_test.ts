import assert from "node:assert/strict";
import { History, keyOf, keyText, seededRandom } from "./history.ts";

const key = { id: { S: "a" } };
const v = (n: number) => ({ id: { S: "a" }, n: { N: String(n) } });

Deno.test("a key without history is read as it is now", () => {
  const history = new History(2000, seededRandom(1));
  assert.equal(history.has("t", key), false);
  assert.deepEqual(history.stale("t", key, v(1), 10_000), v(1));
});

Deno.test("right after an update, a stale read returns either version, the old one too", () => {
  const history = new History(2000, seededRandom(7));
  history.record("t", key, v(1), v(2), 10_000);
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) seen.add(JSON.stringify(history.stale("t", key, v(2), 10_500)));
  assert.deepEqual(seen, new Set([JSON.stringify(v(1)), JSON.stringify(v(2))]));
});

Deno.test("the pick follows the random moment: 0 is now, close to 1 is the window's start", () => {
  let r = 0;
  const history = new History(2000, () => r);
  history.record("t", key, null, v(1), 10_000);
  history.record("t", key, v(1), null, 11_000);
  assert.equal(history.stale("t", key, null, 11_500), null); // now: deleted
  assert.deepEqual(history.deletedKeys("t"), [key]);
  r = 0.5; // 10_500: after the insert, before the delete
  assert.deepEqual(history.stale("t", key, null, 11_500), v(1));
  r = 0.99; // 9_520: before the insert: the item did not exist yet
  assert.equal(history.stale("t", key, null, 11_500), null);
});

Deno.test("versions older than the window are forgotten; memory stays bounded", () => {
  const history = new History(1000, seededRandom(3));
  for (let i = 0; i < 100; i++) history.record("t", { id: { S: `k${i}` } }, null, v(i), i * 10);
  assert.equal(history.size(), 200);
  history.sweep(10_000);
  assert.equal(history.size(), 0);
  assert.equal(history.deletedKeys("t").length, 0);
  // Within the window, the newest version older than it stays as the base.
  history.record("t", key, v(0), v(1), 20_000);
  history.record("t", key, v(1), v(2), 20_600);
  history.sweep(21_200);
  assert.equal(history.size(), 2);
  assert.ok(
    [JSON.stringify(v(1)), JSON.stringify(v(2))].includes(
      JSON.stringify(history.stale("t", key, v(2), 21_200)),
    ),
  );
});

Deno.test("keys are canonical, whatever the attribute order", () => {
  assert.equal(
    keyText({ b: { S: "2" }, a: { S: "1" } }),
    keyText({ a: { S: "1" }, b: { S: "2" } }),
  );
  assert.deepEqual(keyOf({ a: { S: "1" }, x: { N: "3" } }, ["a"]), { a: { S: "1" } });
});

Deno.test("keys are canonical numbers: 1, 1.0 and 1e0 are one key, as DynamoDB takes them", () => {
  const text = keyText({ pk: { S: "a" }, n: { N: "1" } });
  for (const n of ["1.0", "1e0", "+1", "01", "0.1E1", "1.000"]) {
    assert.equal(keyText({ n: { N: n }, pk: { S: "a" } }), text, n);
  }
  assert.notEqual(keyText({ n: { N: "10" } }), keyText({ n: { N: "1" } }));
  assert.notEqual(keyText({ n: { N: "1" } }), keyText({ n: { S: "1" } }), "a number, not a string");
  assert.equal(keyText({ n: { N: "-0.0" } }), keyText({ n: { N: "0" } }));
  // Strings and binaries as sent; no number DynamoDB takes, as sent too.
  assert.notEqual(keyText({ s: { S: "1.0" } }), keyText({ s: { S: "1" } }));
  assert.equal(keyText({ n: { N: "x" } }), JSON.stringify([["n", { N: "x" }]]));

  // A key written as 1.0 is the one DynamoDB's items name 1: its versions are found.
  const history = new History(60_000);
  const item = (v: number) => ({ id: { N: "1" }, v: { N: String(v) } });
  history.record("t", { id: { N: "1.0" } }, item(1), item(2), 10_000);
  history.record("t", { id: { N: "1e0" } }, item(2), item(3), 20_000);
  assert.equal(history.has("t", keyOf(item(3), ["id"])), true);
  assert.deepEqual(history.at("t", { id: { N: "1" } }, 15_000), item(2));
  assert.deepEqual(history.at("t", { id: { N: "1" } }, 5_000), item(1));
  assert.equal(history.keys("t").length, 1);
});

Deno.test("at: the image in force at a moment; undefined for a key without history", () => {
  const history = new History(60_000);
  assert.equal(history.at("t", key, 10_000), undefined);
  history.record("t", key, null, v(1), 10_000);
  history.record("t", key, v(1), v(2), 20_000);
  history.record("t", key, v(2), null, 30_000);
  assert.equal(history.at("t", key, 9_999), null, "not yet created");
  assert.deepEqual(history.at("t", key, 10_000), v(1), "a write is in force from its moment");
  assert.deepEqual(history.at("t", key, 25_000), v(2));
  assert.equal(history.at("t", key, 30_000), null, "deleted");
  assert.equal(history.at("u", key, 25_000), undefined, "another table");
});

Deno.test("keys: a table's keys with versions held, until they leave the window", () => {
  const history = new History(1000);
  const other = { id: { S: "b" } };
  history.record("t", key, null, v(1), 10_000);
  history.record("t", other, v(0), null, 10_500);
  history.record("u", key, null, v(1), 10_500);
  assert.deepEqual(history.keys("t"), [key, other]);
  assert.deepEqual(history.keys("none"), []);
  history.sweep(11_200);
  assert.deepEqual(history.keys("t"), [other]);
});
