/**
 * A run that scans several segments at once (`segmentsPerRun`): each lane claims its own
 * segment, a budget found spent by one lane stops the others, every segment is given
 * back, and the run hands on once; the budget counts the isolate's pages in flight
 * (PagesInFlight, pages_in_flight.ts).
 */

import assert from "node:assert/strict";
import { PagesInFlight, runWorker } from "./backfill_worker.ts";
import { fakeCpuMeter } from "./testing_fakes.ts";
import {
  backfillDb,
  checkpointArgs,
  claim,
  item,
  keyOf,
  pagedDynamo,
  workerDeps,
} from "./backfill_worker_fakes.ts";

Deno.test("a run with two lanes scans two segments at once, each page with its own checkpoint", async () => {
  const db = backfillDb([claim({ segment: 1 }), claim({ segment: 2 })]);
  const inFlightSeen: number[] = [];
  const inFlight = new PagesInFlight();
  const dynamo = pagedDynamo({
    "null": { Items: [item("a")], LastEvaluatedKey: keyOf("a") },
    [JSON.stringify(keyOf("a"))]: { Items: [item("b")] },
  }, () => inFlightSeen.push(inFlight.count));
  const { deps, woken } = workerDeps(db, dynamo, { segmentsPerRun: 2, inFlight });
  const result = await runWorker(deps, "worker-a");
  assert.deepEqual(result, {
    segmentsFinished: 2,
    pages: 4,
    items: 4,
    rows: 4,
    stoppedBy: "no work",
    resumed: 0,
  });
  assert.deepEqual(dynamo.sent.map((c) => c.input.Segment).sort(), [1, 1, 2, 2]);
  assert.ok(inFlightSeen.some((n) => n === 2), "both lanes had a page in flight at once");
  const checkpoints = db.matching("sync.checkpoint_segment").map(checkpointArgs);
  for (const segment of [1, 2]) {
    assert.deepEqual(
      checkpoints.filter((a) => a[1] === segment).map((a) => a[6]),
      [false, true],
      `segment ${segment}: a page, then its last`,
    );
  }
  // Each lane holds its segment under an id of its own, and checkpoints under it.
  const claimers = db.matching("sync.claim_segment").map((s) => s.values[1]);
  assert.deepEqual(new Set(claimers), new Set(["worker-a/1", "worker-a/2"]));
  for (const segment of [1, 2]) {
    assert.equal(
      new Set(checkpoints.filter((a) => a[1] === segment).map((a) => a[2])).size,
      1,
      `segment ${segment}: one lane's`,
    );
  }
  assert.equal(inFlight.count, 0, "every page ended");
  assert.equal(woken.count, 0, "nothing to hand on");
  assert.equal(db.matching("sync.backfill_work_pending").length, 1, "one wake check per run");
});

Deno.test("when one lane finds the budget spent, every lane gives its segment back and the run hands on once", async () => {
  const db = backfillDb([claim({ segment: 1 }), claim({ segment: 2 }), claim({ segment: 3 })]);
  const dynamo = pagedDynamo({
    "null": { Items: [item("a")], LastEvaluatedKey: keyOf("a") },
    [JSON.stringify(keyOf("a"))]: { Items: [item("b")], LastEvaluatedKey: keyOf("b") },
    [JSON.stringify(keyOf("b"))]: { Items: [item("c")] },
  });
  // 300 ms per page, a budget of 1000 ms: the pages in flight count against it.
  const cpu = fakeCpuMeter(0, 300);
  const { deps, woken } = workerDeps(db, dynamo, {
    segmentsPerRun: 2,
    cpu,
    cpuBudgetMs: 1000,
  });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "budget");
  assert.equal(result.segmentsFinished, 0);
  assert.ok(cpu.usedMs() < 1000 + 2 * 300, `CPU ${cpu.usedMs()} stays near the budget`);
  const released = db.matching("sync.release_segment").map((s) => s.values[1]).sort();
  assert.deepEqual(released, [1, 2], "both lanes' segments given back");
  assert.equal(db.matching("sync.claim_segment").length, 2, "no claim after the stop");
  assert.equal(woken.count, 1, "one hand-on for the run");
  assert.match(result.handedOn!, /segment [12]\/4 .*: budget spent \(isolate CPU \d+ ms\)$/);
});
