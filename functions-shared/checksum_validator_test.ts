/**
 * The checksum validator's run with a fake database and DynamoDB: the run's row from
 * start to end, the verdict (divergent keys by kind, unmappable items), continuation,
 * failure, and the repair followed by a second validation.
 */

import assert from "node:assert/strict";
import { validateTable, type ValidatorDeps } from "./checksum_validator.ts";
import { byTargetTable } from "./table_registry.ts";
import {
  fakeClock,
  fakeDynamo,
  fakeSql,
  type SentCommand,
  type Statement,
} from "./testing_fakes.ts";
import type { Divergence } from "./validator_compare.ts";

const segments = byTargetTable("firespring_segments")!;
const SEEN = new Date("2026-02-01T12:00:00Z");

/**
 * A database of validation runs: new runs get ids from 42; `running` are the running
 * runs (id -> repair_requested); compare_checksum answers `divergent(run)`.
 */
function runDb(options: {
  running?: Record<number, boolean>;
  divergent?: (run: number) => Divergence[];
  unmappable?: unknown[];
} = {}) {
  let nextId = 42;
  return fakeSql((s: Statement) => {
    const t = s.text;
    if (t.startsWith("insert into public.sync_checksums")) return [{ id: String(nextId++) }];
    if (t.startsWith("select repair_requested")) {
      const repair = options.running?.[Number(s.values[0])];
      return repair === undefined ? [] : [{ repair_requested: repair }];
    }
    if (t.startsWith("select scan_state")) return [{ scan_state: {} }];
    if (t.includes("sync.stage_checksum_items")) return [];
    if (t.startsWith("update public.sync_checksums")) return [];
    if (t.includes("sync.compare_checksum")) {
      const divergent = options.divergent?.(Number(s.values[0])) ?? [];
      const rows = divergent.length === 0
        ? [{ kind: null, row_key: null }]
        : divergent.map((d) => ({ kind: d.kind, row_key: d.key }));
      return rows.map((r) => ({ ...r, expected_rows: "2", target_rows: "2", seen_at: SEEN }));
    }
    if (t.startsWith("select source_items::int, unmappable")) {
      return [{ source_items: 2, unmappable: options.unmappable ?? [] }];
    }
    if (t.startsWith("delete from sync.checksum_items")) return [];
    if (t.includes("from sync.observations")) return [];
    if (t.includes("sync.merge_changes")) {
      return [{ applied: (JSON.parse(String(s.values[1])) as unknown[]).length }];
    }
    return undefined;
  });
}

const item = (id: string) => ({ segment_id: { S: id }, value: { N: "1" } });

/** A source of two items; GetItem answers every key. */
const source = () =>
  fakeDynamo((c: SentCommand) =>
    c.name === "ScanCommand" ? { Items: [item("a"), item("b")] } : { Item: c.input.Key }
  );

function deps(
  db: ReturnType<typeof fakeSql>,
  dynamo: ReturnType<typeof fakeDynamo>,
  extra: Partial<ValidatorDeps> = {},
) {
  const lines: string[] = [];
  const d: ValidatorDeps = {
    sql: db.sql,
    dynamo: dynamo.dynamo,
    segments: 1,
    settleMs: 0,
    pacing: fakeClock(),
    log: (line) => lines.push(line),
    ...extra,
  };
  return { deps: d, lines };
}

const doneUpdate = (db: ReturnType<typeof fakeSql>) => db.matching("set status = 'done'");

Deno.test("a new run is recorded, scanned, compared and closed as a match", async () => {
  const db = runDb();
  const { deps: d, lines } = deps(db, source());
  const runs: number[] = [];
  const result = await validateTable(d, segments, { onRun: (id) => runs.push(id) });
  assert.deepEqual(runs, [42]);
  assert.ok(!("continued" in result));
  assert.equal(result.table, "firespring_segments");
  assert.equal(result.runId, 42);
  assert.equal(result.match, true);
  assert.equal(result.sourceItems, 2);
  assert.equal(result.expectedRows, 2);
  assert.equal(result.targetRows, 2);
  assert.deepEqual([result.missing, result.unexpected, result.different], [[], [], []]);
  assert.equal(result.repaired, undefined);
  assert.deepEqual(db.matching("insert into public.sync_checksums")[0].values, [
    "firespring_segments",
    false,
  ]);
  const [done] = doneUpdate(db);
  assert.ok(done.values.includes(true), "match recorded");
  assert.equal(done.values.at(-1), 42);
  assert.deepEqual(db.statements.at(-1)!.values, [42], "its staged items removed");
  assert.match(db.statements.at(-1)!.text, /^delete from sync\.checksum_items/);
  assert.deepEqual(lines, [
    "firespring_segments: 2 items, 2 expected rows, 2 target rows, match",
  ]);
});

