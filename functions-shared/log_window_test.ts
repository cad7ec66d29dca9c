import assert from "node:assert/strict";
import {
  FirstLines,
  kindOf,
  LINES_PER_KIND,
  LINES_PER_WINDOW,
  LOG_WINDOW_MS,
  LogWindow,
} from "./log_window.ts";

const WHERE = "each segment's cause is in sync.backfill_segments.error";

/** A window on a clock the test moves; the lines it said and its timers. */
function window() {
  let now = 1_000;
  const lines: string[] = [];
  const timers: { task: () => void; ms: number; cancelled: boolean }[] = [];
  const w = new LogWindow((line) => lines.push(line), WHERE, () => now, (task, ms) => {
    const timer = { task, ms, cancelled: false };
    timers.push(timer);
    return () => (timer.cancelled = true);
  });
  return { w, lines, timers, advance: (ms: number) => (now += ms) };
}

const failed = (segment: number) =>
  `backfill job 7 segment ${segment}/8 of firespring_actions: InternalServerError; released for a later worker`;

Deno.test("a line's kind leaves out its numbers and quoted values", () => {
  assert.equal(kindOf(failed(3)), kindOf(failed(5)));
  assert.equal(
    kindOf('re-read of firespring_visitors {"visitor_id":"v-1"} failed: throttled'),
    kindOf('re-read of firespring_visitors {"visitor_id":"v-22"} failed: throttled'),
  );
  assert.notEqual(kindOf(failed(3)), kindOf("applying the batch failed: function does not exist"));
});

Deno.test("a window says the first lines of a kind, counts the rest, and says the count as the next begins", () => {
  const { w, lines, advance } = window();
  for (let i = 0; i < 10; i++) {
    w.line(failed(i));
    advance(500);
  }
  assert.deepEqual(lines, [failed(0), failed(1), failed(2)]);
  advance(LOG_WINDOW_MS);
  w.line(failed(10));
  assert.deepEqual(lines.slice(LINES_PER_KIND), [
    `…and 7 more lines of this isolate in 10 s like those above, not logged one by one (${WHERE})`,
    failed(10),
  ]);
});

Deno.test("a cause met once is said though a flood of another kind came first", () => {
  const { w, lines } = window();
  for (let i = 0; i < 100; i++) w.line(failed(i));
  w.line("applying the batch failed: function sync.merge_changes does not exist");
  assert.equal(lines.length, LINES_PER_KIND + 1);
  assert.equal(
    lines.at(-1),
    "applying the batch failed: function sync.merge_changes does not exist",
  );
});

Deno.test("a window says at most its share in all, however many kinds", () => {
  const { w, lines } = window();
  for (let i = 0; i < LINES_PER_WINDOW + 10; i++) w.line(`cause number ${"x".repeat(i)}`);
  assert.equal(lines.length, LINES_PER_WINDOW);
});

Deno.test("a line goes where it is told; the count to the window's own log", () => {
  const { w, lines, timers, advance } = window();
  const routine: string[] = [];
  for (let i = 0; i < 5; i++) w.line(`backfill job ${i}: its end is over`, (l) => routine.push(l));
  assert.equal(routine.length, LINES_PER_KIND);
  assert.equal(lines.length, 0);
  assert.equal(timers.length, 1, "one timer for the window, however many lines it holds");
  assert.equal(timers[0].ms, LOG_WINDOW_MS);
  advance(LOG_WINDOW_MS);
  timers[0].task();
  assert.match(lines[0], /^…and 2 more lines of this isolate in 10 s/);
});

Deno.test("a retiring isolate says its count as each request ends, with no timer", () => {
  const { w, lines, timers } = window();
  for (let i = 0; i < 5; i++) w.line(failed(i));
  assert.equal(timers.length, 1);
  w.retire();
  assert.equal(timers[0].cancelled, true);
  assert.match(lines.at(-1)!, /^…and 2 more lines/);
  for (let i = 0; i < 5; i++) w.line(failed(i));
  assert.equal(timers.length, 1, "no timer that the isolate's end would leave unfired");
  w.whenRequestEnds();
  assert.match(lines.at(-1)!, /^…and 2 more lines/);
  w.whenRequestEnds();
  assert.equal(lines.filter((l) => l.startsWith("…")).length, 2, "nothing held, nothing said");
});

Deno.test("a window that held nothing says no count", () => {
  const { w, lines, timers, advance } = window();
  w.line("one");
  advance(LOG_WINDOW_MS * 2);
  w.line("two");
  w.retire();
  w.whenRequestEnds();
  assert.deepEqual(lines, ["one", "two"]);
  assert.equal(timers.length, 0);
});

Deno.test("a run's first lines are said and the rest counted, for its closing line", () => {
  const said: string[] = [];
  const first = new FirstLines(2, (line) => said.push(line));
  for (let i = 0; i < 5; i++) first.line(`edit ${i}: failed`);
  assert.deepEqual(said, ["edit 0: failed", "edit 1: failed"]);
  assert.equal(first.unlogged, 3);
  assert.equal(new FirstLines(2).unlogged, 0, "nothing counted, nothing unlogged");
});
