import assert from "node:assert/strict";
import { logLine } from "./isolate_process.ts";

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