Deno.test("an unmappable source item means no match, even with nothing divergent", async () => {
  const unmappable = [{ key: { segment_id: "x" }, reason: "bad" }];
  const db = runDb({ unmappable });
  const { deps: d, lines } = deps(db, source());
  const result = await validateTable(d, segments);
  assert.ok(!("continued" in result));
  assert.equal(result.match, false);
  assert.deepEqual(result.unmappable, unmappable);
  assert.match(lines[0], /0 divergent keys, 1 unmappable items$/);
});

Deno.test("keys that differ on every look are reported by kind", async () => {
  const db = runDb({
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
  assert.equal(db.matching("sync.compare_checksum").length, 4, "one look and three rechecks");
  const [done] = doneUpdate(db);
  assert.ok(done.values.includes('[{"segment_id":"a"}]'));
  assert.ok(done.values.includes('[{"segment_id":"z"}]'));
  assert.ok(done.values.includes('[{"segment_id":"b"}]'));
  assert.equal(db.matching("sync.merge_changes").length, 0, "no repair unless asked");
});

Deno.test("a run that is not running cannot be continued", async () => {
  const db = runDb({ running: {} });
  const { deps: d } = deps(db, source());
  await assert.rejects(validateTable(d, segments, { runId: 9 }), /validation run 9 is not running/);
  assert.equal(db.matching("insert into").length, 0);
});

Deno.test("a run out of budget returns a continuation and keeps its staged items", async () => {
  const db = runDb();
  const dynamo = fakeDynamo(() => ({
    Items: [item("a")],
    LastEvaluatedKey: { segment_id: { S: "a" } },
  }));
  const { deps: d, lines } = deps(db, dynamo, {
    budget: { cpuMs: 1e9, wallMs: 1e9, pages: 1 },
  });
  const result = await validateTable(d, segments);
  assert.deepEqual(result, { continued: true, runId: 42, table: "firespring_segments" });
  assert.equal(db.matching("delete from sync.checksum_items").length, 0);
  assert.equal(doneUpdate(db).length, 0);
  assert.deepEqual(lines, ["firespring_segments: validation run 42 goes on in another request"]);
});

Deno.test("a failing run is marked failed with the error, its staged items removed", async () => {
  const db = runDb();
  const dynamo = fakeDynamo(() => {
    throw Object.assign(new Error("One or more parameter values were invalid"), {
      name: "ValidationException",
    });
  });
  const { deps: d } = deps(db, dynamo);
  await assert.rejects(validateTable(d, segments), /One or more parameter values were invalid/);
  const [failed] = db.matching("set status = 'failed'");
  assert.deepEqual(failed.values, ["One or more parameter values were invalid", 42]);
  assert.deepEqual(db.matching("delete from sync.checksum_items")[0].values, [42]);
});

Deno.test("a continued run asked to repair re-applies the divergent keys and validates again", async () => {
  const db = runDb({
    running: { 7: true },
    divergent: (run) => (run === 7 ? [{ kind: "missing", key: { segment_id: "a" } }] : []),
  });
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
    ) => [
      c.op,
      c.row.segment_id,
      c.source,
      c.seen_at,
    ]),
    [["upsert", "a", "repair", SEEN.toISOString()]],
  );
  const [firstDone] = doneUpdate(db);
  assert.equal(firstDone.values.at(-1), 7);
  assert.ok(firstDone.values.includes(true), "repaired = true recorded");
  assert.deepEqual(db.matching("insert into public.sync_checksums")[0].values, [
    "firespring_segments",
    false,
  ]);
  assert.equal(lines.length, 2);
});
