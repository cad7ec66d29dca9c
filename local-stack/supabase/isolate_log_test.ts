import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import type { IsolateLine } from "./edge_isolates.ts";
import { isolateLinesSince, isolateLogOffset, killsSince, wasKilled } from "./isolate_log.ts";

function line(fn: string, isolate: number, reason: string): IsolateLine {
  return {
    function: fn,
    isolate,
    pid: 100 + isolate,
    started_at: "2026-11-28T10:00:00.000Z",
    ended_at: "2026-11-28T10:00:05.000Z",
    requests: 3,
    cpu_ms: 2013.4,
    wall_ms: 5000,
    reason,
  };
}

Deno.test("only the lines appended after the offset are read", () => {
  const log = Deno.makeTempFileSync({ prefix: "isolate-log-test-", suffix: ".jsonl" });
  try {
    appendFileSync(log, JSON.stringify(line("import-worker", 1, "CPUTime")) + "\n");
    const offset = isolateLogOffset(log);
    appendFileSync(log, JSON.stringify(line("import-worker", 2, "idle")) + "\n");
    assert.deepEqual(isolateLinesSince(offset, log).map((l) => l.isolate), [2]);
    assert.deepEqual(isolateLinesSince(0, log).map((l) => l.isolate), [1, 2]);
  } finally {
    Deno.removeSync(log);
  }
});

Deno.test("a missing log has no lines and offset 0", () => {
  assert.equal(isolateLogOffset("/nonexistent/edge-isolates.jsonl"), 0);
  assert.deepEqual(isolateLinesSince(0, "/nonexistent/edge-isolates.jsonl"), []);
});

Deno.test("kills are the hard limits of the named functions, each described", () => {
  const log = Deno.makeTempFileSync({ prefix: "isolate-log-test-", suffix: ".jsonl" });
  try {
    for (
      const l of [
        line("import-worker", 1, "CPUTime"),
        line("import-worker", 2, "retired at the soft CPU limit"),
        line("burn-cpu", 3, "CPUTime"),
        line("data-checksum-validator", 4, "Memory"),
      ]
    ) appendFileSync(log, JSON.stringify(l) + "\n");
    assert.equal(wasKilled(line("x", 1, "WallClockTime")), true);
    assert.equal(wasKilled(line("x", 1, "idle")), false);
    assert.deepEqual(killsSince(0, ["import-worker", "data-checksum-validator"], log), [
      "import-worker isolate 1 was killed for CPUTime after 2013 ms of CPU, 5000 ms of wall " +
      "clock and 3 requests (ended 2026-11-28T10:00:05.000Z)",
      "data-checksum-validator isolate 4 was killed for Memory after 2013 ms of CPU, 5000 ms " +
      "of wall clock and 3 requests (ended 2026-11-28T10:00:05.000Z)",
    ]);
  } finally {
    Deno.removeSync(log);
  }
});
