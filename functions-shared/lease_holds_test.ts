import assert from "node:assert/strict";
import { HOLD_EVERY_MS, untilTurn, whileHolding } from "./lease_holds.ts";
import { fakeClock } from "./testing_fakes.ts";

const later = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("a wait for room holds the lease while it lasts, and stops once it ends", async () => {
  // The wait ends at the second hold, so a loaded machine's late timers change nothing.
  let holds = 0;
  let end = () => {};
  const wait = new Promise<void>((resolve) => end = resolve);
  const giveUp = setTimeout(() => end(), 5_000); // so a broken hold fails, not hangs
  const hold = () => {
    if (++holds === 2) end();
    return Promise.resolve(true);
  };
  const held = await whileHolding(wait, hold, 10);
  clearTimeout(giveUp);
  assert.equal(held, "done");
  assert.equal(holds, 2, "a hold every tick until the wait ended");
  const after = holds;
  await later(40);
  assert.equal(holds, after, "no hold after the wait ended");
});

Deno.test("a wait for room ends as taken once a hold finds the lease another's", async () => {
  const never = new Promise(() => {});
  assert.equal(await whileHolding(never, () => Promise.resolve(false), 5), "taken");
});

Deno.test("a wait for a turn holds the lease every few seconds, and ends at the turn or the deadline", async () => {
  const clock = fakeClock(0.5);
  let holds = 0;
  const turn = { at: clock.now() + 3 * HOLD_EVERY_MS + 100, units: 1 };
  const hold = () => Promise.resolve(++holds > 0);
  assert.equal(await untilTurn(turn, clock, hold, Infinity), "turn");
  assert.equal(holds, 3, "a hold every HOLD_EVERY_MS of the wait");
  const far = { at: clock.now() + 60_000, units: 1 };
  assert.equal(await untilTurn(far, clock, hold, clock.now() + 1_000), "deadline");
  assert.equal(await untilTurn(far, clock, () => Promise.resolve(false), Infinity), "taken");
});

Deno.test("a deadline before the turn but far off still holds the lease every few seconds until it", async () => {
  const clock = fakeClock(0.5);
  let holds = 0;
  const start = clock.now();
  const turn = { at: start + 30_000, units: 1 };
  const result = await untilTurn(turn, clock, () => Promise.resolve(++holds > 0), start + 20_000);
  assert.equal(result, "deadline");
  assert.equal(holds, 4, "a hold every HOLD_EVERY_MS while the deadline was further off");
  assert.deepEqual(clock.slept, [4_000, 4_000, 4_000, 4_000, 4_000]);
  assert.equal(clock.now(), start + 20_000, "it returns at the deadline");
});
