/**
 * The validator's reads of the source with a fake DynamoDB and database: the parallel
 * Scan from the run's checkpoints, each page staged with its checkpoint in one
 * transaction, the budget, throttling, and the consistent point reads.
 */

import assert from "node:assert/strict";
import type { ValidatorDeps } from "./checksum_validator.ts";
import { byTargetTable } from "./table_registry.ts";
import {
  awsError,
  fakeClock,
  fakeCpuMeter,
  fakeDynamo,
  fakeSql,
  type SentCommand,
  type Statement,
} from "./testing_fakes.ts";
import { pointRead, stage, stageSource } from "./validator_source.ts";

const segments = byTargetTable("firespring_segments")!;
const visitors = byTargetTable("firespring_visitors")!;
const leads = byTargetTable("mmp_toledo_leads")!;

const item = (id: string, value = "1") => ({ segment_id: { S: id }, value: { N: value } });

/** A database whose run has `scanState`; staging and checkpoints are recorded. */
function sourceDb(scanState: Record<string, unknown> = {}) {
  return fakeSql((s: Statement) => {
    if (s.text.startsWith("select scan_state")) return [{ scan_state: scanState }];
    if (s.text.includes("sync.stage_checksum_items")) return [];
    if (s.text.startsWith("update public.sync_checksums")) return [];
    return undefined;
  });
}

function deps(
  db: ReturnType<typeof fakeSql>,
  dynamo: ReturnType<typeof fakeDynamo>,
  extra: Partial<ValidatorDeps> = {},
): ValidatorDeps {
  return { sql: db.sql, dynamo: dynamo.dynamo, pacing: fakeClock(), ...extra };
}

/** A Scan answering from pages keyed by segment and the JSON of ExclusiveStartKey. */
function scans(pages: Record<string, { Items: unknown[]; LastEvaluatedKey?: unknown }>) {
  return fakeDynamo((c: SentCommand) => {
    assert.equal(c.name, "ScanCommand");
    const at = `${c.input.Segment}:${JSON.stringify(c.input.ExclusiveStartKey ?? null)}`;
    const page = pages[at];
    if (!page) throw new Error(`no page at ${at}`);
    return page;
  });
}

Deno.test("stageSource scans every segment from its checkpoint and stages each page with it", async () => {
  const db = sourceDb({ "0": "done", "1": { segment_id: { S: "k" } } });
  const dynamo = scans({
    [`1:${JSON.stringify({ segment_id: { S: "k" } })}`]: {
      Items: [item("m"), item("bad", "x")],
      LastEvaluatedKey: { segment_id: { S: "m" } },
    },
    [`1:${JSON.stringify({ segment_id: { S: "m" } })}`]: { Items: [] },
    "2:null": { Items: [item("z")] },
  });
  const outcome = await stageSource(deps(db, dynamo, { segments: 3, pageSize: 2 }), segments, 5);
  assert.equal(outcome, "complete");
  assert.deepEqual(db.matching("select scan_state")[0].values, [5]);
  assert.deepEqual(
    dynamo.sent.map((c) => [c.input.Segment, c.input.TotalSegments, c.input.Limit]).sort(),
    [[1, 3, 2], [1, 3, 2], [2, 3, 2]],
    "segment 0 was done already",
  );
  for (const c of dynamo.sent) {
    assert.equal(c.input.TableName, "firespring-backdoor-segments-dev");
    assert.equal(c.input.ConsistentRead, true);
    assert.equal(c.input.ReturnConsumedCapacity, "TOTAL");
  }
  // Each page: its staged rows and its checkpoint in one transaction.
  const staged = db.matching("sync.stage_checksum_items");
  const checkpoints = db.matching("set source_items = source_items +");
  assert.equal(staged.length, 2, "the empty page stages nothing");
  assert.equal(checkpoints.length, 3);
  for (const s of staged) {
    assert.ok(checkpoints.some((c) => c.tx === s.tx), "staged with its checkpoint");
  }
  const bySegment = (segment: string) =>
    checkpoints.filter((c) => (c.values[1] as string[])[0] === segment).map((c) => c.values);
  const [first, last] = bySegment("1");
  assert.deepEqual(first.slice(0, 3), [2, ["1"], JSON.stringify({ segment_id: { S: "m" } })]);
  const unmappable = JSON.parse(String(first[3]));
  assert.equal(unmappable.length, 1);
  assert.deepEqual(unmappable[0].key, { segment_id: "bad" });
  assert.match(unmappable[0].reason, /\[segment_id="bad"\]/);
  assert.deepEqual(last.slice(0, 4), [0, ["1"], '"done"', "[]"]);
  assert.equal(first[4], 5, "the run's row");
  const rows = JSON.parse(String(
    staged.find((s) => String(s.values[2]).includes('"m"'))!
      .values[2],
  ));
  assert.deepEqual(rows.map((r: { row: { segment_id: string } }) => r.row.segment_id), ["m"]);
});

