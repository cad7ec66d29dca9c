/**
 * The checksum validator's run with a fake database (validator_fakes.ts) and DynamoDB:
 * the run from start to end through its phases, the verdict (divergent keys by kind,
 * unmappable items), the hand-on mid-segment that loses and repeats nothing, a lost run
 * lease, failure, and the repair followed by a second validation.
 */

import assert from "node:assert/strict";
import { validateTable } from "./checksum_validator.ts";
import type { ValidatorDeps } from "./validator_deps.ts";
import { byTargetTable } from "./table_registry.ts";
import {
  awsError,
  fakeClock,
  fakeCpuMeter,
  fakeDynamo,
  type SentCommand,
} from "./testing_fakes.ts";
import { runsDb, SEEN } from "./validator_fakes.ts";
import { MAX_KEYS_READ } from "./validator_compare.ts";
import { CATCH_UP_SHARES } from "./validator_looks.ts";
import { REPAIR_APPLY_BYTES } from "./validator_repair.ts";

const segments = byTargetTable("firespring_segments")!;

const item = (id: string) => ({ segment_id: { S: id }, value: { N: "1" } });

/** A source of two items; GetItem answers every key. */
const source = () =>
  fakeDynamo((c: SentCommand) =>
    c.name === "ScanCommand" ? { Items: [item("a"), item("b")] } : { Item: c.input.Key }
  );

function deps(
  db: ReturnType<typeof runsDb>,
  dynamo: ReturnType<typeof fakeDynamo>,
  extra: Partial<ValidatorDeps> = {},
) {
  const all: string[] = [];
  // The run's own lines; the Scan's lines per segment are segment_scan.ts's.
  const lines = {
    get length() {
      return all.filter((l) => !l.startsWith("validation run")).length;
    },
    get list() {
      return all.filter((l) => !l.startsWith("validation run"));
    },
  };
  const d: ValidatorDeps = {
    sql: db.sql,
    dynamo: dynamo.dynamo,
    segments: 1,
    settleMs: 0,
    pacing: fakeClock(),
    log: (line) => all.push(line),
    ...extra,
  };
  return { deps: d, lines, all };
}

Deno.test("a new run scans its leased segment, compares range by range and ends as a match", async () => {
  const db = runsDb();
  const { deps: d, lines } = deps(db, source());
  const runs: number[] = [];
  const result = await validateTable(d, segments, { onRun: (id) => runs.push(id) });
  assert.deepEqual(runs, [42]);
  assert.ok(!("continued" in result));
  assert.equal(result.table, "firespring_segments");
  assert.equal(result.runId, 42);
  assert.equal(result.match, true);
  assert.equal(result.sourceItems, 2);
  assert.deepEqual([result.missing, result.unexpected, result.different], [[], [], []]);
  assert.equal(result.repaired, undefined);
  assert.deepEqual(db.matching("sync.start_validation")[0].values, [
    "firespring_segments",
    false,
    1,
    1000,
    false,
    null,
  ]);
  assert.deepEqual(db.matching("sync.claim_segment")[0].values.slice(-1), [42]);
  assert.equal(db.matching("sync.checkpoint_segment").length, 1);
  assert.equal(
    db.matching("sync.checkpoint_segment")[0].tx,
    db.matching("sync.check_checksum_page")[0].tx,
    "a plain table's page is compared in its checkpoint's transaction",
  );
  assert.equal(db.matching("sync.compare_checksum_range").length, 8, "one statement per slice");
  const run = db.runs.get(42)!;
  assert.deepEqual([run.status, run.phase, run.match, run.staged], ["done", "done", true, 0]);
  assert.deepEqual(lines.list, [
    "firespring_segments: 2 items, 2 expected rows, 2 target rows, match",
  ]);
});

Deno.test("an unmappable source item means no match, even with nothing divergent", async () => {
  const db = runsDb();
  const bad = { segment_id: { S: "x" }, value: { S: "bad" } };
  const dynamo = fakeDynamo((c) => c.name === "GetItemCommand" ? { Item: bad } : { Items: [bad] });
  const { deps: d, lines } = deps(db, dynamo);
  const result = await validateTable(d, segments);
  assert.ok(!("continued" in result));
  assert.equal(result.match, false);
  assert.equal(result.unmappable.length, 1);
  assert.deepEqual(result.unmappable, [{ segment_id: "x" }], "a list of keys");
  assert.equal(result.unmappableReasons.length, 1, "and the reason of each");
  assert.match(lines.list[0], /0 divergent keys, 1 unmappable items$/);
  const read = dynamo.sent.find((c) => c.name === "GetItemCommand");
  assert.equal(read?.input.ConsistentRead, true, "read again consistently before it is reported");
});

Deno.test("an item unmappable on a stale page but mappable when read again is no longer listed", async () => {
  const db = runsDb();
  const stale = { segment_id: { S: "x" }, value: { S: "bad" } };
  const now = { segment_id: { S: "x" }, value: { N: "1" } };
  const dynamo = fakeDynamo((c) =>
    c.name === "GetItemCommand" ? { Item: now } : { Items: [stale] }
  );
  const { deps: d } = deps(db, dynamo);
  const result = await validateTable(d, segments);
  assert.ok(!("continued" in result));
  assert.deepEqual(result.unmappable, []);
  assert.equal(result.match, true, "the fake's target agrees with the item as it is now");
});

