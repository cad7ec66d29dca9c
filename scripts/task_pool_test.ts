import assert from "node:assert/strict";
import { pool } from "./task_pool.ts";

Deno.test("pool runs at most its limit at once, and a joining place takes the tasks left without being waited for", async () => {
  const started: string[] = [];
  let running = 0;
  let most = 0;
  const gates = new Map<string, PromiseWithResolvers<void>>();
  const task = (name: string) => async () => {
    started.push(name);
    most = Math.max(most, ++running);
    const gate = Promise.withResolvers<void>();
    gates.set(name, gate);
    await gate.promise;
    running--;
  };
  const waiting = Promise.withResolvers<void>();
  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
  let done = false;
  const all = pool(1, ["a", "b", "c"].map(task), [waiting.promise]).then(() => (done = true));
  await tick();
  assert.deepEqual(started, ["a"]);
  waiting.resolve(); // the place it held comes back: b starts beside a
  await tick();
  assert.deepEqual(started, ["a", "b"]);
  gates.get("a")!.resolve();
  await tick();
  assert.deepEqual(started, ["a", "b", "c"]);
  gates.get("b")!.resolve();
  gates.get("c")!.resolve();
  await all;
  assert.ok(done);
  assert.equal(most, 2);
});

Deno.test("pool resolves once its tasks are done, while a joining place still waits", async () => {
  const never = new Promise<void>(() => {});
  let ran = 0;
  const task = () => Promise.resolve(ran++);
  await pool(2, [task, task, task], [never]);
  assert.equal(ran, 3);
  await pool(2, [], [never]);
});

Deno.test("pool rejects with the first task's failure once the tasks started are done, and starts none after it", async () => {
  const ran: string[] = [];
  const failing = new Error("the first failure");
  await assert.rejects(
    pool(2, [
      () => Promise.resolve(ran.push("a")),
      () => Promise.reject(failing),
      () => new Promise((resolve) => setTimeout(() => resolve(ran.push("c")), 10)),
      () => Promise.resolve(ran.push("d")),
    ]),
    (error) => error === failing,
  );
  assert.ok(ran.includes("a") && ran.includes("c"), "the task started beside it ran to its end");
  assert.ok(!ran.includes("d"), "no task starts after a failure");
  await assert.rejects(pool(1, [() => Promise.reject(failing)]), (error) => error === failing);
});
