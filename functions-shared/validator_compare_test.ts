/**
 * The validator's comparison with a fake database (validator_fakes.ts): the compare
 * slice by slice of keys within the budget.
 */

import assert from "node:assert/strict";
import { compareSlices } from "./validator_compare.ts";
import { compareDeps as deps, comparingRun as comparing, runsDb } from "./validator_fakes.ts";

const key = (id: string) => ({ segment_id: id });

Deno.test("compareSlices runs one statement per slice until the compare is done", async () => {
  const db = runsDb({ slices: 8 });
  comparing(db);
  assert.equal(await compareSlices(deps(db), 7, "w1", () => false), "report");
  assert.deepEqual(
    db.matching("sync.compare_checksum_range").map((s) => s.values),
    Array.from({ length: 8 }, () => [7, "w1"]),
  );
});

Deno.test("compareSlices hands on between slices when the budget is spent", async () => {
  const db = runsDb({ slices: 8 });
  const run = comparing(db);
  let calls = 0;
  assert.equal(await compareSlices(deps(db), 7, "w1", () => calls++ >= 3), "budget");
  assert.equal(run.slices, 3, "three slices compared and checkpointed");
  assert.equal(await compareSlices(deps(db), 7, "w1", () => false), "report");
  assert.equal(run.slices, 8, "the next request goes on with the fourth");
});

Deno.test("compareSlices moves on to the rechecks when a key diverges", async () => {
  const db = runsDb({ divergent: () => [{ kind: "missing", key: key("a") }] });
  const run = comparing(db);
  assert.equal(await compareSlices(deps(db), 7, "w1", () => false), "recheck");
  assert.deepEqual(run.missing, [key("a")]);
});