Deno.test("an item unmappable when read again is never part of a match", async () => {
  // The Scan's stale page held a version that maps (the target lacks it: missing); the
  // consistent read finds one that does not, and no row: the key drops out of the
  // divergent keys, but the item is listed.
  const db = runsDb({
    divergent: (_run, look) => look === 0 ? [{ kind: "missing", key: { segment_id: "a" } }] : [],
  });
  const dynamo = fakeDynamo((c) =>
    c.name === "GetItemCommand"
      ? { Item: { segment_id: { S: "a" }, value: { S: "not a number" } } }
      : { Items: [{ segment_id: { S: "a" }, value: { N: "1" } }] }
  );
  const { deps: d } = deps(db, dynamo);
  const result = await validateTable(d, segments);
  assert.ok(!("continued" in result));
  assert.equal(result.match, false);
  assert.deepEqual(result.missing, []);
  assert.deepEqual(result.unmappable, [{ segment_id: "a" }]);
});

Deno.test("unmappable items do not crowd the divergent keys out of the second reads", async () => {
  const db = runsDb({ divergent: () => [{ kind: "missing", key: { segment_id: "a" } }] });
  const bad = (id: string) => ({ segment_id: { S: id }, value: { S: "bad" } });
  const dynamo = fakeDynamo((c) =>
    c.name === "GetItemCommand"
      ? { Item: bad(String((c.input.Key as { segment_id: { S: string } }).segment_id.S)) }
      : { Items: [bad("x"), bad("y"), bad("z")] }
  );
  const { deps: d } = deps(db, dynamo, { maxKeysLooked: 2 });
  const result = await validateTable(d, segments);
  assert.ok(!("continued" in result));
  const read = dynamo.sent.filter((c) => c.name === "GetItemCommand")
    .map((c) => (c.input.Key as { segment_id: { S: string } }).segment_id.S);
  // Each look reads the divergent key first, then the unmappable ones that fit (the first
  // look: x; the next looks the others, as the divergent key stays).
  assert.deepEqual(read.slice(0, 2), ["a", "x"], "the divergent key first, then what fits");
  assert.deepEqual(result.unmappable.map((key) => key.segment_id).sort(), ["a", "x", "y", "z"]);
});

Deno.test("keys that differ on every look are reported by kind", async () => {
  const db = runsDb({
    divergent: () => [
      { kind: "missing", key: { segment_id: "a" } },
      { kind: "unexpected", key: { segment_id: "z" } },
      { kind: "different", key: { segment_id: "b" } },
    ],
  });
  const { deps: d } = deps(db, source());
  const result = await validateTable(d, segments);
  assert.ok(!("continued" in result));
  assert.equal(result.match, false);
  assert.deepEqual(result.missing, [{ segment_id: "a" }]);
  assert.deepEqual(result.unexpected, [{ segment_id: "z" }]);
  assert.deepEqual(result.different, [{ segment_id: "b" }]);
  assert.equal(
    db.matching("from sync.compare_checksum(").length,
    3 + CATCH_UP_SHARES.length,
    "three rechecks, the last compared again as the stream catches up",
  );
  assert.equal(db.runs.get(42)!.looks, 3);
  assert.equal(db.matching("sync.merge_changes").length, 0, "no repair unless asked");
});

Deno.test("a run that does not exist cannot be continued", async () => {
  const db = runsDb();
  const { deps: d } = deps(db, source());
  await assert.rejects(validateTable(d, segments, { runId: 9 }), /validation run 9 does not exist/);
  assert.equal(db.matching("sync.start_validation").length, 0);
});

Deno.test("a run another request finished meanwhile is left as it is, with no error", async () => {
  const db = runsDb();
  const { deps: d } = deps(db, source());
  const first = await validateTable(d, segments);
  assert.ok(!("continued" in first) && first.match);
  const runId = Number(first.runId);
  const claims = db.matching("sync.claim_validation(").length;
  const again = await validateTable(d, segments, { runId });
  assert.deepEqual(again, { continued: true, runId, table: segments.targetTable, handOn: false });
  assert.equal(db.matching("sync.claim_validation(").length, claims, "no claim on an ended run");
  db.runs.get(runId)!.status = "failed";
  assert.deepEqual(await validateTable(d, segments, { runId }), again, "nor on a failed one");
  db.runs.get(runId)!.status = "queued";
  await assert.rejects(
    validateTable(d, segments, { runId }),
    new RegExp(`validation run ${runId} is queued, not running`),
  );
});

