import assert from "node:assert/strict";
import {
  ISOLATE_CPU_CEILING_MS,
  pageCpuMs,
  runBudget,
  SHARD_CPU_MS,
  TABLE_CPU_MS,
} from "./stream_check_budget.ts";
import { meter } from "./stream_check_test_utils.ts";

Deno.test("a page is charged by its records and bytes: a full one as measured, an empty one little", () => {
  assert.equal(Math.round(pageCpuMs(515, 1_048_576)), 45, "visitors: measured 20-42 ms");
  assert.equal(Math.round(pageCpuMs(1_000, 600_000)), 42, "actions: measured 14-29 ms");
  assert.equal(pageCpuMs(0, 0), 5, "empty: measured 1-2 ms");
  // Few large records are charged by their bytes, not their count.
  assert.ok(pageCpuMs(3, 1_000_000) > 30);
});

Deno.test("a run's allowance counts from its start; the first table and its first page are always read", () => {
  let clock = 0;
  const cpu = meter(900);
  const budget = runBudget(cpu, { runCpuMs: 100, wallMs: 10_000 }, () => clock);
  assert.equal(budget.tableMayStart(), true);
  budget.table();
  budget.shard();
  assert.equal(cpu.used, 900 + TABLE_CPU_MS + SHARD_CPU_MS);
  assert.equal(budget.spent(), false, "no page read yet");
  budget.page(1_000, 1_048_576);
  assert.equal(budget.spent(), false, "65 of 100 ms");
  budget.page(1_000, 1_048_576);
  assert.equal(budget.spent(), true);
  assert.equal(budget.tableMayStart(), false);
  // A spent wall budget stops it too, whatever its CPU.
  const walled = runBudget(meter(0), { runCpuMs: 600, wallMs: 1_000 }, () => clock);
  walled.table();
  walled.page(0, 0);
  assert.equal(walled.spent(), false);
  clock = 1_000;
  assert.equal(walled.spent(), true);
  assert.equal(walled.tableMayStart(), false);
});

Deno.test("no run reads past the isolate's ceiling, whatever its own allowance", () => {
  const cpu = meter(ISOLATE_CPU_CEILING_MS - 10);
  const budget = runBudget(cpu, { runCpuMs: 600, wallMs: 60_000 }, () => 0);
  budget.table();
  budget.page(0, 0);
  assert.equal(budget.spent(), true, `${cpu.used} ms used`);
});

Deno.test("the isolate's ceiling is as far up as the meter is known to run ahead", () => {
  // A cold isolate's boot on a loaded machine: the estimate read 2,200 ms at the arrival.
  const cpu = meter(2_200, 1_000);
  const budget = runBudget(cpu, { runCpuMs: 600, wallMs: 60_000 }, () => 0);
  budget.table();
  budget.page(1_000, 1_000_000);
  assert.equal(
    budget.spent(),
    false,
    `${cpu.used} ms used, ${ISOLATE_CPU_CEILING_MS + 1_000} the ceiling`,
  );
  assert.equal(budget.tableMayStart(), true);
  cpu.used = ISOLATE_CPU_CEILING_MS + 1_000;
  assert.equal(budget.spent(), true);
});

Deno.test("a run on an isolate past its ceiling still starts its first table and reads a page", () => {
  const budget = runBudget(
    meter(ISOLATE_CPU_CEILING_MS + 100),
    { runCpuMs: 600, wallMs: 60_000 },
    () => 0,
  );
  assert.equal(budget.tableMayStart(), true);
  budget.table();
  assert.equal(budget.spent(), false, "its first page");
  budget.page(1, 100);
  assert.equal(budget.spent(), true);
  assert.equal(budget.tableMayStart(), false);
});
