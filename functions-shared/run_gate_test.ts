import assert from "node:assert/strict";
import { RunGate, whenAdmitted } from "./run_gate.ts";

Deno.test("a gate admits up to its maximum and frees a place when a run settles", async () => {
  const gate = new RunGate(2);
  const releases: (() => void)[] = [];
  const run = () => new Promise<void>((resolve) => releases.push(resolve));
  const first = gate.admit(run);
  const second = gate.admit(run);
  assert.ok(first && second);
  assert.equal(gate.admit(run), undefined, "a third run is turned away, and not started");
  assert.equal(releases.length, 2);
  releases[0]();
  await first;
  assert.equal(gate.active, 1);
  const third = gate.admit(run);
  assert.ok(third, "the freed place is taken");
  releases[1]();
  releases[2]();
  await Promise.all([second, third]);
  assert.equal(gate.active, 0);
});

Deno.test("a run that fails frees its place too", async () => {
  const gate = new RunGate(1);
  await assert.rejects(gate.admit(() => Promise.reject(new Error("boom")))!, /boom/);
  assert.equal(gate.active, 0);
  assert.throws(() =>
    gate.admit(() => {
      throw new Error("sync boom");
    }), /sync boom/);
  assert.equal(gate.active, 0);
  assert.throws(() => new RunGate(0), /1 or more runs/);
});

Deno.test("whenAdmitted runs waiting work in arrival order as each admitted run ends", async () => {
  const gate = new RunGate(1);
  const order: string[] = [];
  const step = (name: string, ms: number) => () =>
    new Promise<string>((resolve) =>
      setTimeout(() => {
        order.push(name);
        resolve(name);
      }, ms)
    );
  const results = await Promise.all([
    whenAdmitted(gate, step("a", 20)),
    whenAdmitted(gate, step("b", 1)),
    whenAdmitted(gate, step("c", 1)),
  ]);
  assert.deepEqual(results, ["a", "b", "c"]);
  assert.deepEqual(order, ["a", "b", "c"], "one at a time, first come first served");
  assert.equal(gate.active, 0);
});
