import assert from "node:assert/strict";
import { FixedWindows } from "./fixed_windows.ts";

const WINDOW_MS = 60_000;

Deno.test("a key's window opens with its first event; past its count, refused until it ends", () => {
  let now = 1_000;
  const budget = new FixedWindows(2, WINDOW_MS, () => now);
  assert.deepEqual(budget.take("a"), { allowed: true });
  now += 10_000;
  assert.deepEqual(budget.take("a"), { allowed: true });
  now += 5_000;
  // Refused until the window the first call opened ends, and told how long that is.
  assert.deepEqual(budget.take("a"), { allowed: false, retryAfterMs: WINDOW_MS - 15_000 });
  assert.deepEqual(budget.take("b"), { allowed: true }, "another key has its own window");
  now = 1_000 + WINDOW_MS;
  assert.deepEqual(budget.take("a"), { allowed: true }, "a new window");
  now += WINDOW_MS;
  budget.take("c");
  assert.equal(budget.size, 1, "ended windows are forgotten");
});

Deno.test("a window refuses to its last millisecond, and ends exactly windowMs after it opened", () => {
  let now = 0;
  const budget = new FixedWindows(1, WINDOW_MS, () => now);
  assert.deepEqual(budget.take("a"), { allowed: true });
  now = WINDOW_MS - 1;
  assert.deepEqual(budget.take("a"), { allowed: false, retryAfterMs: 1 });
  now = WINDOW_MS;
  assert.deepEqual(budget.take("a"), { allowed: true });
});

Deno.test("a new key's window forgets no window still open", () => {
  let now = 0;
  const budget = new FixedWindows(1, WINDOW_MS, () => now);
  budget.take("a");
  now = 10_000;
  assert.deepEqual(budget.take("b"), { allowed: true });
  assert.deepEqual(budget.take("a"), { allowed: false, retryAfterMs: WINDOW_MS - 10_000 });
  assert.equal(budget.size, 2);
});
