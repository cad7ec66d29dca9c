import assert from "node:assert/strict";
import { KeyLocks } from "./key_locks.ts";

Deno.test("key locks let one write of a key through at a time, in order, without deadlock", async () => {
  const locks = new KeyLocks();
  const order: string[] = [];
  const first = await locks.lock(["b", "a"]);
  const second = locks.lock(["a"]).then((release) => {
    order.push("second");
    release();
  });
  const third = locks.lock(["a", "b"]).then((release) => {
    order.push("third");
    release();
  });
  const other = locks.lock(["c"]).then((release) => {
    order.push("other");
    release();
  });
  await other;
  assert.deepEqual(order, ["other"]);
  first();
  await Promise.all([second, third]);
  assert.deepEqual(order, ["other", "second", "third"]);
  assert.equal(locks.size(), 0);
});
