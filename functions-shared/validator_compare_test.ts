/**
 * The validator's comparison with a fake database and DynamoDB: what
 * sync.compare_checksum's answer becomes, and the rechecks that drop keys merely in
 * flight.
 */

import assert from "node:assert/strict";
import type { ValidatorDeps } from "./checksum_validator.ts";
import { compare, type Divergence, recheck } from "./validator_compare.ts";
import { byTargetTable } from "./table_registry.ts";
import { fakeClock, fakeDynamo, fakeSql, type Statement } from "./testing_fakes.ts";

const segments = byTargetTable("firespring_segments")!;
const SEEN = new Date("2026-02-01T12:00:00Z");

type Row = { kind: Divergence["kind"] | null; row_key: Record<string, string> | null };

/** What compare_checksum answers: the divergent rows (or one null row when none). */
const answerOf = (divergent: Divergence[], expected = "10", target = "9") =>
  (divergent.length === 0 ? [{ kind: null, row_key: null }] as Row[] : divergent.map((d) => ({
    kind: d.kind,
    row_key: d.key,
  }))).map((r) => ({ ...r, expected_rows: expected, target_rows: target, seen_at: SEEN }));

/** A database whose compare_checksum answers `answers` in turn (the last one again). */
function compareDb(answers: Divergence[][]) {
  let calls = 0;
  return fakeSql((s: Statement) => {
    if (s.text.includes("sync.compare_checksum")) {
      return answerOf(answers[Math.min(calls++, answers.length - 1)]);
    }
    if (s.text.startsWith("delete from sync.checksum_items")) return [];
    if (s.text.includes("sync.stage_checksum_items")) return [];
    if (s.text.startsWith("update public.sync_checksums set progress_at")) return [];
    return undefined;
  });
}

function deps(db: ReturnType<typeof fakeSql>, dynamo = fakeDynamo(() => ({}))): ValidatorDeps {
  return { sql: db.sql, dynamo: dynamo.dynamo, settleMs: 0, pacing: fakeClock() };
}

const d = (kind: Divergence["kind"], id: string): Divergence => ({
  kind,
  key: { segment_id: id },
});

Deno.test("compare asks sync.compare_checksum for the run and table, and reads its answer", async () => {
  const db = compareDb([[d("missing", "a"), d("unexpected", "b"), d("different", "c")]]);
  const outcome = await compare(deps(db), segments, 7);
  assert.deepEqual(db.statements.map((s) => [s.text, s.values]), [
    ["select * from sync.compare_checksum($1, $2)", [7, "firespring_segments"]],
  ]);
  assert.deepEqual(outcome, {
    divergent: [d("missing", "a"), d("unexpected", "b"), d("different", "c")],
    expectedRows: 10,
    targetRows: 9,
    seenAt: SEEN.toISOString(),
  });
});

Deno.test("compare with nothing divergent answers the counts alone", async () => {
  const outcome = await compare(deps(compareDb([[]])), segments, 7);
  assert.deepEqual(outcome.divergent, []);
  assert.equal(outcome.expectedRows, 10);
  assert.equal(outcome.targetRows, 9);
});

Deno.test("recheck reads the divergent keys again and keeps only those that differ every time", async () => {
  // Second look: a has settled, b still differs, c is new (not divergent the first time).
  const db = compareDb([[d("different", "b"), d("missing", "c")], [d("different", "b")]]);
  // The source holds each key it is asked for (its item is its key).
  const dynamo = fakeDynamo((command) => ({ Item: command.input.Key }));
  const outcome = await recheck(deps(db, dynamo), segments, 7, [
    d("missing", "a"),
    d("different", "b"),
  ]);
  assert.deepEqual(outcome.divergent, [d("different", "b")]);
  assert.equal(outcome.seenAt, SEEN.toISOString());
  // The first look re-read a and b; the next ones only b.
  assert.deepEqual(
    dynamo.sent.map((c) => [c.name, c.input.Key, c.input.ConsistentRead]),
    [
      ["GetItemCommand", { segment_id: { S: "a" } }, true],
      ["GetItemCommand", { segment_id: { S: "b" } }, true],
      ["GetItemCommand", { segment_id: { S: "b" } }, true],
      ["GetItemCommand", { segment_id: { S: "b" } }, true],
    ],
  );
  const deletes = db.matching("delete from sync.checksum_items");
  assert.deepEqual(deletes[0].values, [7, ['{"segment_id":"a"}', '{"segment_id":"b"}']]);
  assert.deepEqual(deletes[1].values, [7, ['{"segment_id":"b"}']]);
  assert.equal(db.matching("sync.compare_checksum").length, 3, "three looks at most");
  const staged = db.matching("sync.stage_checksum_items");
  assert.deepEqual(staged[0].values.slice(0, 2), [7, "firespring_segments"]);
  assert.deepEqual(JSON.parse(String(staged[0].values[2])), [
    { row: { segment_id: "a", segment_name: null, member_count: null, segment_criteria: {} } },
  ]);
});

Deno.test("recheck stops as soon as no key differs, and a key gone from the source stages nothing", async () => {
  const db = compareDb([[]]);
  const dynamo = fakeDynamo(() => ({}));
  const outcome = await recheck(deps(db, dynamo), segments, 7, [d("unexpected", "x")]);
  assert.deepEqual(outcome.divergent, []);
  assert.equal(db.matching("sync.compare_checksum").length, 1);
  assert.equal(db.matching("sync.stage_checksum_items").length, 0, "no item, no row");
  assert.equal(db.matching("set progress_at = now()").length, 1);
});

Deno.test("recheck with no divergent key does nothing", async () => {
  const db = compareDb([[]]);
  const outcome = await recheck(deps(db), segments, 7, []);
  assert.deepEqual(outcome.divergent, []);
  assert.equal(db.statements.length, 0);
});
