/**
 * The validator's comparison with a fake database (validator_fakes.ts): the compare
 * range by range of buckets within the budget, and the rechecks, one look at a time,
 * that drop keys merely in flight.
 */

import assert from "node:assert/strict";
import type { ValidatorDeps } from "./checksum_validator.ts";
import { byTargetTable } from "./table_registry.ts";
import { fakeClock, fakeDynamo, type SentCommand } from "./testing_fakes.ts";
import { compareRanges, RECHECK_CHUNK_KEYS, recheckLook } from "./validator_compare.ts";
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

Deno.test("a look stopped by the budget between keys goes on from its checkpoint in the next request", async () => {
  const keys = ["a", "b", "c", "d", "e"].map(key);
  const db = runsDb({
    divergent: (_run, look) =>
      look === 0 ? keys.map((k) => ({ kind: "missing" as const, key: k })) : [],
  });
  const run = comparing(db);
  await compareRanges(deps(db), 7, "w1", () => false);
  const d = deps(db);
  // Spent at once: every request still reads one key, so the look always moves.
  assert.equal(await recheckLook(d, segments, 7, "w1", 200, () => true), "budget");
  assert.deepEqual([run.recheckRead, run.looks], [1, 0]);
  assert.deepEqual(run.recheckKeys, keys, "the look's keys, fixed when it started");
  // Two keys more (the first without a check), then the budget is spent.
  let checks = 0;
  assert.equal(await recheckLook(d, segments, 7, "w1", 200, () => ++checks > 1), "budget");
  assert.equal(run.recheckRead, 3);
  assert.equal(await recheckLook(d, segments, 7, "w1", 200), "report");
  assert.deepEqual([run.recheckKeys, run.recheckRead, run.looks], [null, 0, 1]);
  assert.equal(db.matching("delete from sync.checksum_items").length, 1, "one look, one start");
  assert.deepEqual(
    db.matching("sync.renew_validation(").map((s) => s.values),
    [[7, "w1"]],
    "the lease renewed before the settle pause, not counted as progress",
  );
  const staged = db.matching("sync.stage_checksum_items")
    .flatMap((s) => JSON.parse(String(s.values[2])) as { row: { segment_id: string } }[])
    .map(({ row }) => row.segment_id);
  assert.deepEqual(staged, ["a", "b", "c", "d", "e"], "each key read and staged once, in order");
  assert.deepEqual(
    db.matching("set progress_at = now(), unmappable =").map((s) => s.values[1]),
    [1, 3, 5],
    "each chunk moves the look's checkpoint",
  );
});

Deno.test("a look's chunk is staged at RECHECK_CHUNK_KEYS keys", async () => {
  const keys = Array.from({ length: RECHECK_CHUNK_KEYS + 3 }, (_, i) => key(`k${i}`));
  const db = runsDb({
    divergent: (_run, look) =>
      look === 0 ? keys.map((k) => ({ kind: "different" as const, key: k })) : [],
  });
  const run = comparing(db);
  await compareRanges(deps(db), 7, "w1", () => false);
  assert.equal(await recheckLook(deps(db), segments, 7, "w1", 200), "report");
  assert.deepEqual(
    db.matching("set progress_at = now(), unmappable =").map((s) => s.values[1]),
    [RECHECK_CHUNK_KEYS, RECHECK_CHUNK_KEYS + 3],
  );
  assert.equal(run.looks, 1);
});

Deno.test("a look's checkpoint moved by another request refuses the chunk, naming the run", async () => {
  const db = runsDb({ divergent: () => [{ kind: "missing", key: key("a") }] });
  const run = comparing(db);
  await compareRanges(deps(db), 7, "w1", () => false);
  run.recheckKeys = [key("a"), key("b")];
  run.recheckRead = 0;
  const d = deps(db);
  const reads = d.dynamo;
  // The key's read moves the checkpoint under this request, as a request that took the
  // run over and read the key would.
  d.dynamo = (region) => {
    run.recheckRead = 1;
    return reads(region);
  };
  await assert.rejects(
    recheckLook(d, segments, 7, "w1", 200),
    /validation run 7 of firespring_segments: its look has 1 keys read again, not 0/,
  );
});