Deno.test("a tiny budget hands on mid-segment; the next request goes on from the checkpoint, losing and repeating nothing", async () => {
  const db = runsDb();
  const pages: Record<string, { Items: unknown[]; LastEvaluatedKey?: unknown }> = {
    "null": { Items: [item("a")], LastEvaluatedKey: { segment_id: { S: "a" } } },
    '{"segment_id":{"S":"a"}}': {
      Items: [item("b")],
      LastEvaluatedKey: { segment_id: { S: "b" } },
    },
    '{"segment_id":{"S":"b"}}': { Items: [item("c")] },
  };
  const dynamo = fakeDynamo((c: SentCommand) =>
    pages[JSON.stringify(c.input.ExclusiveStartKey ?? null)]
  );
  const { deps: d, lines } = deps(db, dynamo, { budget: { cpuMs: 1e9, wallMs: 1e9, pages: 1 } });
  const first = await validateTable(d, segments);
  assert.deepEqual(first, {
    continued: true,
    runId: 42,
    table: "firespring_segments",
    handOn: true,
  });
  assert.deepEqual(db.runs.get(42)!.segments[0], {
    status: "pending",
    key: { segment_id: { S: "a" } },
    owner: db.matching("sync.claim_segment")[0].values.at(-2),
  }, "released at its checkpoint");
  assert.deepEqual(lines.list, [
    "firespring_segments: validation run 42 goes on in another request (validation run 42 " +
    "segment 0/1 of firespring-backdoor-segments-dev: budget spent (isolate CPU 0 ms))",
  ]);
  // The next requests (a page each) go on from the checkpoint.
  let outcome = await validateTable(d, segments, { runId: 42 });
  while ("continued" in outcome) outcome = await validateTable(d, segments, { runId: 42 });
  assert.equal(outcome.match, true);
  assert.deepEqual(
    dynamo.sent.map((c) => c.input.ExclusiveStartKey ?? null),
    [null, { segment_id: { S: "a" } }, { segment_id: { S: "b" } }],
    "every page read once",
  );
  assert.equal(outcome.sourceItems, 3, "every item counted once");
  assert.equal(db.matching("sync.check_checksum_page").length, 3, "every page compared once");
});

Deno.test("the budget counts the isolate's CPU: spent after the Scan, the compare hands on", async () => {
  const db = runsDb();
  const cpu = fakeCpuMeter(0, 500);
  const dynamo = fakeDynamo(() => ({ Items: [item("a")] }));
  const { deps: d } = deps(db, dynamo, { cpu, budget: { cpuMs: 400, wallMs: 1e9 } });
  const first = await validateTable(d, segments);
  assert.ok("continued" in first && first.handOn);
  assert.equal(db.runs.get(42)!.phase, "compare");
  assert.equal(db.matching("sync.compare_checksum_range").length, 0);
  assert.equal(db.runs.get(42)!.leaseOwner, undefined, "the run's lease is given back");
});

Deno.test("a request that lost the run's lease stops without failing the run", async () => {
  let lose = false;
  const db = runsDb({ loseRunLease: () => lose });
  const { deps: d } = deps(db, source());
  const run = db.newRun("firespring_segments", false, 1, 7);
  run.phase = "compare";
  lose = true;
  const outcome = await validateTable(d, segments, { runId: 7 });
  assert.deepEqual(outcome, {
    continued: true,
    runId: 7,
    table: "firespring_segments",
    handOn: false,
  });
  assert.equal(run.status, "running");
});

Deno.test("a failing run ends failed with the error, its staging removed", async () => {
  const db = runsDb();
  const dynamo = fakeDynamo(() => {
    throw Object.assign(new Error("One or more parameter values were invalid"), {
      name: "ValidationException",
    });
  });
  const { deps: d } = deps(db, dynamo);
  await assert.rejects(validateTable(d, segments), /One or more parameter values were invalid/);
  const [ended] = db.matching("sync.end_validation");
  assert.deepEqual(ended.values, [
    42,
    "ValidationException: One or more parameter values were invalid",
  ]);
  assert.equal(db.runs.get(42)!.status, "failed");
});

Deno.test("a key read again is retried when throttled, and a read that keeps failing names the run, the table, the key and the cause", async () => {
  const divergent = () => [{ kind: "missing" as const, key: { segment_id: "a" } }];
  const throttled = Object.assign(new Error("Rate of requests exceeds the allowed throughput."), {
    name: "ProvisionedThroughputExceededException",
  });
  // Throttled once, then read: the run goes on.
  let gets = 0;
  const once = fakeDynamo((c) => {
    if (c.name !== "GetItemCommand") return { Items: [] };
    if (gets++ === 0) throw throttled;
    return { Item: { segment_id: { S: "a" } } };
  });
  const { deps: d1 } = deps(runsDb({ divergent }), once);
  const ok = await validateTable(d1, segments);
  assert.ok(!("continued" in ok));
  assert.equal(gets > 1, true, "read again after the throttle");
  // Throttled every time: the run is not failed (the table is busy, not broken): it is
  // released for the heartbeat, and the log names what it was reading and why.
  const db = runsDb({ divergent });
  const always = fakeDynamo((c) => {
    if (c.name !== "GetItemCommand") return { Items: [] };
    throw throttled;
  });
  const { deps: d2, all: logs } = deps(db, always);
  assert.deepEqual(await validateTable(d2, segments), {
    continued: true,
    runId: 42,
    table: "firespring_segments",
    handOn: false,
  });
  assert.equal(db.runs.get(42)!.status, "running");
  assert.deepEqual(db.matching("sync.end_validation"), []);
  assert.equal(db.matching("sync.release_validation").length, 1, "released for the heartbeat");
  assert.ok(
    logs.some((l) =>
      l.includes(
        'validation run 42 of firespring_segments: reading key {"segment_id":"a"} again failed 3 times in a row: ProvisionedThroughputExceededException: Rate of requests exceeds the allowed throughput.; the look waits for the next heartbeat',
      )
    ),
    logs.join("\n"),
  );
});

