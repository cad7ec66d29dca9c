import assert from "node:assert/strict";
import { pausedAt, RunGate, waitingAt, whenAdmitted } from "./run_gate.ts";

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

Deno.test("a run paused on a timer lets the next in line start, then takes a place again", async () => {
  const gate = new RunGate(1);
  const events: string[] = [];
  let wake!: () => void;
  const timer = (ms: number) =>
    new Promise<void>((resolve) => {
      events.push(`a sleeps ${ms} ms`);
      wake = resolve;
    });
  let finishB!: () => void;
  const a = whenAdmitted(gate, async () => {
    events.push("a starts");
    await pausedAt(gate, 1_000, timer);
    events.push("a goes on");
    assert.equal(gate.active, 1, "a holds a place again");
  });
  const b = whenAdmitted(gate, async () => {
    events.push("b starts");
    await new Promise<void>((resolve) => (finishB = resolve));
    events.push("b ends");
  });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(events, ["a starts", "a sleeps 1000 ms", "b starts"], "b ran in a's pause");
  assert.equal(gate.active, 1);
  wake();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(events.slice(3), [], "a waits for b's place, not beside it");
  finishB();
  await Promise.all([a, b]);
  assert.deepEqual(events.slice(3), ["b ends", "a goes on"]);
  assert.equal(gate.active, 0);
  assert.equal(waitingAt(gate), 0);
});

Deno.test("a paused run with nobody in line takes its place straight back", async () => {
  const gate = new RunGate(1);
  await whenAdmitted(gate, async () => {
    await pausedAt(gate, 1, () => {
      assert.equal(gate.active, 0, "the place is free during the pause");
      return Promise.resolve();
    });
    assert.equal(gate.active, 1);
  });
  assert.equal(gate.active, 0);
});

Deno.test("a request in line starts when a run admitted with admit() ends, not only one of its own kind", async () => {
  // The validator's re-reads take the isolate's place with admit(); a validation's
  // request that came meanwhile waited in line until the next heartbeat a minute later.
  const gate = new RunGate(1);
  let endReread!: () => void;
  const reread = gate.admit(() => new Promise<void>((resolve) => (endReread = resolve)));
  assert.ok(reread);
  let started = false;
  const run = whenAdmitted(gate, () => {
    started = true;
    return Promise.resolve("validated");
  });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(started, false, "the place is taken");
  assert.equal(waitingAt(gate), 1);
  endReread();
  assert.equal(await run, "validated");
  assert.ok(started);
  assert.equal(waitingAt(gate), 0);
  assert.equal(gate.active, 0);
});

Deno.test("work that throws before it returns fails its own request, not the run that gave it the place", async () => {
  const gate = new RunGate(1);
  let end!: () => void;
  const first = gate.admit(() => new Promise<void>((resolve) => (end = resolve)))!;
  const second = whenAdmitted(gate, () => {
    throw new Error("second's own failure");
  });
  end();
  await first;
  await assert.rejects(second, /second's own failure/);
  assert.equal(gate.active, 0);
  assert.equal(waitingAt(gate), 0);
});
