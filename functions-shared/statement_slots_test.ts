import assert from "node:assert/strict";
import { RunGate, waitingAt, whenAdmitted } from "./run_gate.ts";
import { statementSlotsOf } from "./statement_slots.ts";

Deno.test("no more than the slots run at once; the others wait, in order", async () => {
  const slots = new RunGate(2);
  const order: string[] = [];
  let running = 0;
  let most = 0;
  const gates: (() => void)[] = [];
  const work = (name: string) =>
    whenAdmitted(slots, async () => {
      running++;
      most = Math.max(most, running);
      order.push(`start ${name}`);
      await new Promise<void>((resolve) => gates.push(resolve));
      running--;
      order.push(`end ${name}`);
      return name;
    });
  const all = Promise.all(["a", "b", "c", "d"].map(work));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(order, ["start a", "start b"]);
  assert.equal(waitingAt(slots), 2);
  while (gates.length > 0 || waitingAt(slots) > 0) {
    gates.shift()?.();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.deepEqual(await all, ["a", "b", "c", "d"]);
  assert.equal(most, 2);
  assert.deepEqual(order.filter((s) => s.startsWith("start")), [
    "start a",
    "start b",
    "start c",
    "start d",
  ]);
});

Deno.test("a failed statement frees its slot", async () => {
  const slots = new RunGate(1);
  await assert.rejects(whenAdmitted(slots, () => Promise.reject(new Error("refused"))), /refused/);
  assert.equal(await whenAdmitted(slots, () => Promise.resolve(7)), 7);
});

Deno.test("a pool's slots are sized to its connections and made once; a fake has none", () => {
  const pool = { options: { max: 3 } };
  const slots = statementSlotsOf(pool);
  assert.equal(slots?.max, 3);
  assert.equal(statementSlotsOf(pool), slots);
  assert.equal(statementSlotsOf({}), undefined);
  assert.throws(() => new RunGate(0), /1 or more/);
});