Deno.test("a key read again that fails for good fails the run, naming the run, the table, the key and the cause", async () => {
  const divergent = () => [{ kind: "missing" as const, key: { segment_id: "a" } }];
  const db = runsDb({ divergent });
  const refused = fakeDynamo((c) => {
    if (c.name !== "GetItemCommand") return { Items: [] };
    throw Object.assign(new Error("The provided key element does not match the schema"), {
      name: "ValidationException",
    });
  });
  const { deps: d } = deps(db, refused);
  await assert.rejects(
    validateTable(d, segments),
    /^Error: validation run 42 of firespring_segments: reading key \{"segment_id":"a"\} again failed: ValidationException: The provided key element does not match the schema$/,
  );
  const [ended] = db.matching("sync.end_validation");
  assert.match(String(ended.values[1]), /reading key \{"segment_id":"a"\} again failed/);
});

Deno.test("a missing source table fails the run naming it", async () => {
  const db = runsDb();
  const dynamo = fakeDynamo(() => {
    throw Object.assign(new Error("Requested resource not found"), {
      name: "ResourceNotFoundException",
    });
  });
  const { deps: d } = deps(db, dynamo);
  await assert.rejects(
    validateTable(d, segments),
    /the Scan of firespring-backdoor-segments-dev failed: segment 0: DynamoDB table firespring-backdoor-segments-dev does not exist in us-east-1/,
  );
});

Deno.test("a continued run asked to repair re-applies the divergent keys and validates again", async () => {
  const db = runsDb({
    divergent: (run) => (run === 7 ? [{ kind: "missing", key: { segment_id: "a" } }] : []),
  });
  db.newRun("firespring_segments", true, 1, 7);
  const { deps: d, lines } = deps(db, source());
  const result = await validateTable(d, segments, { runId: 7 });
  assert.ok(!("continued" in result));
  assert.equal(result.runId, 42, "the check after the repair is a run of its own");
  assert.equal(result.match, true);
  assert.deepEqual(result.repaired, {
    missing: [{ segment_id: "a" }],
    unexpected: [],
    different: [],
  });
  const merges = db.matching("sync.merge_changes");
  assert.equal(merges.length, 1);
  const changes = JSON.parse(String(merges[0].values[1]));
  assert.deepEqual(
    changes.map((
      c: { op: string; row: { segment_id: string }; source: string; seen_at: string },
    ) => [c.op, c.row.segment_id, c.source, c.seen_at]),
    [["upsert", "a", "repair", SEEN.toISOString()]],
  );
  const first = db.runs.get(7)!;
  assert.deepEqual([first.status, first.repaired, first.revalidation], ["done", true, 42]);
  assert.equal(lines.length, 2);
  // The run ends before its revalidation starts (one run of a table at a time), and queued
  // runs start only after it, so that the revalidation holds the slot the run left.
  const at = (text: string) => db.statements.findIndex((s) => s.text.includes(text));
  assert.ok(at("sync.end_validation(") < at("sync.start_validation("));
  assert.ok(at("sync.start_validation(") < at("sync.start_queued_validations()"));
  assert.equal(db.matching("sync.end_validation(")[0].values.at(-1), false);
});

Deno.test("a repair whose read is throttled waits for the heartbeat, its run not failed", async () => {
  const db = runsDb({ divergent: () => [{ kind: "missing", key: { segment_id: "a" } }] });
  const run = db.newRun("firespring_segments", true, 1, 7);
  run.phase = "repair";
  run.missing = [{ segment_id: "a" }];
  const throttled = fakeDynamo((c) => {
    if (c.name !== "GetItemCommand") return { Items: [] };
    throw Object.assign(new Error("Rate of requests exceeds the allowed throughput."), {
      name: "ProvisionedThroughputExceededException",
    });
  });
  const { deps: d, all } = deps(db, throttled);
  assert.deepEqual(await validateTable(d, segments, { runId: 7 }), {
    continued: true,
    runId: 7,
    table: "firespring_segments",
    handOn: false,
  });
  assert.equal(run.status, "running");
  assert.deepEqual(db.matching("sync.merge_changes"), [], "nothing repaired");
  assert.deepEqual(db.matching("sync.end_validation"), []);
  assert.ok(
    all.some((l) =>
      l.includes(
        "validation run 7: its repair's read failed: ProvisionedThroughputExceededException",
      )
    ),
    all.join("\n"),
  );
});

