/**
 * A look's chunk with a fake database: the expected rows of the keys read again, staged
 * with the run's progress in one transaction, and the run's unmappable list read and
 * written once a chunk, what the consistent reads find replacing what the Scan's pages
 * found.
 */

import assert from "node:assert/strict";
import { byTargetTable, type TableSpec } from "./table_registry.ts";
import { fakeClock, fakeDynamo, fakeSql, type Statement } from "./testing_fakes.ts";
import type { ValidatorDeps } from "./validator_deps.ts";
import { addToChunk, emptyChunk, stage } from "./validator_look_chunk.ts";
import type { Item, RowKey } from "./validator_plan.ts";

const segments = byTargetTable("firespring_segments")!;
const leads = byTargetTable("mmp_toledo_leads")!;

const item = (id: string, value = "1") => ({ segment_id: { S: id }, value: { N: value } });

const deps = (db: { sql: ReturnType<typeof fakeSql>["sql"] }): ValidatorDeps => ({
  sql: db.sql,
  dynamo: fakeDynamo(() => ({})).dynamo,
  pacing: fakeClock(),
});

/** A database for `stage`: the run's unmappable list holds `listed`. */
function sourceDb(listed: unknown[] = []) {
  return fakeSql((s: Statement) => {
    if (s.text.includes("sync.stage_checksum_items")) return [];
    if (s.text.startsWith("select unmappable, recheck_read from public.sync_checksums")) {
      return [{ unmappable: listed, recheck_read: 0 }];
    }
    if (s.text.includes("sync.hold_validation(")) return [];
    if (s.text.startsWith("update public.sync_checksums")) return [];
    return undefined;
  });
}

/** Stages the reads of a look's first keys, as recheckLook does, for worker "w1". */
async function stageReads(
  d: ValidatorDeps,
  spec: TableSpec,
  run: number,
  reads: { key: RowKey; items: Item[] }[],
) {
  const chunk = emptyChunk();
  for (const { key, items } of reads) addToChunk(d, spec, chunk, key, items);
  await stage(d, spec, run, chunk, { worker: "w1", from: 0 });
}

Deno.test("stage writes a point read's rows with the run's progress and the look's checkpoint; a soft delete stages no row", async () => {
  const db = sourceDb();
  await stageReads(deps(db), segments, 5, [
    { key: { segment_id: "a" }, items: [item("a")] },
  ]);
  assert.equal(db.matching("sync.stage_checksum_items").length, 1);
  assert.deepEqual(
    db.matching("set progress_at = now()")[0].values,
    ["[]", 1, null, null, 5],
    "one key read, with no reads' bounds noted",
  );
  assert.deepEqual(db.matching("sync.hold_validation(")[0].values, [5, "w1"]);
  const deleted = sourceDb();
  await stageReads(deps(deleted), leads, 5, [
    { key: { lead_id: "l-1" }, items: [{ id: { S: "l-1" }, _deleted: { BOOL: true } }] },
  ]);
  assert.equal(deleted.matching("sync.stage_checksum_items").length, 0);
  assert.equal(deleted.matching("set progress_at = now()").length, 1);
  assert.deepEqual(deleted.transactions, { begun: 1, committed: 1, rolledBack: 0 });
});

Deno.test("a recheck's consistent read replaces what the Scan's pages found unmappable for its key", async () => {
  const stale = { key: { segment_id: "a" }, reason: "a stale page's reason" };
  const other = { key: { segment_id: "b" }, reason: "b's own" };
  // Unmappable now: listed in place of the stale page's entry, other keys' entries kept.
  const still = sourceDb([stale, other]);
  await stageReads(deps(still), segments, 5, [
    { key: { segment_id: "a" }, items: [{ segment_id: { S: "a" }, name: { N: "1" } }] },
  ]);
  const [written] = still.matching("set progress_at = now(), unmappable =");
  const listed = JSON.parse(String(written.values[0]));
  assert.deepEqual(listed.map((u: { key: unknown }) => u.key), [{ segment_id: "b" }, {
    segment_id: "a",
  }]);
  assert.match(listed[1].reason, /segment_id="a"/);
  // Mappable now (fixed since the stale page): no longer listed.
  const fixed = sourceDb([stale, other]);
  await stageReads(deps(fixed), segments, 5, [
    { key: { segment_id: "a" }, items: [item("a")] },
  ]);
  const [cleared] = fixed.matching("set progress_at = now(), unmappable =");
  assert.deepEqual(JSON.parse(String(cleared.values[0])), [other]);
});

Deno.test("a recheck's reads of several keys read and write the run's unmappable list once", async () => {
  const listed = [
    { key: { segment_id: "a" }, reason: "a stale page's reason" },
    { key: { segment_id: "b" }, reason: "b's stale reason" },
    { key: { segment_id: "c" }, reason: "c's own" },
  ];
  const db = sourceDb(listed);
  await stageReads(deps(db), segments, 5, [
    { key: { segment_id: "a" }, items: [item("a")] },
    { key: { segment_id: "b" }, items: [{ segment_id: { S: "b" }, name: { N: "1" } }] },
  ]);
  assert.equal(db.matching("select unmappable, recheck_read from public.sync_checksums").length, 1);
  const written = db.matching("set progress_at = now(), unmappable =");
  assert.equal(written.length, 1, "one write for both keys");
  const now = JSON.parse(String(written[0].values[0])) as { key: unknown }[];
  assert.deepEqual(now.map((u) => u.key), [{ segment_id: "c" }, { segment_id: "b" }]);
  assert.equal(db.matching("sync.stage_checksum_items").length, 1, "a's row, staged");
});
