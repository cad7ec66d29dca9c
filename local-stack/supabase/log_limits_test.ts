import assert from "node:assert/strict";
import {
  droppedLines,
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

Deno.test("the lines hosted would drop are found in the log: the first five, then how many more", () => {
  const at = "2026-12-01T05:00:00.000Z";
  const kept = `${at} [import-worker#1] a line kept`;
  const dropped = (i: number) => `${at} [import-worker#1] ${OVER_LOG_LIMIT}line ${i}`;
  assert.deepEqual(droppedLines([kept, dropped(1), kept].join("\n")), [dropped(1)]);
  const many = Array.from({ length: 8 }, (_, i) => dropped(i)).join("\n");
  assert.deepEqual(droppedLines(many), [0, 1, 2, 3, 4].map(dropped).concat("...and 3 more"));
  // A function's own text that quotes the marker is not a dropped line.
  assert.deepEqual(droppedLines(`${at} [mmp-toledo-sync#1] said ${OVER_LOG_LIMIT}`), []);
});

Deno.test("hosted's log limit is 100 events per 10,000 ms, to the event and the millisecond", () => {
  let now = 0;
  const limits = new LogLimits(() => now);
  for (let i = 0; i < 100; i++) assert.equal(limits.mark("f", `l${i}`), `l${i}`);
  assert.equal(limits.mark("f", "101st"), `${OVER_LOG_LIMIT}101st`);
  now = 9_999;
  assert.equal(limits.mark("f", "late"), `${OVER_LOG_LIMIT}late`);
  now = 10_000;
  assert.equal(limits.mark("f", "next window"), "next window");
});