Deno.test("more divergent keys than are looked at again: no rechecks, and a repair queues a healing backfill", async () => {
  const db = runsDb({
    divergent: (run) =>
      run === 7
        ? [
          { kind: "missing", key: { segment_id: "a" } },
          { kind: "unexpected", key: { segment_id: "z" } },
          { kind: "different", key: { segment_id: "b" } },
        ]
        : [],
  });
  db.newRun("firespring_segments", true, 1, 7);
  const dynamo = source();
  const { deps: d, all } = deps(db, dynamo, { maxKeysByKey: 2, maxKeysLooked: 2 });
  const result = await validateTable(d, segments, { runId: 7 });
  assert.ok(!("continued" in result));
  assert.equal(result.runId, 7);
  assert.equal(result.match, false);
  assert.deepEqual(result.different, [{ segment_id: "b" }]);
  assert.equal(result.healingBackfillJobId, 77);
  assert.equal(result.repaired, undefined, "nothing was repaired key by key");
  assert.equal(db.matching("from sync.compare_checksum(").length, 0, "no rechecks");
  assert.equal(db.matching("sync.merge_changes").length, 0, "no key-by-key repair");
  assert.deepEqual(
    dynamo.sent.filter((c) => c.name !== "ScanCommand"),
    [],
    "no point reads",
  );
  assert.deepEqual(db.staleMarks, [{
    table: "firespring_segments",
    reason: "firespring_segments: validation run 7 found 3 divergent keys, more than the 2 " +
      "a repair reads again one by one; a backfill heals the table",
  }]);
  const run = db.runs.get(7)!;
  assert.deepEqual([run.status, run.healingJob], ["done", 77]);
  assert.ok(all.some((l) => l.endsWith(": backfill job 77")));
});

Deno.test("more divergent keys than a repair takes are still looked at again: those that settle are no mismatch", async () => {
  // Three keys changed behind a long Scan: different at the compare, equal when read again.
  const db = runsDb({
    divergent: (run, look) =>
      run === 7 && look === 0
        ? ["a", "b", "c"].map((id) => ({ kind: "different" as const, key: { segment_id: id } }))
        : [],
  });
  db.newRun("firespring_segments", true, 1, 7);
  const dynamo = source();
  const { deps: d } = deps(db, dynamo, { maxKeysByKey: 2 });
  const result = await validateTable(d, segments, { runId: 7 });
  assert.ok(!("continued" in result));
  assert.equal(result.match, true);
  assert.equal(result.healingBackfillJobId, undefined, "no backfill for keys that settled");
  assert.deepEqual(db.staleMarks, []);
  assert.deepEqual(
    dynamo.sent.filter((c) => c.name === "GetItemCommand").length,
    3,
    "each key read again once",
  );
});

Deno.test("a look's reads keep to the table's read budget", async () => {
  const db = runsDb({
    divergent: (_run, look) =>
      look === 0
        ? ["a", "b", "c", "d"].map((id) => ({ kind: "missing" as const, key: { segment_id: id } }))
        : [],
  });
  const clock = fakeClock();
  // Each item about 6 KB of JSON: 2 read units a consistent read.
  const big = (id: string) => ({ segment_id: { S: id }, pad: { S: "x".repeat(6_000) } });
  const dynamo = fakeDynamo((c) =>
    c.name === "ScanCommand"
      ? { Items: [] }
      : { Item: big(String((c.input.Key as { segment_id: { S: string } }).segment_id.S)) }
  );
  const { deps: d } = deps(db, dynamo, { maxRcuPerSecond: 4, pacing: clock });
  await validateTable(d, segments);
  // 4 keys × 2 units at 4 units a second: the look ends no sooner than 2 s after it began.
  const lookWaits = clock.slept.filter((ms) => ms > 0);
  assert.ok(
    lookWaits.reduce((a, b) => a + b, 0) >= 2_000 - 1,
    `waited ${JSON.stringify(lookWaits)}`,
  );
});

Deno.test("a look's long wait for its read budget holds the run's lease", async () => {
  const db = runsDb({
    divergent: (_run, look) =>
      look === 0 ? [{ kind: "missing" as const, key: { segment_id: "a" } }] : [],
  });
  const clock = fakeClock();
  // One unit at 0.02 units a second: a 50 s wait for the one read.
  const { deps: d } = deps(db, source(), { maxRcuPerSecond: 0.02, pacing: clock });
  await validateTable(d, segments);
  // Renewed between slices of at most 20 s.
  assert.ok(db.matching("sync.renew_validation").length >= 2, "the lease was renewed");
  assert.ok(clock.slept.every((ms) => ms <= 20_000), JSON.stringify(clock.slept));
});

/** A source whose every Query says more pages follow: a partition past any page limit. */
const endlessPartition = () => {
  let page = 0;
  return fakeDynamo((c) => {
    if (c.name === "ScanCommand") return { Items: [] };
    page++;
    const obs = { session_id: { S: "v-big" }, timestamp: { N: String(page) } };
    return { Items: [obs], LastEvaluatedKey: obs };
  });
};
const visitors = byTargetTable("firespring_visitors")!;

