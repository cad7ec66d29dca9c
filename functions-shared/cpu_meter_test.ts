import assert from "node:assert/strict";
import {
  aheadAtArrival,
  ARRIVAL_SLACK_MS,
  countingArrivals,
  ESTIMATE_FACTOR,
  estimatingMeter,
  isolateCpuMeter,
  processMeter,
  REQUEST_CPU_FLOOR_MS,
  requestCpuBudget,
  RUNTIME_CPU_SOFT_LIMIT_MS,
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

Deno.test("a request's arrival puts an estimate past the soft limit and the slack that far ahead of the isolate's CPU", async () => {
  let now = 2_500; // a cold isolate's boot on a busy machine: 2.5 s of wall time
  const meter = estimatingMeter(() => now);
  assert.equal(meter.aheadMs(), 0);
  const handler = countingArrivals(meter, () => meter.aheadMs());
  // The runtime routes requests only to an isolate under its soft limit; a long turn of
  // its event loop may take it a little past before it is retired.
  assert.equal(RUNTIME_CPU_SOFT_LIMIT_MS + ARRIVAL_SLACK_MS, 1_200);
  assert.equal(await handler(new Request("http://localhost/")), 1_300, "told before the handler");
  // A budget of 1,100 ms and a ceiling of 1,700 ms of real CPU, in the meter's terms: the
  // floor (2,600) is more than the budget (2,400).
  assert.equal(requestCpuBudget(meter, 1_100, 1_700), 2_500 + REQUEST_CPU_FLOOR_MS);
  // A budget of 1,500 ms moves up as far: 2,800, past the floor.
  assert.equal(requestCpuBudget(meter, 1_500, 1_700), 2_800);
  // Without an arrival, the floor stops at the ceiling, which the reading is past.
  assert.equal(requestCpuBudget(estimatingMeter(() => 3_500), 1_100, 1_700), 1_700);
  meter.measure(() => (now += 100));
  assert.equal(meter.usedMs(), 2_500 + ESTIMATE_FACTOR * 100 + STEP_OVERHEAD_MS);
  meter.requestArrived();
  assert.equal(meter.aheadMs(), 1_603, "the latest arrival's reading");
  // An arrival under the soft limit and the slack says nothing.
  const quiet = estimatingMeter(() => 1_150);
  quiet.requestArrived();
  assert.equal(quiet.aheadMs(), 0);
  assert.equal(requestCpuBudget(quiet, 1_100, 1_700), 1_250);
  assert.equal(aheadAtArrival(1_250), 50);
});

Deno.test("the process meter reads the real CPU: an arrival puts it ahead of nothing", () => {
  const meter = processMeter(() => ({ user: 3_000_000, system: 0 }));
  meter.requestArrived();
  assert.equal(meter.aheadMs(), 0);
});
