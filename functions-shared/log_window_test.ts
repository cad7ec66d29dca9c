import assert from "node:assert/strict";
import { LOG_WINDOW_MS, LogWindow } from "./log_window.ts";

/** A window of 3 lines on a clock the test moves; the lines it said and its timers. */
function window() {
  let now = 1_000;
  const lines: string[] = [];
  const timers: { task: () => void; ms: number; cancelled: boolean }[] = [];
  const w = new LogWindow(
    (line) => lines.push(line),
    "each segment's cause is in sync.backfill_segments.error",
    3,
    () => now,
    (task, ms) => {
      const timer = { task, ms, cancelled: false };
      timers.push(timer);
      return () => (timer.cancelled = true);
    },
  );
  return { w, lines, timers, advance: (ms: number) => (now += ms) };
}

Deno.test("a window says its first lines, counts the rest, and says the count as the next begins", () => {
  const { w, lines, advance } = window();
  for (let i = 0; i < 10; i++) {
    w.line(`segment ${i}: InternalServerError; released for a later worker`);
    advance(500);
  }
  assert.deepEqual(lines, [
    "segment 0: InternalServerError; released for a later worker",
    "segment 1: InternalServerError; released for a later worker",
    "segment 2: InternalServerError; released for a later worker",
  ]);
  advance(LOG_WINDOW_MS);
  w.line("segment 10: InternalServerError; released for a later worker");
  assert.deepEqual(lines.slice(3), [
    "…and 7 more lines of this isolate in 10 s, not logged one by one " +
    "(each segment's cause is in sync.backfill_segments.error)",
    "segment 10: InternalServerError; released for a later worker",
  ]);
});

Deno.test("the count of a burst's last window is said at its end, by a timer", () => {
  const { w, lines, timers, advance } = window();
  for (let i = 0; i < 5; i++) w.line(`line ${i}`);
  assert.equal(lines.length, 3);
  assert.equal(timers.length, 1, "one timer for the window, however many lines it holds");
  assert.equal(timers[0].ms, LOG_WINDOW_MS);
  advance(LOG_WINDOW_MS);
  timers[0].task();
  assert.equal(lines.length, 4);
  assert.match(lines[3], /^…and 2 more lines of this isolate in 10 s/);
  w.line("line 5");
  assert.equal(lines.at(-1), "line 5", "a new window says its lines again");
});

Deno.test("a window that held nothing says no count", () => {
  const { w, lines, timers, advance } = window();
  w.line("one");
  advance(LOG_WINDOW_MS * 2);
  w.line("two");
  assert.deepEqual(lines, ["one", "two"]);
  assert.equal(timers.length, 0);
});