Deno.test("a look at a key whose partition is too large to read whole ends the looks, the key reported", async () => {
  const db = runsDb({
    divergent: (_run, look) =>
      look === 0 ? [{ kind: "missing" as const, key: { visitor_id: "v-big" } }] : [],
  });
  const { deps: d, all } = deps(db, endlessPartition());
  const result = await validateTable(d, visitors);
  assert.ok(!("continued" in result));
  assert.equal(result.match, false);
  assert.deepEqual(result.missing, [{ visitor_id: "v-big" }]);
  assert.equal(db.runs.get(42)!.status, "done", "reported, not failed");
  assert.ok(
    all.some((l) =>
      l.includes("its partition holds more than 8 Query pages") && l.endsWith("no more looks")
    ),
    all.join("\n"),
  );
});

Deno.test("a repair of a key whose partition is too large to read whole heals the table by a backfill", async () => {
  const db = runsDb({ divergent: () => [{ kind: "missing", key: { visitor_id: "v-big" } }] });
  const run = db.newRun("firespring_visitors", true, 1, 7);
  run.phase = "repair";
  run.missing = [{ visitor_id: "v-big" }];
  const { deps: d } = deps(db, endlessPartition());
  const result = await validateTable(d, visitors, { runId: 7 });
  assert.ok(!("continued" in result));
  assert.equal(result.healingBackfillJobId, 77);
  assert.deepEqual(db.matching("sync.merge_changes"), [], "nothing merged from a partial read");
  assert.equal(db.staleMarks.length, 1);
  assert.match(
    db.staleMarks[0].reason,
    /^firespring_visitors: validation run 7 cannot repair key by key: firespring-backdoor-visitors-dev: key \{"visitor_id":"v-big"\}: its partition holds more than 8 Query pages/,
  );
  assert.equal(run.status, "done");
});

Deno.test("the keys a repair can read are repaired before a too-large one heals the table", async () => {
  const db = runsDb({ divergent: () => [] });
  const run = db.newRun("firespring_visitors", true, 1, 7);
  run.phase = "repair";
  run.missing = [{ visitor_id: "v-big" }, { visitor_id: "v-small" }];
  let pages = 0;
  const dynamo = fakeDynamo((c) => {
    if (c.name === "ScanCommand") return { Items: [] };
    const id = (c.input.ExpressionAttributeValues as Record<string, { S: string }>)[":h"].S;
    const obs = { session_id: { S: id }, timestamp: { N: String(++pages) } };
    return id === "v-big" ? { Items: [obs], LastEvaluatedKey: obs } : { Items: [obs] };
  });
  const { deps: d } = deps(db, dynamo);
  const result = await validateTable(d, visitors, { runId: 7 });
  assert.ok(!("continued" in result));
  assert.equal(result.healingBackfillJobId, 77);
  const merges = db.matching("sync.merge_changes");
  assert.equal(merges.length, 1, "the readable key repaired");
  const changes = JSON.parse(String(merges[0].values[1]));
  assert.deepEqual([
    ...new Set(changes.map((c: { row: { visitor_id: string } }) => c.row.visitor_id)),
  ], [
    "v-small",
  ]);
});

Deno.test("a repair applies what it read a few megabytes at a time, not all at the end", async () => {
  const db = runsDb({ divergent: () => [] });
  const run = db.newRun("firespring_segments", true, 1, 7);
  run.phase = "repair";
  run.missing = [{ segment_id: "a" }, { segment_id: "b" }, { segment_id: "c" }];
  // Items of about 2.2 MB: the first two pass REPAIR_APPLY_BYTES together.
  const pad = "x".repeat(Math.ceil(REPAIR_APPLY_BYTES / 2) + 100_000);
  const dynamo = fakeDynamo((c) =>
    c.name === "ScanCommand"
      ? { Items: [] }
      : { Item: { ...(c.input.Key as Record<string, unknown>), name: { S: pad } } }
  );
  const { deps: d } = deps(db, dynamo);
  await validateTable(d, segments, { runId: 7 });
  const merges = db.matching("sync.merge_changes").map((m) =>
    JSON.parse(String(m.values[1])).map((c: { row: { segment_id: string } }) => c.row.segment_id)
  );
  assert.deepEqual(merges, [["a", "b"], ["c"]]);
});

