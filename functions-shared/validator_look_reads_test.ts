import assert from "node:assert/strict";
import { lookPace, RENEW_EVERY_MS } from "./validator_look_reads.ts";
import type { ValidatorDeps } from "./validator_deps.ts";

/** A clock that moves only when slept on, and the sleeps it was asked for. */
function fakeClock() {
  let now = 0;
  const slept: number[] = [];
  return {
    slept,
    pacing: {
      now: () => now,
      sleep: (ms: number) => {
        slept.push(ms);
        now += ms;
        return Promise.resolve();
      },
      random: () => 0.5,
    },
  };
}

const small = [{ id: { S: "k" } }];

/** A look's pace at `rate` read units a second on a fake clock, and its renewals. */
function pacedAt(rate: number | undefined) {
  const clock = fakeClock();
  const renewals = { count: 0 };
  const pace = lookPace(
    { maxRcuPerSecond: rate, pacing: clock.pacing } as unknown as ValidatorDeps,
    () => Promise.resolve(void renewals.count++),
  );
  return { pace, slept: clock.slept, renewals };
}

Deno.test("a look's reads are paced to the table's read budget, a read unit per 4 KB", async () => {
  const { pace, slept, renewals } = pacedAt(2);
  await pace(small);
  await pace(small);
  // 8 KB and a bit: 3 units.
  await pace([{ id: { S: "k" }, blob: { S: "x".repeat(8200) } }]);
  assert.deepEqual(slept, [500, 500, 1500]);
  assert.equal(renewals.count, 0);
});

Deno.test("a long wait is slept in slices, the run's lease renewed after each full one", async () => {
  const { pace, slept, renewals } = pacedAt(1);
  // About 100 KB: 25 units at 1 a second.
  await pace([{ id: { S: "k" }, blob: { S: "x".repeat(100 * 1024 - 40) } }]);
  assert.deepEqual(slept, [RENEW_EVERY_MS, 25_000 - RENEW_EVERY_MS]);
  assert.equal(renewals.count, 1);
});

Deno.test("without a read budget a look is not paced", async () => {
  for (const rate of [undefined, 0]) {
    const { pace, slept, renewals } = pacedAt(rate);
    await pace(small);
    assert.deepEqual(slept, [], `rate ${rate}`);
    assert.equal(renewals.count, 0);
  }
});
