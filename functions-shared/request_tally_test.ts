import assert from "node:assert/strict";
import { RequestTally, TALLY_EVERY_MS } from "./request_tally.ts";
import type { ScanResult } from "./segment_work.ts";

const run = (over: Partial<ScanResult> = {}): ScanResult => ({
  segmentsFinished: 0,
  pages: 3,
  items: 300,
  rows: 310,
  stoppedBy: "budget",
  resumed: 1,
  ...over,
});

/** A tally on a clock the test moves, and the lines it said; `timers` its scheduled lines. */
function tally() {
  let now = 1_000;
  const lines: string[] = [];
  const timers: { task: () => void; ms: number; cancelled: boolean }[] = [];
  const t = new RequestTally("import-worker", (line) => lines.push(line), () => now, (task, ms) => {
    const timer = { task, ms, cancelled: false };
    timers.push(timer);
    return () => (timer.cancelled = true);
  });
  return { t, lines, timers, advance: (ms: number) => (now += ms) };
}

Deno.test("an isolate's requests are said once every 10 s, summed, not once each", () => {
  const { t, lines, advance } = tally();
  for (let i = 0; i < 40; i++) {
    t.add(
      run({
        handedOn: `backfill job 7 segment ${i % 4}/4 of t: budget spent (isolate CPU 1204 ms)`,
      }),
    );
    advance(200);
  }
  // 40 requests over 8 s: nothing yet.
  assert.deepEqual(lines, []);
  advance(TALLY_EVERY_MS - 8_000);
  t.add(run({ stoppedBy: "no work", pages: 1, items: 5, rows: 5, resumed: 0 }));
  assert.deepEqual(lines, [
    "import-worker: this isolate's last 10.0 s: 41 requests (40 stopped by their budget, " +
    "1 with no work left), 121 pages, 12005 items, 12405 rows, 40 segments resumed from a " +
    "checkpoint; the last handed on: backfill job 7 segment 3/4 of t: budget spent (isolate CPU 1204 ms)",
  ]);
  // A new window: the next line counts only what came after.
  advance(TALLY_EVERY_MS);
  t.add(run({ stoppedBy: "throttled", resumed: 0 }));
  t.add("failed");
  assert.equal(lines.length, 2);
  assert.equal(
    lines[1],
    "import-worker: this isolate's last 10.0 s: 1 request (1 throttled), 3 pages, " +
      "300 items, 310 rows, 0 segments resumed from a checkpoint",
  );
  t.flush();
  assert.equal(
    lines[2],
    "import-worker: this isolate's last 0.0 s: 1 request (1 failed), 0 pages, 0 items, 0 rows, " +
      "0 segments resumed from a checkpoint",
  );
});

Deno.test("a flush with nothing counted says nothing (an isolate retired idle)", () => {
  const { t, lines, advance } = tally();
  advance(60_000);
  t.flush();
  assert.deepEqual(lines, []);
});

Deno.test("once the isolate is retired, what was counted is said, and each request still running as it ends", () => {
  const { t, lines } = tally();
  t.add(run());
  t.retire();
  assert.equal(lines.length, 1);
  assert.match(lines[0], /: 1 request \(1 stopped by their budget\), 3 pages/);
  t.add(run({ stoppedBy: "no work", handedOn: undefined }));
  assert.equal(lines.length, 2, "said at once: the isolate may end with it");
  assert.match(lines[1], /: 1 request \(1 with no work left\), 3 pages/);
});

Deno.test("the last requests of a burst are said at their window's end, by a timer", () => {
  const { t, lines, timers, advance } = tally();
  advance(4_000);
  t.add(run());
  t.add(run());
  assert.equal(timers.length, 1, "one timer a window");
  assert.equal(timers[0].ms, TALLY_EVERY_MS - 4_000, "at the window's end");
  advance(6_000);
  timers[0].task();
  assert.equal(lines.length, 1);
  assert.match(lines[0], /last 10\.0 s: 2 requests/);
  // A window said by a request's end cancels its timer.
  t.add(run());
  advance(TALLY_EVERY_MS);
  t.add(run());
  assert.equal(lines.length, 2);
  assert.equal(timers[1].cancelled, true);
});
