/**
 * The validator's repair with a fake database and DynamoDB: each divergent key read
 * consistently and re-applied through the merge as `repair` changes carrying `seenAt`,
 * observations the source no longer has deleted, unmappable keys left alone.
 */

import assert from "node:assert/strict";
import type { ValidatorDeps } from "./validator_deps.ts";
import { byTargetTable } from "./table_registry.ts";
import {
  fakeClock,
  fakeCpuMeter,
  fakeDynamo,
  fakeSql,
  type SentCommand,
  type Statement,
} from "./testing_fakes.ts";
import { keysAwaitingWriteBack, repairKeys } from "./validator_repair.ts";
import { rowKeyText } from "./validator_plan.ts";

const SEEN = "2026-02-01T12:00:00.000Z";

interface Merged {
  op: string;
  row: Record<string, unknown>;
  source: string;
  seq: unknown;
  seen_at: string;
  changed_at: string;
  range_key?: number;
  rank?: number;
}

/** A database that knows `known` range keys of every collapsed key and merges everything. */
function repairDb(known: string[] = []) {
  const merged: Merged[] = [];
  const db = fakeSql((s: Statement) => {
    if (s.text.includes("from sync.observations")) return known.map((k) => ({ range_key: k }));
    if (s.text.includes("sync.merge_changes")) {
      const changes = JSON.parse(String(s.values[1])) as Merged[];
      merged.push(...changes);
      return [{ applied: changes.length }];
    }
    if (s.text.includes("insert into sync.dead_letters")) return [];
    return undefined;
  });
  return { ...db, merged };
}

function deps(db: ReturnType<typeof repairDb>, dynamo: ReturnType<typeof fakeDynamo>) {
  return { sql: db.sql, dynamo: dynamo.dynamo } satisfies ValidatorDeps;
}

Deno.test("a plain table's keys are upserted from the source, or deleted when it has none", async () => {
  const segments = byTargetTable("firespring_segments")!;
  const db = repairDb();
  // Each answer's own exchange: DynamoDB's Date, 30 ms of round trip.
  const date = Date.parse("2026-11-30T12:00:00Z");
  const $metadata = { clock: { roundTripMs: 30, serverMs: date } };
  const dynamo = fakeDynamo((c: SentCommand) => {
    const id = (c.input.Key as { segment_id: { S: string } }).segment_id.S;
    return id === "gone"
      ? { $metadata }
      : { Item: { segment_id: { S: id }, value: { N: "3" } }, $metadata };
  });
  const skipped = await repairKeys(deps(db, dynamo), segments, [
    { kind: "missing", key: { segment_id: "a" } },
    { kind: "unexpected", key: { segment_id: "gone" } },
  ], SEEN);
  assert.deepEqual(skipped, []);
  assert.deepEqual(dynamo.regions, ["us-east-1", "us-east-1"]);
  assert.deepEqual(dynamo.sent.map((c) => [c.name, c.input.Key, c.input.ConsistentRead]), [
    ["GetItemCommand", { segment_id: { S: "a" } }, true],
    ["GetItemCommand", { segment_id: { S: "gone" } }, true],
  ]);
  assert.deepEqual(db.merged.map((c) => [c.op, c.row.segment_id, c.source, c.seq, c.seen_at]), [
    ["upsert", "a", "repair", null, SEEN],
    ["delete", "gone", "repair", null, SEEN],
  ]);
  assert.equal(db.merged[0].row.member_count, 3);
  assert.deepEqual(db.merged[1].row, { segment_id: "gone" }, "a delete carries the key alone");
  for (const change of db.merged) {
    assert.equal(
      change.changed_at,
      "2026-11-30T11:59:59.970Z",
      "positioned at the read, on DynamoDB's clock: its Date less the round trip",
    );
  }
  assert.equal(db.transactions.committed, 1, "one transaction");
  assert.equal(db.matching("sync.observations").length, 0, "no range keys for a plain table");
});

