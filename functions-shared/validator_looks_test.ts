/**
 * The validator's further looks at keys that differ, with a fake database
 * (validator_fakes.ts): one look at a time, fresh reads, compares again as the stream
 * catches up, checkpoints within a look.
 */

import assert from "node:assert/strict";
import { byTargetTable } from "./table_registry.ts";
import { compareSlices } from "./validator_compare.ts";
import { compareDeps as deps, comparingRun as comparing, runsDb } from "./validator_fakes.ts";
import { CATCH_UP_SHARES, RECHECK_CHUNK_KEYS, recheckLook } from "./validator_looks.ts";

const segments = byTargetTable("firespring_segments")!;
const key = (id: string) => ({ segment_id: id });

Deno.test("a recheck reads the divergent keys again and keeps only those that still differ", async () => {
  const db = runsDb({
    divergent: (_run, look) =>
      look === 0
        ? [{ kind: "missing", key: key("a") }, { kind: "different", key: key("b") }]
        : [{ kind: "different", key: key("b") }],
  });
  const run = comparing(db);
  await compareSlices(deps(db), 7, "w1", () => false);
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
  await compareSlices(deps(db), 7, "w1", () => false);
  assert.equal(await recheckLook(deps(db), segments, 7, "w1", 200), "report");
  assert.deepEqual([run.missing, run.looks], [[], 1]);
});

Deno.test("a recheck by a request that lost the run's lease writes nothing", async () => {
  const db = runsDb({ divergent: () => [{ kind: "missing", key: key("a") }] });
  const run = comparing(db);
  await compareSlices(deps(db), 7, "w1", () => false);
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
  await compareSlices(deps(db), 7, "w1", () => false);
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
  await compareSlices(deps(db), 7, "w1", () => false);
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
  await compareSlices(deps(db), 7, "w1", () => false);
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

Deno.test("the last look compares its keys again as the stream catches up, and reports only those that never match", async () => {
  // "hot" differs at a look's first two compares (its change on its way), then matches;
  // "lost" differs at every compare.
  const db = runsDb({
    divergent: (_run, look, compare) => [
      ...(look === 0 || compare < 2 ? [{ kind: "different" as const, key: key("hot") }] : []),
      { kind: "missing" as const, key: key("lost") },
    ],
  });
  const run = comparing(db);
  const pauses: number[] = [];
  const d = {
    ...deps(db),
    settleMs: 1_000,
    pause: (ms: number) => (pauses.push(ms), Promise.resolve()),
  };
  await compareSlices(d, 7, "w1", () => false);
  assert.equal(await recheckLook(d, segments, 7, "w1", 200), "recheck");
  assert.equal(await recheckLook(d, segments, 7, "w1", 200), "recheck");
  assert.deepEqual(run.different, [key("hot")], "the first looks compare once");
  assert.deepEqual(pauses, [1_000, 1_000], "a settle pause before each");
  assert.equal(await recheckLook(d, segments, 7, "w1", 200), "report");
  assert.deepEqual([run.different, run.missing, run.looks], [[], [key("lost")], 3]);
  assert.deepEqual(
    pauses.slice(2),
    [1_000, ...CATCH_UP_SHARES.map((share) => share * 1_000)],
    "the last look's settle pause, then one pause before each compare again",
  );
  const compared = db.matching("from sync.compare_checksum(")
    .map((s) =>
      (JSON.parse(String(s.values[2])) as { segment_id: string }[])
        .map((k) => k.segment_id).sort()
    );
  assert.deepEqual(
    compared,
    [["hot", "lost"], ["hot", "lost"], ["hot", "lost"], ["hot", "lost"], ["hot", "lost"], [
      "lost",
    ]],
    "each compare again takes only the keys that still differ",
  );
});

Deno.test("a last look whose request's budget is spent hands on; the next compares again and waits", async () => {
  // "hot" differs at the look's first two compares (one in each request), then matches.
  const db = runsDb({
    divergent: (_run, look, compare) =>
      look === 0 || compare < 2 ? [{ kind: "different", key: key("hot") }] : [],
  });
  const run = comparing(db);
  await compareSlices(deps(db), 7, "w1", () => false);
  run.looks = 2;
  assert.equal(await recheckLook(deps(db), segments, 7, "w1", 200, () => true), "budget");
  assert.deepEqual([run.looks, run.different], [2, [key("hot")]], "nothing reported yet");
  assert.deepEqual(run.recheckKeys, [key("hot")], "the look's reads kept whole");
  assert.equal(run.recheckRead, 1);
  // The next request reads nothing again: it compares, waits, and finds the key matching,
  // its budget spent or not (a request that reads nothing must still move the look).
  const renewed = db.matching("sync.renew_validation(").length;
  assert.equal(await recheckLook(deps(db), segments, 7, "w1", 200, () => true), "report");
  assert.deepEqual([run.looks, run.different], [3, []]);
  assert.equal(db.matching("sync.stage_checksum_items").length, 1, "read and staged once");
  assert.equal(
    db.matching("sync.renew_validation(").length - renewed,
    1,
    "the lease renewed before its pause",
  );
});

Deno.test("a look reads each key once: an unmappable item's key that also differs is not added twice, and maxKeys caps the rest", async () => {
  const db = runsDb({
    divergent: (_run, look) => (look === 0 ? [{ kind: "different", key: key("k") }] : []),
  });
  const run = comparing(db);
  const unmappable = (id: string) => ({ key: { segment_id: id }, reason: `bad ${id}` });
  run.unmappable = [
    unmappable("k"),
    unmappable("u1"),
    unmappable("u1"),
    unmappable("u2"),
    unmappable("u3"),
  ];
  await compareSlices(deps(db), 7, "w1", () => false);
  assert.equal(await recheckLook(deps(db), segments, 7, "w1", 3), "report");
  const [started] = db.matching("set recheck_keys = ");
  assert.deepEqual(
    JSON.parse(String(started.values[0])),
    [key("k"), key("u1"), key("u2")],
    "the divergent key first, each key once, at most maxKeys",
  );
});
