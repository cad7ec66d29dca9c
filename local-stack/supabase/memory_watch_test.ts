import assert from "node:assert/strict";
import { MEMORY_REPORT_MS } from "./edge_limits.ts";
import { afterEachCollection, BUSY_TAIL_MS, MemoryWatch } from "./memory_watch.ts";

/** A watch over a fake isolate: its memory and pending count set by hand, a fake clock. */
function fakeIsolate() {
  const state = { memoryMb: 10, pending: 0, now: 0 };
  const lines: string[] = [];
  const timers = new Map<number, { fn: () => void; ms: number; next: number }>();
  let ids = 0;
  const watch = new MemoryWatch({
    memoryMb: () => state.memoryMb,
    pendingTasks: () => state.pending,
    write: (line) => lines.push(line),
    now: () => state.now,
    every: (fn, ms) => {
      const id = ++ids;
      timers.set(id, { fn, ms, next: state.now + ms });
      return () => timers.delete(id);
    },
    after: (fn, ms) => {
      const id = ++ids;
      timers.set(id, {
        fn: () => (timers.delete(id), fn()),
        ms: Infinity,
        next: state.now + ms,
      });
    },
  });
  /** Moves the clock on, firing each interval as it falls due. */
  const advance = (ms: number) => {
    const until = state.now + ms;
    for (;;) {
      const due = [...timers.values()].filter((t) => t.next <= until)
        .sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      state.now = due.next;
      due.next += due.ms;
      due.fn();
    }
    state.now = until;
  };
  return { state, lines, timers, watch, advance };
}

Deno.test("an idle isolate is not looked at on the clock, and reports once at its start", () => {
  const { lines, timers, watch, advance } = fakeIsolate();
  assert.equal(lines.length, 1, "the first report");
  assert.equal(timers.size, 0);
  assert.equal(watch.watching, false);
  advance(60_000);
  assert.equal(lines.length, 1);
});

Deno.test("while a request is handled memory is looked at every report interval, and written when it changes", () => {
  const { state, lines, watch, advance } = fakeIsolate();
  const ended = watch.requestStarted();
  assert.equal(watch.watching, true);
  state.memoryMb = 50;
  advance(MEMORY_REPORT_MS);
  assert.equal(lines.length, 2);
  assert.match(lines[1], / 50\.0 0$/);
  advance(MEMORY_REPORT_MS * 4);
  assert.equal(lines.length, 2, "nothing changed: nothing written");
  state.memoryMb = 20;
  ended();
  assert.equal(lines.length, 2, "nothing written as the request ends");
  advance(MEMORY_REPORT_MS);
  assert.match(lines.at(-1)!, / 20\.0 0$/, "written at the next look");
  // Still looked at for the tail after the request (a response body still streaming).
  advance(BUSY_TAIL_MS - 2 * MEMORY_REPORT_MS);
  assert.equal(watch.watching, true);
  state.memoryMb = 30;
  advance(MEMORY_REPORT_MS);
  assert.match(lines.at(-1)!, / 30\.0 0$/);
  advance(MEMORY_REPORT_MS);
  assert.equal(watch.watching, false, "idle once the tail has passed");
});

Deno.test("a pending waitUntil keeps the isolate busy, and each change of the count is written at the next look", () => {
  const { state, lines, watch, advance } = fakeIsolate();
  state.pending = 1;
  watch.tasksChanged();
  assert.equal(watch.watching, true);
  advance(MEMORY_REPORT_MS);
  assert.match(lines.at(-1)!, / 10\.0 1$/);
  advance(BUSY_TAIL_MS * 5);
  assert.equal(watch.watching, true, "busy while the task is pending");
  state.pending = 0;
  watch.tasksChanged();
  advance(MEMORY_REPORT_MS);
  assert.match(lines.at(-1)!, / 10\.0 0$/);
  advance(BUSY_TAIL_MS + MEMORY_REPORT_MS);
  assert.equal(watch.watching, false);
});

Deno.test("two requests at once: busy until the last has ended, and an end called twice counts once", () => {
  const { watch, advance } = fakeIsolate();
  const first = watch.requestStarted();
  const second = watch.requestStarted();
  first();
  first();
  advance(BUSY_TAIL_MS * 3);
  assert.equal(watch.watching, true, "the second is still in flight");
  second();
  advance(BUSY_TAIL_MS + MEMORY_REPORT_MS);
  assert.equal(watch.watching, false);
});

Deno.test("a timer of the function's own is looked after at once and once more a look later, never on the clock", () => {
  const { state, lines, timers, watch, advance } = fakeIsolate();
  state.memoryMb = 40;
  watch.timerRan();
  assert.match(lines.at(-1)!, / 40\.0 0$/, "seen at once");
  assert.equal(watch.watching, false, "not busy: an interval would keep it so for ever");
  state.memoryMb = 45;
  watch.timerRan();
  assert.equal(timers.size, 1, "one look again, not one a timer");
  state.memoryMb = 60;
  advance(MEMORY_REPORT_MS);
  assert.match(lines.at(-1)!, / 60\.0 0$/, "what its promises went on to do, a look later");
  assert.equal(timers.size, 0);
  advance(60_000);
  assert.equal(lines.length, 4, "then nothing");
});

Deno.test("a garbage collection while idle writes what changed", () => {
  const { state, lines, watch } = fakeIsolate();
  state.memoryMb = 120;
  watch.collected();
  assert.match(lines.at(-1)!, / 120\.0 0$/);
  assert.equal(watch.watching, false);
});

Deno.test("afterEachCollection calls back after garbage collections, again and again", async () => {
  let calls = 0;
  afterEachCollection(() => calls++);
  const kept: number[][] = [];
  for (let round = 0; round < 20 && calls < 2; round++) {
    // Enough young objects for V8 to collect several times over.
    for (let i = 0; i < 200; i++) kept.push(new Array(10_000).fill(i));
    kept.length = 0;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(calls >= 2, `called back ${calls} times`);
});
