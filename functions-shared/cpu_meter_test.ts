import assert from "node:assert/strict";
import {
  ESTIMATE_FACTOR,
  estimatingMeter,
  isolateCpuMeter,
  processMeter,
  STEP_OVERHEAD_MS,
} from "./cpu_meter.ts";

Deno.test("the process meter reads user + system, in ms", () => {
  let usage = { user: 250_000, system: 50_000 };
  const meter = processMeter(() => usage);
  assert.equal(meter.usedMs(), 300);
  usage = { user: 900_000, system: 200_000 };
  assert.equal(meter.usedMs(), 1100);
  assert.equal(meter.measure(() => 42), 42);
  // It reads the CPU itself: a charge adds nothing.
  meter.charge(500);
  assert.equal(meter.usedMs(), 1100);
});

Deno.test("the estimating meter counts the boot's wall time, each step's wall time × the factor, and an allowance per step", () => {
  let now = 400; // the isolate booted 400 ms ago
  const meter = estimatingMeter(() => now);
  assert.equal(meter.source, "estimate");
  assert.equal(meter.usedMs(), 400);
  const value = meter.measure(() => {
    now += 30;
    return "mapped";
  });
  assert.equal(value, "mapped");
  assert.equal(meter.usedMs(), 400 + ESTIMATE_FACTOR * 30 + STEP_OVERHEAD_MS);
  // Time outside measured steps (awaiting I/O) is not CPU.
  now += 5_000;
  assert.equal(meter.usedMs(), 400 + ESTIMATE_FACTOR * 30 + STEP_OVERHEAD_MS);
  // A step that throws is counted too.
  assert.throws(() =>
    meter.measure(() => {
      now += 10;
      throw new Error("bad item");
    })
  );
  assert.equal(meter.usedMs(), 400 + ESTIMATE_FACTOR * 40 + 2 * STEP_OVERHEAD_MS);
  // Quick steps still count their pages' round trips, each.
  for (let i = 0; i < 100; i++) meter.measure(() => 0);
  assert.equal(meter.usedMs(), 400 + ESTIMATE_FACTOR * 40 + 102 * STEP_OVERHEAD_MS);
  // Charged work counts as charged.
  meter.charge(8);
  meter.charge(8);
  assert.equal(meter.usedMs(), 400 + ESTIMATE_FACTOR * 40 + 102 * STEP_OVERHEAD_MS + 16);
});

Deno.test("the hosted stub (zeros) gets the estimate, asked once; Deno gets the process meter", () => {
  let calls = 0;
  const stub = () => {
    calls++;
    return { user: 0, system: 0 };
  };
  const hosted = isolateCpuMeter(stub, () => 120);
  assert.equal(hosted.source, "estimate");
  assert.equal(hosted.usedMs(), 120);
  assert.equal(calls, 1);
  assert.equal(
    isolateCpuMeter(() => {
      throw new Error("no");
    }, () => 1).source,
    "estimate",
  );

  const local = isolateCpuMeter();
  assert.equal(local.source, "process");
  const before = local.usedMs();
  let x = 0;
  for (let i = 0; i < 5_000_000; i++) x += Math.sqrt(i);
  assert.ok(x > 0);
  assert.ok(local.usedMs() > before, "burning CPU shows in the reading");
});
