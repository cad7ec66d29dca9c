import assert from "node:assert/strict";
import { parseJsonExact } from "./dynamo_numbers.ts";
import { editedKeys, sameKeys } from "./write_back_catch_all.ts";

Deno.test("an edit's keys are those it adds, removes or changes, numbers compared exactly", () => {
  const before = parseJsonExact('{"a": 1, "b": [1, 2], "c": "x", "n": 12345678901234567890}');
  const after = parseJsonExact('{"a": 1.0, "b": [1, 3], "d": null, "n": 12345678901234567891}');
  assert.deepEqual(editedKeys(before, after), ["b", "c", "d", "n"]);
  assert.deepEqual(editedKeys(undefined, { a: 1 }), ["a"]);
  assert.deepEqual(editedKeys({ a: 1 }, { a: 1 }), []);
});

Deno.test("two catch-alls are compared on the keys asked only, an absent key as absent", () => {
  assert.equal(sameKeys({ a: 1, b: 2 }, { a: 1, b: 3 }, ["a"]), true);
  assert.equal(sameKeys({ a: 1, b: 2 }, { a: 1, b: 3 }, ["a", "b"]), false);
  assert.equal(sameKeys({ a: null }, {}, ["a"]), false, "a null key is not an absent one");
  assert.equal(sameKeys({}, null, ["a"]), true);
});