Deno.test("a run with more divergent keys than an answer carries lists the first of each kind, with every count", async () => {
  // MAX_KEYS_READ missing keys and one more, one different key: the table emptied, say.
  const missing = Array.from({ length: MAX_KEYS_READ + 1 }, (_, i) => ({
    kind: "missing" as const,
    key: { segment_id: `m${String(i).padStart(6, "0")}` },
  }));
  const db = runsDb({
    divergent: (run) =>
      run === 7 ? [...missing, { kind: "different", key: { segment_id: "b" } }] : [],
  });
  db.newRun("firespring_segments", true, 1, 7);
  const { deps: d, all } = deps(db, source());
  const result = await validateTable(d, segments, { runId: 7 });
  assert.ok(!("continued" in result));
  assert.equal(result.match, false);
  assert.equal(result.missing.length, MAX_KEYS_READ, "the first keys of a longer list");
  assert.deepEqual(result.missing[0], { segment_id: "m000000" });
  assert.deepEqual(result.different, [{ segment_id: "b" }], "a short list whole");
  assert.deepEqual(result.counts, {
    missing: MAX_KEYS_READ + 1,
    unexpected: 0,
    different: 1,
    unmappable: 0,
  });
  assert.equal(result.healingBackfillJobId, 77, "a repair of that many heals by a backfill");
  assert.ok(
    all.some((l) => l.includes(`${MAX_KEYS_READ + 2} divergent keys, not rechecked one by one`)),
    "the log counts every key",
  );
  assert.equal(db.runs.get(7)!.missing.length, MAX_KEYS_READ + 1, "the run keeps every key");
});

Deno.test("a run whose lists fit an answer lists every key and no counts", async () => {
  const db = runsDb({
    divergent: (run) => run === 7 ? [{ kind: "missing", key: { segment_id: "a" } }] : [],
  });
  db.newRun("firespring_segments", false, 1, 7);
  const { deps: d } = deps(db, source());
  const result = await validateTable(d, segments, { runId: 7 });
  assert.ok(!("continued" in result));
  assert.deepEqual(result.missing, [{ segment_id: "a" }]);
  assert.equal(result.counts, undefined);
});

Deno.test("more unmappable items than a request reads: none read again, the first listed, every one counted", async () => {
  const db = runsDb();
  db.newRun("firespring_segments", false, 1, 7);
  // A table whose items map to no row (an attribute renamed at the source, say).
  db.runs.get(7)!.unmappable = Array.from({ length: MAX_KEYS_READ + 1 }, (_, i) => ({
    key: { segment_id: `u${i}` },
    reason: "segment_id: not a string",
  }));
  const dynamo = source();
  const { deps: d, all } = deps(db, dynamo);
  const result = await validateTable(d, segments, { runId: 7 });
  assert.ok(!("continued" in result));
  assert.equal(result.match, false, "an unmappable item is never a match");
  assert.equal(result.unmappable.length, MAX_KEYS_READ);
  assert.deepEqual(result.counts, {
    missing: 0,
    unexpected: 0,
    different: 0,
    unmappable: MAX_KEYS_READ + 1,
  });
  assert.deepEqual(dynamo.sent.filter((c) => c.name !== "ScanCommand"), [], "no point reads");
  assert.ok(
    all.some((l) => l.endsWith(`${MAX_KEYS_READ + 1} unmappable items, not rechecked one by one`)),
  );
});

Deno.test("a repair whose reads outlast the request's budget applies what it read and goes on in the next request, no backfill", async () => {
  // The budget is the isolate's, shared with other requests: a repair of a few keys may
  // start with little of it left. A whole-table backfill for that would spend the table's
  // read capacity for hours at scale; each request goes on where the last one stopped.
  const db = runsDb({ divergent: () => [] });
  const run = db.newRun("firespring_segments", true, 1, 7);
  run.phase = "repair";
  run.missing = [1, 2, 3, 4, 5].map((n) => ({ segment_id: `k${n}` }));
  // Each key's read costs 150 ms of CPU against a budget of 400: spent after the third
  // read, so the first request stops before a key it has not read.
  let cpu = fakeCpuMeter(0, 0);
  const reads: string[] = [];
  const dynamo = fakeDynamo((c) => {
    if (c.name === "ScanCommand") return { Items: [] };
    cpu.charge(150);
    const key = c.input.Key as Record<string, { S: string }>;
    reads.push(key.segment_id.S);
    return { Item: { ...key, name: { S: "n" } } };
  });
  const first = deps(db, dynamo, { cpu, budget: { cpuMs: 400, wallMs: 1e9 } });
  const handed = await validateTable(first.deps, segments, { runId: 7 });
  assert.ok("continued" in handed, JSON.stringify(handed));
  assert.equal(run.repairRead, 3, "three keys read again and applied, recorded");
  assert.equal(run.status, "running");
  assert.equal(db.staleMarks.length, 0, "no backfill");
  assert.ok(
    first.all.some((l) =>
      l.endsWith(
        "firespring_segments: validation run 7: repaired 3 of 5 divergent keys; the repair goes on in another request",
      )
    ),
    first.all.join("\n"),
  );

  // The next request, in a fresh isolate, repairs the last two and validates again.
  cpu = fakeCpuMeter(0, 0);
  const next = deps(db, dynamo, { cpu, budget: { cpuMs: 400, wallMs: 1e9 } });
  const result = await validateTable(next.deps, segments, { runId: 7 });
  assert.ok(!("continued" in result), JSON.stringify(result));
  assert.deepEqual(reads, ["k1", "k2", "k3", "k4", "k5"], "no key read twice");
  const merged = db.matching("sync.merge_changes").flatMap((m) =>
    JSON.parse(String(m.values[1])).map((c: { row: { segment_id: string } }) => c.row.segment_id)
  );
  assert.deepEqual(merged, ["k1", "k2", "k3", "k4", "k5"], "every key applied once");
  assert.equal(result.healingBackfillJobId, undefined);
  assert.deepEqual(result.repaired?.missing.map((k) => k.segment_id), [
    "k1",
    "k2",
    "k3",
    "k4",
    "k5",
  ]);
  assert.equal(db.staleMarks.length, 0);
  assert.equal(run.status, "done");
});

