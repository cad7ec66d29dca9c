/**
 * The validator's comparison with a fake database (validator_fakes.ts): the compare
 * range by range of buckets within the budget.
 */

import assert from "node:assert/strict";
import { compareRanges } from "./validator_compare.ts";
import { compareDeps as deps, comparingRun as comparing, runsDb } from "./validator_fakes.ts";

const key = (id: string) => ({ segment_id: id });

Deno.test("compareRanges runs one statement per range until the compare is done", async () => {
  const db = runsDb({ ranges: 8 });
  comparing(db);
  assert.equal(await compareRanges(deps(db), 7, "w1", () => false), "report");
  assert.deepEqual(
    db.matching("sync.compare_checksum_range").map((s) => s.values),
    Array.from({ length: 8 }, () => [7, "w1"]),
  );
});

Deno.test("compareRanges hands on between ranges when the budget is spent", async () => {
  const db = runsDb({ ranges: 8 });
  const run = comparing(db);
  let calls = 0;
  assert.equal(await compareRanges(deps(db), 7, "w1", () => calls++ >= 3), "budget");
  assert.equal(run.ranges, 3, "three ranges compared and checkpointed");
  assert.equal(await compareRanges(deps(db), 7, "w1", () => false), "report");
  assert.equal(run.ranges, 8, "the next request goes on with the fourth");
});

Deno.test("compareRanges moves on to the rechecks when a key diverges", async () => {
  const db = runsDb({ divergent: () => [{ kind: "missing", key: key("a") }] });
  const run = comparing(db);
  assert.equal(await compareRanges(deps(db), 7, "w1", () => false), "recheck");
  assert.deepEqual(run.missing, [key("a")]);
});
