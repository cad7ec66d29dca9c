import assert from "node:assert/strict";
import { logLine, memoryPeaks } from "./isolate_process.ts";

Deno.test("an isolate's log line carries the time it was read and the isolate's name", () => {
  assert.equal(
    logLine(
      "import-worker#3",
      "backfill job 7 segment 0/4: done",
      new Date(Date.UTC(2026, 10, 30, 7, 1, 2, 345)),
    ),
    "2026-11-30T07:01:02.345Z [import-worker#3] backfill job 7 segment 0/4: done",
  );
});

Deno.test("the supervisor reads an isolate's highest memory since its last look, not the last report", () => {
  const peaks = memoryPeaks();
  assert.equal(peaks.peak(), 0, "no report yet");
  peaks.report(40);
  peaks.report(300);
  peaks.report(60);
  assert.equal(peaks.peak(), 300, "a peak between two looks counts");
  assert.equal(peaks.peak(), 60, "with no report since, the last one's");
  peaks.report(20);
  assert.equal(
    peaks.peak(),
    60,
    "the level at the last look counts: the isolate held it until the report after",
  );
  assert.equal(peaks.peak(), 20);
});
