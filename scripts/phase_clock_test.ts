import assert from "node:assert/strict";
import { PhaseClock } from "./phase_clock.ts";

function fakeNow() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("phases overlap and each keeps its own interval from the run's start", () => {
  const clock = fakeNow();
  const phases = new PhaseClock(clock.now);
  phases.start("load visitors");
  clock.advance(2_000);
  phases.start("backfill visitors");
  assert.equal(phases.end("load visitors"), 2);
  clock.advance(3_500);
  assert.equal(phases.end("backfill visitors"), 3.5);
  assert.deepEqual(phases.lines(), [
    "phase load visitors      from   0.0s to   2.0s    2.0s",
    "phase backfill visitors  from   2.0s to   5.5s    3.5s",
  ]);
});

Deno.test("a span covers every phase of a prefix; a running phase counts to now", () => {
  const clock = fakeNow();
  const phases = new PhaseClock(clock.now);
  phases.start("backfill a");
  clock.advance(1_000);
  phases.start("backfill b");
  phases.end("backfill a");
  clock.advance(4_000);
  assert.equal(phases.span("backfill "), 5);
  assert.equal(phases.seconds("backfill b"), 4);
  assert.match(phases.lines()[1], /\(still running\)$/);
  assert.equal(phases.span("validate "), 0);
  assert.equal(phases.seconds("validate a"), undefined);
});

Deno.test("time() ends its phase when the work fails, and names are used once", async () => {
  const clock = fakeNow();
  const phases = new PhaseClock(clock.now);
  await assert.rejects(
    phases.time("drain", () => {
      clock.advance(1_500);
      return Promise.reject(new Error("timed out"));
    }),
    /timed out/,
  );
  assert.equal(phases.seconds("drain"), 1.5);
  assert.throws(() => phases.start("drain"), /drain began twice/);
  assert.throws(() => phases.end("live"), /live never began/);
});
