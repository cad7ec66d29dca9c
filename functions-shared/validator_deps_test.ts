/** A validation request's budget: the isolate's CPU, with the request's own floor. */

import assert from "node:assert/strict";
import { REQUEST_CPU_FLOOR_MS } from "./cpu_meter.ts";
import { fakeCpuMeter } from "./testing_fakes.ts";
import { budgetCheck, type ValidatorDeps, withRequestCpuBudget } from "./validator_deps.ts";

Deno.test("a request in an isolate its meter puts past the budget still gets the floor's worth of CPU, up to the ceiling", () => {
  // An estimate ahead of the runtime's count: the hand-on came back to this isolate.
  const cpu = fakeCpuMeter(1_200, 60);
  const budget = { cpuMs: 1_100, wallMs: 1e9 };
  const request = withRequestCpuBudget({ cpu, budget } as unknown as ValidatorDeps);
  assert.equal(REQUEST_CPU_FLOOR_MS, 100);
  assert.equal(request.budget!.requestCpuMs, 1_300);
  assert.equal(
    withRequestCpuBudget(request),
    request,
    "set once a request (a repair's second pass gets none)",
  );
  const spent = budgetCheck(request, performance.now());
  assert.equal(spent(), false, "1,200 ms: under 1,200 + the floor");
  cpu.measure(() => 0);
  assert.equal(spent(), false, "1,260 ms");
  cpu.measure(() => 0);
  assert.equal(spent(), true, "1,320 ms: past 1,300");
  // Never past the ceiling of pages in flight (1.4 × the budget), nor below the budget.
  const late = withRequestCpuBudget(
    { cpu: fakeCpuMeter(1_500), budget } as unknown as ValidatorDeps,
  );
  assert.equal(late.budget!.requestCpuMs, 1_540);
  const early = withRequestCpuBudget(
    { cpu: fakeCpuMeter(300), budget } as unknown as ValidatorDeps,
  );
  assert.equal(early.budget!.requestCpuMs, 1_100);
});

Deno.test("a request whose meter read past the hard limit when it arrived still gets the floor's worth", () => {
  // A CI run under load: a cold validator isolate read 2,753 ms at its first request.
  const budget = { cpuMs: 1_100, wallMs: 1e9 };
  const stalled = withRequestCpuBudget(
    { cpu: fakeCpuMeter(2_753), budget } as unknown as ValidatorDeps,
  );
  assert.ok(budgetCheck(stalled, performance.now())(), "without the arrival: spent at once");
  const cpu = fakeCpuMeter(2_753, 60);
  cpu.requestArrived();
  const request = withRequestCpuBudget({ cpu, budget } as unknown as ValidatorDeps);
  assert.equal(request.budget!.requestCpuMs, 2_853, "the reading plus the floor");
  const spent = budgetCheck(request, performance.now());
  assert.equal(spent(), false);
  cpu.measure(() => 0);
  assert.equal(spent(), false, "2,813 ms");
  cpu.measure(() => 0);
  assert.equal(spent(), true, "2,873 ms: past 2,853");
});