Deno.test("stageSource stops when the request's page budget is spent", async () => {
  const db = sourceDb();
  const dynamo = scans({
    "0:null": { Items: [item("a")], LastEvaluatedKey: { segment_id: { S: "a" } } },
  });
  const outcome = await stageSource(
    deps(db, dynamo, { segments: 1, budget: { cpuMs: 1e9, wallMs: 1e9, pages: 1 } }),
    segments,
    5,
  );
  assert.equal(outcome, "budget");
  assert.equal(dynamo.sent.length, 1);
  assert.equal(db.matching("set source_items").length, 1, "the page read is checkpointed");
});

Deno.test("stageSource counts the budget's CPU on the isolate's meter when given", async () => {
  const db = sourceDb();
  const dynamo = scans({
    "0:null": { Items: [item("a")], LastEvaluatedKey: { segment_id: { S: "a" } } },
    [`0:${JSON.stringify({ segment_id: { S: "a" } })}`]: {
      Items: [item("b")],
      LastEvaluatedKey: { segment_id: { S: "b" } },
    },
  });
  const cpu = fakeCpuMeter(100, 500);
  const outcome = await stageSource(
    deps(db, dynamo, { segments: 1, cpu, budget: { cpuMs: 1000, wallMs: 1e9 } }),
    segments,
    5,
  );
  assert.equal(outcome, "budget");
  assert.equal(cpu.steps, 2, "each page's mapping measured");
  assert.equal(dynamo.sent.length, 2, "100 + 500 + 500 ms: over after the second page");
});

Deno.test("stageSource retries a throttled page after a backoff, logging table and segment", async () => {
  const db = sourceDb();
  let calls = 0;
  const dynamo = fakeDynamo(() => {
    if (calls++ === 0) throw awsError("ThrottlingException");
    return { Items: [item("a")] };
  });
  const lines: string[] = [];
  const clock = fakeClock(0.25);
  const outcome = await stageSource(
    deps(db, dynamo, { segments: 1, pacing: clock, log: (l) => lines.push(l) }),
    segments,
    5,
  );
  assert.equal(outcome, "complete");
  assert.deepEqual(clock.slept, [250]);
  assert.deepEqual(lines, [
    "validation of firespring-backdoor-segments-dev segment 0: ThrottlingException; again in 250 ms",
  ]);
});

Deno.test("stage writes a point read's rows with the run's progress; a soft delete stages no row", async () => {
  const db = sourceDb();
  await stage(deps(db, fakeDynamo(() => ({}))), segments, 5, [item("a")]);
  assert.equal(db.matching("sync.stage_checksum_items").length, 1);
  assert.deepEqual(db.matching("set progress_at = now()")[0].values, [5]);
  const deleted = sourceDb();
  await stage(deps(deleted, fakeDynamo(() => ({}))), leads, 5, [
    { id: { S: "l-1" }, _deleted: { BOOL: true } },
  ]);
  assert.equal(deleted.matching("sync.stage_checksum_items").length, 0);
  assert.equal(deleted.matching("set progress_at = now()").length, 1);
  assert.deepEqual(deleted.transactions, { begun: 1, committed: 1, rolledBack: 0 });
});

Deno.test("pointRead gets a plain table's item consistently, or nothing", async () => {
  const dynamo = fakeDynamo((c: SentCommand) =>
    (c.input.Key as { segment_id: { S: string } }).segment_id.S === "a" ? { Item: item("a") } : {}
  );
  const d = deps(sourceDb(), dynamo);
  assert.deepEqual(await pointRead(d, segments, { segment_id: "a" }), [item("a")]);
  assert.deepEqual(await pointRead(d, segments, { segment_id: "b" }), []);
  assert.deepEqual(dynamo.sent[0], {
    name: "GetItemCommand",
    input: {
      TableName: "firespring-backdoor-segments-dev",
      Key: { segment_id: { S: "a" } },
      ConsistentRead: true,
    },
  });
});

Deno.test("pointRead queries every observation of a collapsed key, page by page", async () => {
  const obs = (t: string) => ({ session_id: { S: "v" }, timestamp: { N: t } });
  const dynamo = fakeDynamo((c: SentCommand) =>
    c.input.ExclusiveStartKey === undefined
      ? { Items: [obs("1"), obs("2")], LastEvaluatedKey: obs("2") }
      : { Items: [obs("3")] }
  );
  const items = await pointRead(deps(sourceDb(), dynamo), visitors, { visitor_id: "v" });
  assert.deepEqual(items, [obs("1"), obs("2"), obs("3")]);
  assert.equal(dynamo.sent.length, 2);
  assert.deepEqual(dynamo.sent[0].input, {
    TableName: "firespring-backdoor-visitors-dev",
    KeyConditionExpression: "#h = :h",
    ExpressionAttributeNames: { "#h": "session_id" },
    ExpressionAttributeValues: { ":h": { S: "v" } },
    ConsistentRead: true,
    ExclusiveStartKey: undefined,
  });
  assert.deepEqual(dynamo.sent[1].input.ExclusiveStartKey, obs("2"));
});
