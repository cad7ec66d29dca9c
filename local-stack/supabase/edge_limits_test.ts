import assert from "node:assert/strict";
import process from "node:process";
import {
  DRAIN_SIGNAL,
  type EdgeLimits,
  judge,
  memoryAlert,
  memoryReportLine,
  nearsRetirement,
  parseMemoryReport,
  readEdgeLimits,
  readProcStat,
  RETIRE_SIGNALS,
} from "./edge_limits.ts";

const limits: EdgeLimits = readEdgeLimits({});
const reading = (cpuMs: number, wallMs = 0, memoryMb = 0) => ({ cpuMs, wallMs, memoryMb });

Deno.test("the defaults are the hosted runtime's", () => {
  assert.deepEqual(limits, {
    cpuSoftMs: 1000,
    cpuHardMs: 2000,
    wallClockMs: 150_000,
    memoryMb: 256,
    idleMs: 60_000,
    pollMs: 25,
    callsPerMinute: 5_000,
  });
  assert.equal(readEdgeLimits({ EDGE_WALL_CLOCK_LIMIT_MS: "400000" }).wallClockMs, 400_000);
  assert.equal(readEdgeLimits({ EDGE_CALLS_PER_MINUTE: "0" }).callsPerMinute, 0);
});

Deno.test("bad limits are refused, each named", () => {
  assert.throws(
    () => readEdgeLimits({ EDGE_CPU_SOFT_MS: "1e3", EDGE_MEMORY_MB: "-1" }),
    /EDGE_CPU_SOFT_MS is "1e3"; it must be a whole number from 1 to 3600000; EDGE_MEMORY_MB is "-1"/,
  );
  assert.throws(
    () => readEdgeLimits({ EDGE_CPU_SOFT_MS: "3000" }),
    /EDGE_CPU_SOFT_MS \(3000\) is above EDGE_CPU_HARD_MS \(2000\)/,
  );
});

Deno.test("CPU: retired at the soft limit, killed at the hard one, boot included", () => {
  assert.deepEqual(judge(reading(999), limits, false), { action: "none" });
  assert.deepEqual(judge(reading(1000), limits, false), {
    action: "retire",
    reason: "retired: cpu soft limit",
  });
  // Once retired, nothing more until a hard limit.
  assert.deepEqual(judge(reading(1500), limits, true), { action: "none" });
  assert.deepEqual(judge(reading(2000), limits, true), { action: "kill", reason: "CPUTime" });
  assert.deepEqual(judge(reading(2000), limits, false), { action: "kill", reason: "CPUTime" });
});

Deno.test("wall clock: retired at half, killed at the limit", () => {
  assert.deepEqual(judge(reading(0, 74_999), limits, false), { action: "none" });
  assert.deepEqual(judge(reading(0, 75_000), limits, false), {
    action: "retire",
    reason: "retired: wall clock",
  });
  assert.deepEqual(judge(reading(0, 150_000), limits, true), {
    action: "kill",
    reason: "WallClockTime",
  });
});

Deno.test("memory: half raises the alert and retires nothing; the limit kills", () => {
  assert.deepEqual(judge(reading(0, 0, 127.9), limits, false), { action: "none" });
  assert.ok(!memoryAlert(reading(0, 0, 127.9), limits));
  assert.deepEqual(judge(reading(0, 0, 128), limits, false), { action: "none" });
  assert.ok(memoryAlert(reading(0, 0, 128), limits), "dropped once idle (isolate_process.ts)");
  assert.deepEqual(judge(reading(0, 0, 256), limits, false), { action: "kill", reason: "Memory" });
  assert.deepEqual(judge(reading(0, 0, 256), limits, true), { action: "kill", reason: "Memory" });
});

Deno.test("a memory report's line is read back, and no other line is one", () => {
  const line = memoryReportLine({ memoryMb: 130.25, pendingTasks: 2 });
  assert.deepEqual(parseMemoryReport(line), { memoryMb: 130.3, pendingTasks: 2 });
  assert.equal(parseMemoryReport("edge-runtime-memory 1 0"), undefined);
  assert.equal(parseMemoryReport(`${line.split(" ")[0]} x y`), undefined);
  assert.equal(parseMemoryReport("listening"), undefined);
});

Deno.test("readProcStat reads the main thread's utime + stime and rss, even with spaces in the name", () => {
  // proc(5): pid (comm) state ppid ... utime(14) stime(15) ... rss(24)
  const fields = Array.from({ length: 50 }, () => "0");
  fields[13] = "12"; // utime, ticks
  fields[14] = "3"; // stime
  fields[23] = "2560"; // rss, pages
  const line = `4242 (deno main) ${fields.slice(2).join(" ")}`;
  const read: string[] = [];
  assert.deepEqual(readProcStat(4242, (path) => (read.push(path), line)), {
    cpuMs: 150,
    rssMb: 10,
  });
  // The thread the hosted runtime counts: the one that runs the JavaScript.
  assert.deepEqual(read, ["/proc/4242/task/4242/stat"]);
  assert.equal(
    readProcStat(4242, () => {
      throw new Error("gone");
    }),
    undefined,
  );
  // This very process, for real: its main thread has used no more than all its threads.
  const self = readProcStat(Deno.pid);
  const { user, system } = process.cpuUsage();
  assert.ok(self && self.cpuMs >= 0 && self.rssMb > 0);
  assert.ok(self.cpuMs <= (user + system) / 1000 + 10, `${self.cpuMs} ms`);
});

Deno.test("an isolate nears retirement at half its soft CPU limit, whatever its age", () => {
  assert.equal(nearsRetirement(reading(499, 74_000), limits), false);
  assert.equal(nearsRetirement(reading(500), limits), true);
});

Deno.test("each retirement for a limit has a signal of its own, none that opens Deno's inspector", () => {
  const signals = Object.values(RETIRE_SIGNALS).map((r) => r.signal);
  assert.equal(new Set(signals).size, signals.length);
  // SIGUSR1 makes Deno listen for a debugger on 127.0.0.1:9229.
  assert.ok(!signals.includes("SIGUSR1") && !signals.includes(DRAIN_SIGNAL), signals.join(", "));
  assert.deepEqual(Object.values(RETIRE_SIGNALS).map((r) => r.unload), [
    "cpu",
    "wall_clock",
  ], "an early drop for memory is a drain: `beforeunload` early_drop");
});
