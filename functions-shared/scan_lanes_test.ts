import assert from "node:assert/strict";
import { laneId, ScanLanes } from "./scan_lanes.ts";
import type { ScanResult } from "./segment_work.ts";

const result = (stoppedBy: ScanResult["stoppedBy"], n = 1): ScanResult => ({
  segmentsFinished: n,
  pages: 2 * n,
  items: 3 * n,
  rows: 4 * n,
  stoppedBy,
  resumed: n,
  ...(stoppedBy === "budget" ? { handedOn: `segment ${n}: budget spent` } : {}),
});

Deno.test("ScanLanes sums its lanes: stopped by the budget if one was, else throttled if one was", async () => {
  const lanes = new ScanLanes();
  lanes.add(Promise.resolve(result("no work")));
  lanes.add(Promise.resolve(result("throttled", 2)));
  assert.deepEqual(await lanes.settle(), { total: result("throttled", 3) });
  const budget = new ScanLanes();
  budget.add(Promise.resolve(result("throttled")));
  budget.add(Promise.resolve(result("budget")));
  const { total } = await budget.settle();
  assert.equal(total.stoppedBy, "budget");
  assert.equal(total.handedOn, "segment 1: budget spent", "why its lane handed on");
});

Deno.test("ScanLanes waits for every lane and answers the first failure with the others' sum", async () => {
  const lanes = new ScanLanes();
  let lateDone = false;
  lanes.add(Promise.reject(new Error("first")));
  lanes.add(
    new Promise((resolve) =>
      setTimeout(() => {
        lateDone = true;
        resolve(result("budget"));
      }, 10)
    ),
  );
  const { total, failure } = await lanes.settle();
  assert.ok(lateDone, "the other lane ran to its end");
  assert.equal((failure as Error).message, "first");
  assert.deepEqual(total, result("budget"));
});

Deno.test("ScanLanes.stop ends the lanes' wait and marks them stopped", async () => {
  const lanes = new ScanLanes();
  assert.equal(lanes.stopped, false);
  lanes.stop();
  assert.equal(lanes.stopped, true);
  await lanes.stopping;
});

Deno.test("each lane of a request has an id of its own; a request of one lane keeps its own", () => {
  assert.equal(laneId("w", 0, 1), "w");
  assert.deepEqual([0, 1, 2].map((i) => laneId("w", i, 3)), ["w/1", "w/2", "w/3"]);
});
