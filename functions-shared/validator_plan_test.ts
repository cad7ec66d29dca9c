import assert from "node:assert/strict";
import { byTargetTable } from "./table_registry.ts";
import {
  expectedPage,
  pointReadKey,
  repairPlan,
  rowKeyText,
  sourceKeyOf,
  unmappableRowKey,
} from "./validator_plan.ts";

const segments = byTargetTable("firespring_segments")!;
const visitors = byTargetTable("firespring_visitors")!;
const readAt = new Date("2026-02-06T10:00:05Z");
const seenAt = "2026-02-06T10:00:04.000Z";

Deno.test("a page maps to expected rows; an item that does not map is listed with its reason", () => {
  const { rows, unmappable } = expectedPage(segments, [
    { segment_id: { S: "s1" }, name: { S: "one" }, value: { N: "12" } },
    { segment_id: { S: "s2" }, name: { S: "two" }, value: { S: "twelve" } },
    { segment_id: { N: "3" }, name: { S: "wrong key type" } },
  ], readAt);
  assert.deepEqual(rows.map((r) => r.row.segment_id), ["s1"]);
  assert.deepEqual(unmappable.map((u) => u.key), [{ segment_id: "s2" }, { segment_id: "3" }]);
  assert.match(unmappable[0].reason, /firespring-backdoor-segments-dev .*s2.*value/);
  assert.match(unmappable[1].reason, /firespring-backdoor-segments-dev .*segment_id/);
});

Deno.test("an item without its key attribute is named as such", () => {
  assert.deepEqual(sourceKeyOf(visitors, { session_id: { S: "v" } }), {
    session_id: "v",
    timestamp: "(missing)",
  });
  assert.deepEqual(sourceKeyOf(segments, { segment_id: { BOOL: true } }), {
    segment_id: '{"BOOL":true}',
  });
});

Deno.test("an unmappable item is listed as jsonb can hold it: U+0000 written out", () => {
  const { unmappable } = expectedPage(segments, [
    { segment_id: { S: "s\u0000" }, name: { S: "nul in the key" } },
  ], readAt);
  assert.deepEqual(unmappable.map((u) => u.key), [{ segment_id: "s\\u0000" }]);
  assert.match(unmappable[0].reason, /U\+0000/);
  assert.ok(!unmappable[0].reason.includes("\u0000"), "no U+0000 for jsonb to refuse");
  // Written out, the key names no row to read again (it would read another item).
  assert.equal(unmappable[0].escaped, true);
  assert.equal(unmappableRowKey(segments, unmappable[0]), null);
  const plain = expectedPage(segments, [{ segment_id: { S: "s2" }, value: { S: "x" } }], readAt);
  assert.equal(plain.unmappable[0].escaped, undefined);
  assert.deepEqual(unmappableRowKey(segments, plain.unmappable[0]), { segment_id: "s2" });
});

Deno.test("collapsed rows carry their range key and rank to the staging", () => {
  const { rows, unmappable } = expectedPage(visitors, [
    { session_id: { S: "v1" }, timestamp: { N: "1770379200" }, pages_viewed: { N: "3" } },
  ], readAt);
  assert.deepEqual(unmappable, []);
  assert.equal(rows[0].range_key, "1770379200");
  assert.equal(rows[0].rank, 0);
  assert.equal(rows[0].row.visitor_id, "v1");
});

Deno.test("a row key's text is the same whatever order its columns came in", () => {
  assert.equal(rowKeyText({ sk: "b", pk: "a" }), rowKeyText({ pk: "a", sk: "b" }));
  assert.equal(rowKeyText({ sk: "b", pk: "a" }), '[["pk","a"],["sk","b"]]');
  assert.notEqual(rowKeyText({ pk: "b", sk: "a" }), rowKeyText({ pk: "a", sk: "b" }));
});

Deno.test("a point read's key is the source key behind the target key", () => {
  assert.deepEqual(pointReadKey(segments, { segment_id: "s1" }), { segment_id: { S: "s1" } });
  assert.deepEqual(pointReadKey(visitors, { visitor_id: "v1" }), { session_id: { S: "v1" } });
});

Deno.test("repairing a plain key: an upsert of the item, positioned at the read, carrying seen_at", () => {
  const plan = repairPlan(
    segments,
    { segment_id: "s1" },
    [{ segment_id: { S: "s1" }, name: { S: "one" }, value: { N: "12" } }],
    [],
    readAt,
    seenAt,
  );
  assert.deepEqual(plan.unmappable, []);
  assert.equal(plan.changes.length, 1);
  const { change } = plan.changes[0];
  assert.deepEqual(
    [change.op, change.seq, change.changedAt, change.source, change.seenAt],
    ["upsert", null, readAt.toISOString(), "repair", seenAt],
  );
  assert.equal(change.row.segment_name, "one");
  // Should Postgres refuse it, its dead letter is the item as read, at the read, by a
  // repair: replayable, and one letter however often the key is repaired.
  const letter = plan.changes[0].deadLetter?.("refused");
  assert.deepEqual(letter?.record, {
    sourceTable: "firespring-backdoor-segments-dev",
    item: { segment_id: { S: "s1" }, name: { S: "one" }, value: { N: "12" } },
  });
  assert.deepEqual(letter?.position, {
    seq: null,
    changedAt: readAt.toISOString(),
    source: "repair",
  });
});

Deno.test("repairing a plain key the source no longer has: a delete at the read", () => {
  const plan = repairPlan(segments, { segment_id: "gone" }, [], [], readAt, seenAt);
  assert.deepEqual(plan.changes.map((c) => c.change), [{
    op: "delete",
    row: { segment_id: "gone" },
    seq: null,
    changedAt: readAt.toISOString(),
    source: "repair",
    seenAt,
  }]);
});

Deno.test("repairing a collapsed key: every observation, and deletes of those the source lacks", () => {
  const items = [1770379200, 1770379201].map((t) => ({
    session_id: { S: "v1" },
    timestamp: { N: String(t) },
    pages_viewed: { N: "1" },
  }));
  const plan = repairPlan(
    visitors,
    { visitor_id: "v1" },
    items,
    ["1770379200", "1770379299", "1770379299"],
    readAt,
    seenAt,
  );
  const summary = plan.changes.map(({ change }) => `${change.op} ${change.rangeKey}`);
  assert.deepEqual(summary, ["upsert 1770379200", "upsert 1770379201", "delete 1770379299"]);
  assert.ok(plan.changes.every(({ change }) => change.seenAt === seenAt));
});

Deno.test("a key with an item that does not map is left alone: nothing is deleted over it", () => {
  const plan = repairPlan(
    visitors,
    { visitor_id: "v1" },
    [{ session_id: { S: "v1" }, timestamp: { N: "1770379200" }, pages_viewed: { S: "many" } }],
    ["1770379100"],
    readAt,
    seenAt,
  );
  assert.deepEqual(plan.changes, []);
  assert.deepEqual(plan.unmappable.map((u) => u.key), [
    { session_id: "v1", timestamp: "1770379200" },
  ]);
});
