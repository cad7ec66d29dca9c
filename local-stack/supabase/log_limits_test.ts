import assert from "node:assert/strict";
import {
  LOG_EVENTS_PER_WINDOW,
  LOG_MESSAGE_MAX_CHARS,
  LOG_WINDOW_MS,
  LogLimits,
  OVER_LOG_LIMIT,
} from "./log_limits.ts";

Deno.test("past 100 events of a function in 10 s, its lines are marked as hosted drops them", () => {
  let now = 0;
  const limits = new LogLimits(() => now);
  for (let i = 0; i < LOG_EVENTS_PER_WINDOW; i++) {
    assert.equal(limits.mark("validator", `l${i}`), `l${i}`);
  }
  assert.equal(limits.mark("validator", "one more"), `${OVER_LOG_LIMIT}one more`);
  assert.equal(limits.mark("import-worker", "another function"), "another function");
  now = LOG_WINDOW_MS;
  assert.equal(limits.mark("validator", "a new window"), "a new window");
});

Deno.test("a message past 10,000 characters is cut there, and says so", () => {
  const limits = new LogLimits(() => 0);
  const long = "x".repeat(LOG_MESSAGE_MAX_CHARS + 5);
  assert.equal(
    limits.mark("f", long),
    `${"x".repeat(LOG_MESSAGE_MAX_CHARS)} [cut at hosted's 10000 characters]`,
  );
  assert.equal(limits.mark("f", "x".repeat(LOG_MESSAGE_MAX_CHARS)).length, LOG_MESSAGE_MAX_CHARS);
});
