import assert from "node:assert/strict";
import { readEdgeLimits } from "./edge_limits.ts";
import { readingDueIn, type ScheduledIsolate, SupervisionClock } from "./supervision_clock.ts";

// The hosted defaults: soft 1,000 ms and hard 2,000 ms of CPU, 150 s of wall clock, idle
// after 60 s, read every 25 ms.
const limits = readEdgeLimits({});
const idle: ScheduledIsolate = {
  cpuMs: 200,
  startedAt: 0,
  lastActivity: 0,
  inFlight: 0,
  retired: undefined,
  killed: undefined,
  pendingTasks: 0,
};

Deno.test("a busy isolate is read every poll, as before", () => {
  assert.equal(readingDueIn({ ...idle, inFlight: 1 }, 1_000, limits, 2), 25);
  assert.equal(readingDueIn({ ...idle, pendingTasks: 1 }, 1_000, limits, 2), 25, "waitUntil");
  assert.equal(
    readingDueIn({ ...idle, pendingTasks: undefined }, 1_000, limits, 2),
    25,
    "no report yet",
  );
  assert.equal(readingDueIn({ ...idle, retired: "idle" }, 1_000, limits, 2), 25, "draining");
});

Deno.test("an idle isolate is read when its soft or hard CPU limit could first be reached", () => {
  // 800 ms of CPU away from the soft limit: on two cores, 400 ms of wall at the soonest.
  assert.equal(readingDueIn(idle, 1_000, limits, 2), 400);
  assert.equal(readingDueIn(idle, 1_000, limits, 1), 800, "one core: twice as long");
  // Past the soft limit (retired then, unless not yet read): the hard limit's 2,000 ms.
  assert.equal(readingDueIn({ ...idle, cpuMs: 1_200 }, 1_000, limits, 2), 400);
  // Never less than a poll, however near.
  assert.equal(readingDueIn({ ...idle, cpuMs: 1_999 }, 1_000, limits, 2), 25);
});

Deno.test("an idle isolate is read at its wall-clock and idle deadlines", () => {
  // CPU limits out of reach, so that the deadlines decide.
  const roomy = readEdgeLimits({ EDGE_CPU_SOFT_MS: "3600000", EDGE_CPU_HARD_MS: "3600000" });
  // Idle for 60 s from its last activity at 0.
  assert.equal(readingDueIn(idle, 10_000, roomy, 2), 50_000, "the idle deadline");
  // Retired by the wall clock at half of 150 s, before it has been idle for 60 s.
  assert.equal(readingDueIn({ ...idle, lastActivity: 40_000 }, 50_000, roomy, 2), 25_000);
  // Retired, it drains: read every poll until it has ended, and killed at 150 s.
  assert.equal(readingDueIn({ ...idle, retired: "retired: wall clock" }, 80_000, roomy, 2), 25);
});

/** A clock whose timers fire when the test says. */
function fakeClock(pass: () => number | undefined) {
  let now = 0;
  const timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  const clock = new SupervisionClock(pass, 25, {
    now: () => now,
    after: (fn, ms) => {
      const timer = { at: now + ms, fn, cancelled: false };
      timers.push(timer);
      return () => timer.cancelled = true;
    },
  });
  const pending = () => timers.filter((t) => !t.cancelled).map((t) => t.at);
  const advance = (ms: number) => {
    now += ms;
    for (const timer of timers.filter((t) => !t.cancelled && t.at <= now)) {
      timer.cancelled = true;
      timer.fn();
    }
  };
  return { clock, pending, advance };
}

Deno.test("the clock runs a pass within a poll of a poke, then when the pass says", () => {
  let passes = 0;
  let answer: number | undefined = 1_000;
  const { clock, pending, advance } = fakeClock(() => {
    passes++;
    return answer;
  });
  assert.deepEqual(pending(), [], "nothing until a poke");
  clock.poke();
  clock.poke();
  assert.deepEqual(pending(), [25], "one pass for both");
  advance(25);
  assert.equal(passes, 1);
  assert.deepEqual(pending(), [1_025]);
  // A poke brings the next pass forward, never back.
  advance(100);
  clock.poke();
  assert.deepEqual(pending(), [150]);
  answer = undefined;
  advance(25);
  assert.equal(passes, 2);
  assert.deepEqual(pending(), [], "no isolate: no pass until the next poke");
  clock.poke();
  clock.stop();
  assert.deepEqual(pending(), [], "stopped");
  clock.poke();
  assert.deepEqual(pending(), []);
});