Deno.test("a collapsed key's observations are upserted, and known ones the source lost deleted", async () => {
  const visitors = byTargetTable("firespring_visitors")!;
  const db = repairDb(["100", "200"]);
  const dynamo = fakeDynamo(() => ({
    Items: [
      { session_id: { S: "v-1" }, timestamp: { N: "200" }, pages_viewed: { N: "2" } },
      { session_id: { S: "v-1" }, timestamp: { N: "300" }, pages_viewed: { N: "3" } },
    ],
  }));
  const skipped = await repairKeys(deps(db, dynamo), visitors, [
    { kind: "different", key: { visitor_id: "v-1" } },
  ], SEEN);
  assert.deepEqual(skipped, []);
  assert.equal(dynamo.sent[0].name, "QueryCommand");
  assert.deepEqual(dynamo.sent[0].input.ExpressionAttributeValues, { ":h": { S: "v-1" } });
  const [known] = db.matching("sync.observations");
  assert.match(known.text, /from "firespring_visitors" where "visitor_id" = \$3/);
  assert.deepEqual(known.values, ["firespring_visitors", '{"visitor_id":"v-1"}', "v-1"]);
  assert.deepEqual(db.merged.map((c) => [c.op, c.range_key, c.source, c.seen_at]), [
    ["upsert", 200, "repair", SEEN],
    ["upsert", 300, "repair", SEEN],
    ["delete", 100, "repair", SEEN],
  ]);
  assert.deepEqual(db.merged[2].row, { visitor_id: "v-1" });
  assert.equal(db.merged[2].rank, 0);
});

Deno.test("a key with an unmappable item is left alone and returned, the others repaired", async () => {
  const segments = byTargetTable("firespring_segments")!;
  const db = repairDb();
  const dynamo = fakeDynamo((c: SentCommand) => {
    const id = (c.input.Key as { segment_id: { S: string } }).segment_id.S;
    return { Item: { segment_id: { S: id }, value: { N: id === "bad" ? "NaN" : "1" } } };
  });
  const skipped = await repairKeys(deps(db, dynamo), segments, [
    { kind: "different", key: { segment_id: "bad" } },
    { kind: "different", key: { segment_id: "ok" } },
  ], SEEN);
  assert.equal(skipped.length, 1);
  assert.deepEqual(skipped[0].key, { segment_id: "bad" });
  assert.match(skipped[0].reason, /^firespring-backdoor-segments-dev \[segment_id="bad"\]: /);
  assert.deepEqual(db.merged.map((c) => c.row.segment_id), ["ok"]);
  assert.equal(db.matching("insert into sync.dead_letters").length, 0);
});

Deno.test("a key left to its pending write-back is neither read nor merged over; the others are", async () => {
  const segments = byTargetTable("firespring_segments")!;
  const db = repairDb();
  const dynamo = fakeDynamo((c: SentCommand) => {
    const id = (c.input.Key as { segment_id: { S: string } }).segment_id.S;
    return { Item: { segment_id: { S: id }, value: { N: "3" } } };
  });
  const skipped = await repairKeys(
    deps(db, dynamo),
    segments,
    [
      { kind: "different", key: { segment_id: "edited" } },
      { kind: "missing", key: { segment_id: "a" } },
    ],
    SEEN,
    { leave: new Set([rowKeyText({ segment_id: "edited" })]) },
  );
  assert.deepEqual(skipped, []);
  assert.deepEqual(dynamo.sent.map((c) => c.input.Key), [{ segment_id: { S: "a" } }]);
  assert.deepEqual(db.merged.map((c) => c.row.segment_id), ["a"]);
});

Deno.test("keysAwaitingWriteBack asks for the table's pending write-backs of exactly the keys given", async () => {
  const db = fakeSql((s: Statement) =>
    s.text.includes("from sync.write_backs") ? [{ row_key: { pk: "b", sk: "1" } }] : undefined
  );
  const keys = [{ pk: "a", sk: "1" }, { sk: "1", pk: "b" }];
  const awaited = await keysAwaitingWriteBack(db.sql, "toledo_dashboard", keys);
  assert.deepEqual([...awaited], [rowKeyText({ pk: "b", sk: "1" })]);
  const [asked] = db.matching("from sync.write_backs");
  assert.match(asked.text, /status = 'pending'/);
  assert.deepEqual(asked.values, ["toledo_dashboard", JSON.stringify(keys)]);
  assert.deepEqual([...await keysAwaitingWriteBack(db.sql, "toledo_dashboard", [])], []);
  assert.equal(db.matching("from sync.write_backs").length, 1, "no keys: no statement");
});