Deno.test("a repair whose read fails after others applies and records those: the next request starts at the key that failed", async () => {
  // A throttle past the client's retries on k3, twice: before, every request read k1 and
  // k2 again and failed at k3, until the run was reaped for making no progress.
  const db = runsDb({ divergent: () => [] });
  const run = db.newRun("firespring_segments", true, 1, 7);
  run.phase = "repair";
  run.missing = [1, 2, 3, 4].map((n) => ({ segment_id: `k${n}` }));
  const reads: string[] = [];
  let throttles = 2;
  const dynamo = fakeDynamo((c) => {
    if (c.name === "ScanCommand") return { Items: [] };
    const key = c.input.Key as Record<string, { S: string }>;
    reads.push(key.segment_id.S);
    if (key.segment_id.S === "k3" && throttles-- > 0) {
      return Promise.reject(awsError("ProvisionedThroughputExceededException"));
    }
    return { Item: { ...key, name: { S: "n" } } };
  });
  // A throttle is a failure that may pass: the run waits for its next request.
  const first = deps(db, dynamo);
  assert.ok("continued" in await validateTable(first.deps, segments, { runId: 7 }));
  assert.ok(
    first.all.some((l) => /reading key \{"segment_id":"k3"\} of firespring_segments/.test(l)),
    first.all.join("\n"),
  );
  assert.equal(run.repairRead, 2, "k1 and k2 applied and recorded");
  const second = deps(db, dynamo);
  assert.ok("continued" in await validateTable(second.deps, segments, { runId: 7 }));
  assert.equal(
    run.repairRead,
    2,
    "the next request failed at k3 again, having read nothing before",
  );
  const third = deps(db, dynamo);
  const result = await validateTable(third.deps, segments, { runId: 7 });
  assert.ok(!("continued" in result), JSON.stringify(result));
  assert.deepEqual(reads, ["k1", "k2", "k3", "k3", "k3", "k4"], "k1 and k2 read once");
  assert.equal(run.status, "done");
});

Deno.test("a too-large partition met before the budget ran out still heals the table", async () => {
  // v-big is passed over (its partition cannot be read whole), v-small read, then the
  // budget is spent before v-last: the hand-on would start after v-big and leave it.
  const db = runsDb({ divergent: () => [] });
  const run = db.newRun("firespring_visitors", true, 1, 7);
  run.phase = "repair";
  run.missing = [{ visitor_id: "v-big" }, { visitor_id: "v-small" }, { visitor_id: "v-last" }];
  const cpu = fakeCpuMeter(0, 0);
  let pages = 0;
  const dynamo = fakeDynamo((c) => {
    const id = (c.input.ExpressionAttributeValues as Record<string, { S: string }>)[":h"].S;
    if (id === "v-small") cpu.charge(500);
    const obs = { session_id: { S: id }, timestamp: { N: String(++pages) } };
    return id === "v-big" ? { Items: [obs], LastEvaluatedKey: obs } : { Items: [obs] };
  });
  const { deps: d } = deps(db, dynamo, { cpu, budget: { cpuMs: 400, wallMs: 1e9 } });
  const result = await validateTable(d, visitors, { runId: 7 });
  assert.ok(!("continued" in result), JSON.stringify(result));
  assert.equal(result.healingBackfillJobId, 77, "the passed-over key is healed, not left");
  assert.match(db.staleMarks[0].reason, /cannot repair key by key: .*v-big/);
  assert.equal(run.repairRead, 0);
});

Deno.test("requests that find the isolate spent before any work say so once a run, not once each", async () => {
  // The meter past its ceiling, the runtime not yet retiring the isolate: each request for
  // the run hands on at once, and may land here again.
  const db = runsDb();
  const cpu = fakeCpuMeter(5_000, 0);
  const { deps: d, lines } = deps(db, fakeDynamo(() => ({ Items: [item("a")] })), {
    cpu,
    budget: { cpuMs: 400, wallMs: 1e9 },
  });
  const first = await validateTable(d, segments);
  assert.ok("continued" in first && first.handOn);
  for (let i = 0; i < 5; i++) {
    const again = await validateTable(d, segments, { runId: first.runId });
    assert.ok("continued" in again && again.handOn);
  }
  assert.deepEqual(lines.list.filter((l) => l.includes("goes on in another request")), [
    `firespring_segments: validation run ${first.runId} goes on in another request (validation ` +
    `run ${first.runId} segment 0/1 of firespring-backdoor-segments-dev: budget spent (isolate CPU 5000 ms))`,
  ]);
});
