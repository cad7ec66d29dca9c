/**
 * The validator's comparison with a fake database (validator_fakes.ts): the compare
 * range by range of buckets within the budget, and the rechecks, one look at a time,
 * that drop keys merely in flight.
 */

import assert from "node:assert/strict";
import type { ValidatorDeps } from "./checksum_validator.ts";
import { byTargetTable } from "./table_registry.ts";
import { fakeClock, fakeDynamo, type SentCommand } from "./testing_fakes.ts";
import { compareRanges, recheckLook } from "./validator_compare.ts";
import { runsDb } from "./validator_fakes.ts";

const segments = byTargetTable("firespring_segments")!;
const key = (id: string) => ({ segment_id: id });

function deps(db: ReturnType<typeof runsDb>): ValidatorDeps {
  const dynamo = fakeDynamo((c: SentCommand) => ({
    Item: { ...(c.input.Key as object), value: { N: "1" } },
  }));
  return { sql: db.sql, dynamo: dynamo.dynamo, settleMs: 0, pacing: fakeClock() };
}

/** A run of `db` in its compare, leased to "w1". */
function comparing(db: ReturnType<typeof runsDb>) {
  const run = db.newRun("firespring_segments", false, 1, 7);
  run.phase = "compare";
  run.leaseOwner = "w1";
  return run;
}

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

Deno.test("a recheck reads the divergent keys again and keeps only those that still differ", async () => {
  const db = runsDb({
    divergent: (_run, look) =>
      look === 0
        ? [{ kind: "missing", key: key("a") }, { kind: "different", key: key("b") }]
        : [{ kind: "different", key: key("b") }],
  });
  const run = comparing(db);
  await compareRanges(deps(db), 7, "w1", () => false);
  run.leaseOwner = "w1";
  assert.equal(await recheckLook(deps(db), segments, 7, "w1", 200), "recheck");
  assert.deepEqual([run.missing, run.different, run.looks], [[], [key("b")], 1]);
  const deleted = db.matching("delete from sync.checksum_items")[0];
  assert.deepEqual(deleted.values, [7, [JSON.stringify(key("a")), JSON.stringify(key("b"))]]);
  const staged = db.matching("sync.stage_checksum_items");
  assert.equal(staged.length, 1, "the keys read again, staged in one statement");
  assert.equal((JSON.parse(String(staged[0].values[2])) as unknown[]).length, 2, "each key's row");
  const [compared] = db.matching("from sync.compare_checksum(");
  assert.deepEqual(JSON.parse(String(compared.values[2])), [key("a"), key("b")], "only those keys");
  assert.equal(await recheckLook(deps(db), segments, 7, "w1", 200), "recheck");
  assert.equal(
    await recheckLook(deps(db), segments, 7, "w1", 200),
    "report",
    "three looks at most",
  );
  assert.deepEqual(run.different, [key("b")]);
});

Deno.test("a recheck that finds nothing differing ends the looks", async () => {
  const db = runsDb({
    divergent: (_run, look) => (look === 0 ? [{ kind: "missing", key: key("a") }] : []),
  });
  const run = comparing(db);
  await compareRanges(deps(db), 7, "w1", () => false);
  assert.equal(await recheckLook(deps(db), segments, 7, "w1", 200), "report");
  assert.deepEqual([run.missing, run.looks], [[], 1]);
});

Deno.test("a recheck by a request that lost the run's lease writes nothing", async () => {
  const db = runsDb({ divergent: () => [{ kind: "missing", key: key("a") }] });
  const run = comparing(db);
  await compareRanges(deps(db), 7, "w1", () => false);
  run.leaseOwner = "w2";
  await assert.rejects(recheckLook(deps(db), segments, 7, "w1", 200), { code: "SY001" });
  assert.equal(run.looks, 0);
  assert.deepEqual(run.missing, [key("a")]);
});