Deno.test("no divergent key reads nothing and merges nothing", async () => {
  const db = repairDb();
  const dynamo = fakeDynamo(() => assert.fail("no read"));
  const skipped = await repairKeys(
    deps(db, dynamo),
    byTargetTable("firespring_segments")!,
    [],
    SEEN,
  );
  assert.deepEqual(skipped, []);
  assert.equal(db.matching("sync.merge_changes").length, 0);
});

Deno.test("each key's mapping is a measured step of the isolate's CPU meter, when there is one", async () => {
  const segments = byTargetTable("firespring_segments")!;
  const db = repairDb();
  const dynamo = fakeDynamo((c: SentCommand) => ({
    Item: { segment_id: (c.input.Key as { segment_id: unknown }).segment_id, value: { N: "1" } },
  }));
  const cpu = fakeCpuMeter();
  await repairKeys({ ...deps(db, dynamo), cpu }, segments, [
    { kind: "different", key: { segment_id: "a" } },
    { kind: "different", key: { segment_id: "b" } },
  ], SEEN);
  assert.equal(
    cpu.steps,
    2,
    "a partition may be megabytes: a hosted meter sees only measured steps",
  );
  assert.equal(db.merged.length, 2);
});

Deno.test("a repair's read that fails names the table and the key, its error kept as it is", async () => {
  const db = repairDb();
  const denied = Object.assign(new Error("User is not authorized to perform: dynamodb:GetItem"), {
    name: "AccessDeniedException",
  });
  const dynamo = fakeDynamo(() => Promise.reject(denied));
  const failed = await repairKeys(deps(db, dynamo), byTargetTable("firespring_segments")!, [
    { kind: "missing", key: { segment_id: "s-9" } },
  ], SEEN).catch((error) => error);
  assert.equal(failed, denied, "the same error: its kind decides whether the caller tries again");
  assert.equal(
    failed.message,
    'reading key {"segment_id":"s-9"} of firespring_segments to repair it: User is not ' +
      "authorized to perform: dynamodb:GetItem",
  );
  assert.equal(db.matching("sync.merge_changes").length, 0);
});

Deno.test("a repair's reads keep to the table's read budget, the run's lease renewed through a long wait", async () => {
  // 100 KB a key, 25 read units as the pace counts them; at 1 unit a second, two keys
  // take 50 s, each wait past RENEW_EVERY_MS.
  const segments = byTargetTable("firespring_segments")!;
  const db = repairDb();
  const big = "x".repeat(100 * 1024);
  const dynamo = fakeDynamo((c: SentCommand) => {
    const id = (c.input.Key as { segment_id: { S: string } }).segment_id.S;
    return { Item: { segment_id: { S: id }, name: { S: big } } };
  });
  const clock = fakeClock();
  let renewed = 0;
  await repairKeys(
    { ...deps(db, dynamo), maxRcuPerSecond: 1, pacing: clock },
    segments,
    [{ kind: "different", key: { segment_id: "a" } }, {
      kind: "different",
      key: { segment_id: "b" },
    }],
    SEEN,
    { renew: () => Promise.resolve(void renewed++) },
  );
  const slept = clock.slept.reduce((a, b) => a + b, 0);
  assert.ok(slept >= 50_000, `slept ${slept} ms: 50 units at 1 a second`);
  assert.ok(renewed >= 2, `the lease renewed through the waits (${renewed} times)`);
  assert.equal(db.merged.length, 2, "both keys repaired");
});

Deno.test("a repair without a read budget reads at once", async () => {
  const segments = byTargetTable("firespring_segments")!;
  const db = repairDb();
  const dynamo = fakeDynamo(() => ({ Item: { segment_id: { S: "a" }, value: { N: "1" } } }));
  const clock = fakeClock();
  await repairKeys(
    { ...deps(db, dynamo), pacing: clock },
    segments,
    [{ kind: "different", key: { segment_id: "a" } }],
    SEEN,
  );
  assert.deepEqual(clock.slept, []);
});
