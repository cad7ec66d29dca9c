import assert from "node:assert/strict";
import { awsError, fakeCpuMeter, fakeDynamo, fakeSql, type Statement } from "./testing_fakes.ts";
import { EDIT_CPU_MS, runWriteBacks, type WriteBackDeps } from "./write_back_run.ts";

const claimed = {
  id: "7",
  target_table: "firespring_segments",
  row_key: '{"segment_id": "s-1"}',
  range_key: null,
  columns: ["segment_name"],
  before_values: '{"segment_name": "Old"}',
  after_values: '{"segment_name": "New"}',
};
const item = { segment_id: { S: "s-1" }, name: { S: "Old" } };

/**
 * A database with due write-backs (`due`, claimed at once); records how each ended. The
 * run holds each lease unless `holds` says otherwise.
 */
function db(due: Record<string, unknown> | Record<string, unknown>[] = claimed, holds = true) {
  let claims = 0;
  const finished: Statement[] = [];
  const fake = fakeSql((s) => {
    if (s.text.includes("sync.claim_write_backs")) return claims++ === 0 ? [due].flat() : [];
    // An end, or one that leaves the restore due (the fakes here cannot restore): the
    // id, worker, status, detail and source values in the same places.
    if (s.text.includes("sync.finish_write_back") || s.text.includes(", '', $5::text::jsonb)")) {
      finished.push(s);
      return [{ status: s.values[2] }];
    }
    if (s.text.includes("sync.leave_write_back_restore")) return [{ left: true }];
    if (s.text.includes("sync.hold_write_back")) return [{ holds }];
    if (s.text.includes("sync.release_write_back")) return [];
    if (s.text.includes("sync.end_write_back_restore")) return [{ end_write_back_restore: true }];
    return undefined;
  });
  return { ...fake, finished };
}

function deps(sql: WriteBackDeps["sql"], overrides: Partial<WriteBackDeps> = {}): WriteBackDeps {
  return {
    sql,
    serviceKeys: ["sb_secret_test"],
    reader: () => {
      throw new Error("no reader");
    },
    writer: () => "no writer",
    worker: "w-1",
    wallBudgetMs: 10_000,
    cpu: fakeCpuMeter(),
    runCpuMs: 300,
    ...overrides,
  };
}

/** Runs the due write-backs with `dynamo` as reader and writer; the report and the log. */
async function runLogged(
  database: ReturnType<typeof db>,
  dynamo: ReturnType<typeof fakeDynamo>,
) {
  const lines: string[] = [];
  const report = await runWriteBacks(
    deps(database.sql, {
      reader: dynamo.dynamo,
      writer: dynamo.dynamo,
      log: (line) => lines.push(line),
    }),
  );
  return { report, lines };
}

Deno.test("a due edit is written with UpdateItem on condition and ends applied", async () => {
  const database = db();
  const dynamo = fakeDynamo((c) => (c.name === "GetItemCommand" ? { Item: item } : {}));
  const { report, lines } = await runLogged(database, dynamo);
  assert.deepEqual(report, { applied: 1, conflict: 0, failed: 0, retrying: 0 });
  // An applied edit has no line of its own (sync.write_backs has it): the run's totals.
  assert.deepEqual(lines, ["write-back run: 1 applied, 0 conflicts, 0 failed, 0 to retry"]);
  assert.deepEqual(dynamo.sent.map((c) => c.name), ["GetItemCommand", "UpdateItemCommand"]);
  assert.equal(dynamo.sent[0].input.ConsistentRead, true);
  assert.equal(dynamo.sent[1].input.ConditionExpression, "attribute_exists(#a1) AND #a0 = :v1");
  assert.equal(database.finished[0].values[2], "applied");
  assert.match(String(database.finished[0].values[3]), /firespring_segments \[segment_id="s-1"\]/);
});

Deno.test("an edit of a table this version does not map fails, naming the table and the fix; the run goes on", async () => {
  const unknown = { ...claimed, id: "9", target_table: "firespring_newer_table" };
  const database = db([unknown, claimed]);
  const dynamo = fakeDynamo((c) => (c.name === "GetItemCommand" ? { Item: item } : {}));
  const { report, lines } = await runLogged(database, dynamo);
  assert.deepEqual(report, { applied: 1, conflict: 0, failed: 1, retrying: 0 });
  const [failed] = database.finished.filter((s) => s.values[0] === "9");
  assert.equal(failed.values[2], "failed");
  assert.match(
    String(failed.values[3]),
    /^firespring_newer_table \{"segment_id": "s-1"\}: this version of the write-back function maps no table firespring_newer_table .*: deploy the functions/,
  );
  assert.ok(lines.some((l) => l.startsWith("write-back 9: failed: firespring_newer_table")));
});

/** An admin's edit of a visitor, a collapsed row: it showed the observation at T1. */
const visitEdit = {
  id: "8",
  target_table: "firespring_visitors",
  row_key: '{"visitor_id": "v-1"}',
  range_key: "1795860000",
  columns: ["page_views"],
  before_values: '{"page_views": "3"}',
  after_values: '{"page_views": "4"}',
};
const visitAt = (t: string) => ({
  session_id: { S: "v-1" },
  timestamp: { N: t },
  pages_viewed: { N: "3" },
});

Deno.test("a collapsed row's edit is a conflict, not written, once a newer observation of its key exists", async () => {
  const database = db(visitEdit);
  const dynamo = fakeDynamo((c) => {
    if (c.name === "GetItemCommand") return { Item: visitAt("1795860000") };
    if (c.name === "QueryCommand") return { Items: [{ timestamp: { N: "1795860600" } }] };
    return {};
  });
  const { report, lines } = await runLogged(database, dynamo);
  assert.deepEqual(report, { applied: 0, conflict: 1, failed: 0, retrying: 0 });
  // A conflict has a line of its own, then the run's totals.
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.match(lines[0], /^write-back 8: conflict: firespring_visitors \[visitor_id="v-1"/);
  assert.equal(lines[1], "write-back run: 0 applied, 1 conflicts, 0 failed, 0 to retry");
  assert.ok(!dynamo.sent.some((c) => c.name === "UpdateItemCommand"), "nothing written");
  const query = dynamo.sent.find((c) => c.name === "QueryCommand")!;
  assert.equal(query.input.KeyConditionExpression, "#h = :h AND #r > :r");
  assert.deepEqual(query.input.ExpressionAttributeValues, {
    ":h": { S: "v-1" },
    ":r": { N: "1795860000" },
  });
  assert.equal(query.input.ConsistentRead, true);
  assert.match(
    String(database.finished[0].values[3]),
    /^firespring_visitors \[visitor_id="v-1", timestamp=1795860000\]: a newer observation of this key \(timestamp 1795860600\) is in firespring-backdoor-visitors-dev, and the row will show it: the edit was not applied/,
  );

  // Without one, the edit is written to the observation the row showed.
  const alone = db(visitEdit);
  const quiet = fakeDynamo((c) => {
    if (c.name === "GetItemCommand") return { Item: visitAt("1795860000") };
    if (c.name === "QueryCommand") return { Items: [] };
    return {};
  });
  const written = await runWriteBacks(
    deps(alone.sql, { reader: quiet.dynamo, writer: quiet.dynamo }),
  );
  assert.equal(written.applied, 1);
  const update = quiet.sent.find((c) => c.name === "UpdateItemCommand")!;
  assert.deepEqual(update.input.Key, { session_id: { S: "v-1" }, timestamp: { N: "1795860000" } });
});

Deno.test("a lost answer of an update that took effect is no conflict: applied", async () => {
  const database = db();
  let reads = 0;
  const dynamo = fakeDynamo((c) => {
    if (c.name === "GetItemCommand") {
      return { Item: reads++ === 0 ? item : { ...item, name: { S: "New" } } };
    }
    throw awsError("ConditionalCheckFailedException");
  });
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo }),
  );
  assert.equal(report.applied, 1);
});

Deno.test("throttling and missing writer credentials are retried, naming the cause", async () => {
  const throttled = db();
  const dynamo = fakeDynamo(() => {
    throw awsError("ProvisionedThroughputExceededException", "rate exceeded");
  });
  const report = await runWriteBacks(
    deps(throttled.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo }),
  );
  assert.equal(report.retrying, 1);
  assert.equal(throttled.finished[0].values[2], "pending");
  assert.match(
    String(throttled.finished[0].values[3]),
    /^firespring_segments \[segment_id="s-1"\]: ProvisionedThroughputExceededException: rate exceeded/,
  );
  const noKey = db();
  await runWriteBacks(
    deps(noKey.sql, { writer: () => "no writer credentials: set WRITE_BACK_AWS_ACCESS_KEY_ID" }),
  );
  assert.equal(noKey.finished[0].values[2], "pending");
  assert.match(String(noKey.finished[0].values[3]), /no writer credentials/);
});

Deno.test("a run retrying many edits logs the first three, then its totals", async () => {
  const due = [7, 8, 9, 10, 11].map((id) => ({ ...claimed, id: String(id) }));
  const dynamo = fakeDynamo(() => {
    throw awsError("ProvisionedThroughputExceededException", "rate exceeded");
  });
  const { report, lines } = await runLogged(db(due), dynamo);
  assert.equal(report.retrying, 5);
  assert.deepEqual(lines.map((l) => l.replace(/: firespring_segments.*/, "")), [
    "write-back 7: pending",
    "write-back 8: pending",
    "write-back 9: pending",
    "write-back run: 0 applied, 0 conflicts, 0 failed, 5 to retry (2 not logged one by one: " +
    "sync.write_backs holds each edit's detail)",
  ]);
});

Deno.test("a run failing many edits (DynamoDB refusing every one) logs the first three, then its totals", async () => {
  const due = [7, 8, 9, 10, 11].map((id) => ({ ...claimed, id: String(id) }));
  const dynamo = fakeDynamo((c) => {
    if (c.name === "GetItemCommand") return { Item: item };
    throw awsError("ValidationException", "Item size has exceeded the maximum allowed size");
  });
  const database = db(due);
  const { report, lines } = await runLogged(database, dynamo);
  assert.equal(report.failed, 5);
  assert.equal(database.finished.length, 5, "each edit keeps its detail in sync.write_backs");
  assert.deepEqual(lines.map((l) => l.replace(/: firespring_segments.*/, "")), [
    "write-back 7: failed",
    "write-back 8: failed",
    "write-back 9: failed",
    "write-back run: 0 applied, 0 conflicts, 5 failed, 0 to retry (2 not logged one by one: " +
    "sync.write_backs holds each edit's detail)",
  ]);
});

Deno.test("an item a consistent read does not find is a conflict at once, not retried", async () => {
  const database = db();
  const dynamo = fakeDynamo(() => ({}));
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo }),
  );
  assert.deepEqual(report, { applied: 0, conflict: 1, failed: 0, retrying: 0 });
  assert.ok(!dynamo.sent.some((c) => c.name === "UpdateItemCommand"), "nothing written");
  assert.equal(database.finished[0].values[2], "conflict");
  assert.match(
    String(database.finished[0].values[3]),
    /^firespring_segments \[segment_id="s-1"\]: the item is gone from firespring-backdoor-segments-dev \(deleted in DynamoDB since the row was built\); the edit was not applied/,
  );
});

Deno.test("a request DynamoDB refuses as invalid fails at once, naming the cause", async () => {
  const database = db();
  const dynamo = fakeDynamo((c) => {
    if (c.name === "GetItemCommand") return { Item: item };
    throw awsError("ValidationException", "Item size has exceeded the maximum allowed size");
  });
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo }),
  );
  assert.equal(report.failed, 1);
  assert.equal(database.finished[0].values[2], "failed");
  assert.match(
    String(database.finished[0].values[3]),
    /^firespring_segments \[segment_id="s-1"\]: ValidationException: Item size has exceeded/,
  );
});

Deno.test("a write-back the claim failed (its attempts spent by runs that never answered) is restored and named, not written", async () => {
  const database = db({
    ...claimed,
    status: "failed",
    detail: "gave up after 8 attempts; the last run ended without an answer",
  });
  const dynamo = fakeDynamo(() => ({ Item: item }));
  const { report } = await runLogged(database, dynamo);
  assert.deepEqual(report, { applied: 0, conflict: 0, failed: 1, retrying: 0 });
  assert.ok(!dynamo.sent.some((c) => c.name === "UpdateItemCommand"), "nothing written");
  // The fake cannot restore the row: the restore is left due, for the next run's claim.
  const [named] = database.matching("sync.leave_write_back_restore(");
  assert.deepEqual(named.values.slice(2, 4), [
    "failed",
    'firespring_segments [segment_id="s-1"]: gave up after 8 attempts; the last run ended without an answer',
  ]);
  assert.match(
    String(named.values[4]),
    /^; the row still shows the edit: restoring it from the source failed \(.+\), tried again in a minute$/,
  );
  assert.equal(named.values[0], "7");
  assert.match(String(named.values[1]), /^w-1\//, "under the run's lease, kept by the claim");
  assert.equal(database.finished.length, 0, "the claim ended it already");
});

Deno.test("a write-back whose restore a stopped run left due is restored again, its edit named once", async () => {
  const database = db({
    ...claimed,
    status: "failed",
    detail:
      'firespring_segments [segment_id="s-1"]: ThrottlingException (gave up after 8 attempts)',
  });
  const dynamo = fakeDynamo(() => ({ Item: item }));
  const { report } = await runLogged(database, dynamo);
  assert.deepEqual(report, { applied: 0, conflict: 0, failed: 1, retrying: 0 });
  const [ended] = database.matching("sync.leave_write_back_restore(");
  assert.equal(
    ended.values[3],
    'firespring_segments [segment_id="s-1"]: ThrottlingException (gave up after 8 attempts)',
  );
});

Deno.test("a conflict whose restore is due is restored again and stays a conflict, its item not read for the edit", async () => {
  const database = db({
    ...claimed,
    status: "conflict",
    detail: 'firespring_segments [segment_id="s-1"]: the item changed in DynamoDB',
  });
  const dynamo = fakeDynamo(() => ({ Item: { segment_id: { S: "s-1" }, name: { S: "New" } } }));
  const { report } = await runLogged(database, dynamo);
  assert.deepEqual(report, { applied: 0, conflict: 1, failed: 0, retrying: 0 });
  assert.equal(database.matching("sync.end_write_back_restore(").length, 0, "not applied");
  const [left] = database.matching("sync.leave_write_back_restore(");
  assert.deepEqual(left.values.slice(2, 4), [
    "conflict",
    'firespring_segments [segment_id="s-1"]: the item changed in DynamoDB',
  ]);
});

Deno.test("a last attempt that would be retried ends failed and its row is restored under the lease the end kept", async () => {
  let claims = 0;
  const database = fakeSql((s) => {
    if (s.text.includes("sync.claim_write_backs")) return claims++ === 0 ? [claimed] : [];
    // Its attempts spent: the end fails it, its restore due.
    if (s.text.includes("sync.finish_write_back")) return [{ status: "failed" }];
    if (s.text.includes("sync.leave_write_back_restore")) return [{ left: true }];
    return undefined;
  });
  const dynamo = fakeDynamo(() => ({ Item: item }));
  const report = await runWriteBacks(deps(database.sql, { reader: dynamo.dynamo }));
  assert.deepEqual(report, { applied: 0, conflict: 0, failed: 1, retrying: 0 });
  // The fake cannot restore the row: the restore stays due, for the next run's claim.
  const [ended] = database.matching("sync.leave_write_back_restore(");
  assert.deepEqual(ended.values.slice(0, 1).concat(ended.values.slice(2, 4)), [
    "7",
    "failed",
    null,
  ], "its detail kept, the restore's added");
  assert.match(String(ended.values[4]), /^; the row still shows the edit/);
  assert.ok(
    database.statements.indexOf(ended) >
      database.statements.findIndex((x) => x.text.includes("sync.finish_write_back")),
    "after the end that failed it",
  );
});

Deno.test("a last attempt whose update was written but its answer lost ends applied, not failed", async () => {
  let claims = 0;
  const database = fakeSql((s) => {
    if (s.text.includes("sync.claim_write_backs")) return claims++ === 0 ? [claimed] : [];
    if (s.text.includes("sync.finish_write_back")) return [{ status: "failed" }];
    if (s.text.includes("sync.hold_write_back")) return [{ holds: true }];
    if (s.text.includes("sync.end_write_back_restore")) return [{ end_write_back_restore: true }];
    return undefined;
  });
  // Read before the update: the old name. The update reaches DynamoDB, but its answer is
  // a 500 past the SDK's retries. Read again: the new name.
  let reads = 0;
  const dynamo = fakeDynamo((c) => {
    if (c.name === "UpdateItemCommand") throw awsError("InternalServerError", "internal error");
    reads++;
    return { Item: { segment_id: { S: "s-1" }, name: { S: reads === 1 ? "Old" : "New" } } };
  });
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo }),
  );
  assert.deepEqual(report, { applied: 1, conflict: 0, failed: 0, retrying: 0 });
  const [applied] = database.matching("sync.end_write_back_restore(");
  assert.equal(applied.values[2], "applied");
  assert.match(
    String(applied.values[3]),
    /: the item holds the edit \(written by the last attempt/,
  );
  assert.equal(database.matching("sync.leave_write_back_restore(").length, 0, "nothing restored");
});

Deno.test("a run slowed past its lease writes nothing: the edit is the run's that took it over", async () => {
  const database = db(claimed, false);
  const dynamo = fakeDynamo((c) => (c.name === "GetItemCommand" ? { Item: item } : {}));
  const { report, lines } = await runLogged(database, dynamo);
  assert.deepEqual(report, { applied: 0, conflict: 0, failed: 0, retrying: 0 });
  assert.ok(!dynamo.sent.some((c) => c.name === "UpdateItemCommand"), "nothing written");
  assert.equal(database.finished.length, 0, "nor ended: it is no longer this run's");
  const [held] = database.matching("sync.hold_write_back");
  assert.equal(held.values[0], "7");
  assert.match(
    String(held.values[1]),
    /^w-1\/[0-9a-f]{8}$/,
    "the run's own lease, not the isolate's",
  );
  assert.match(lines[0], /^write-back 7: .*: left to the run that took it over/);
});

/**
 * Runs a write-back whose attempts runs that never answered spent (`edit` over `claimed`),
 * its item read as `item`; asserts it ended applied, and answers its detail.
 */
async function spentButApplied(edit: Record<string, unknown>, item: Record<string, unknown>) {
  const database = db({
    ...claimed,
    status: "failed",
    detail: "gave up after 8 attempts; the last run ended without an answer",
    ...edit,
  });
  const dynamo = fakeDynamo(() => ({ Item: item }));
  const report = await runWriteBacks(deps(database.sql, { reader: dynamo.dynamo }));
  assert.deepEqual(report, { applied: 1, conflict: 0, failed: 0, retrying: 0 });
  const [applied] = database.matching("sync.end_write_back_restore(");
  assert.equal(applied.values[2], "applied");
  return String(applied.values[3]);
}

Deno.test("a spent write-back whose item holds the edit is applied, not failed", async () => {
  assert.match(
    await spentButApplied({}, { segment_id: { S: "s-1" }, name: { S: "New" } }),
    /: the item holds the edit \(written by a run that ended without an answer\)$/,
  );
});

Deno.test("edits a run's budget does not reach go back untried", async () => {
  const database = db([claimed, { ...claimed, id: "9" }]);
  const dynamo = fakeDynamo((c) => (c.name === "GetItemCommand" ? { Item: item } : {}));
  let now = 0;
  const clock = performance.now;
  performance.now = () => now;
  try {
    const report = await runWriteBacks(
      deps(database.sql, {
        reader: () => {
          now = 20_000; // the first edit takes the whole budget
          return dynamo.dynamo("us-east-1");
        },
        writer: dynamo.dynamo,
      }),
    );
    assert.deepEqual(report, { applied: 1, conflict: 0, failed: 0, retrying: 0, more: true });
  } finally {
    performance.now = clock;
  }
  const released = database.matching("sync.release_write_back").map((s) => s.values);
  assert.deepEqual(released.map(([id]) => id), ["9"]);
  assert.match(String(released[0][1]), /^w-1\//);
});

Deno.test("a run stops at its CPU allowance, each edit charged, and says more may be due", async () => {
  const due = Array.from({ length: 30 }, (_, i) => ({ ...claimed, id: String(100 + i) }));
  const database = db(due);
  const dynamo = fakeDynamo((c) => (c.name === "GetItemCommand" ? { Item: item } : {}));
  // The allowance is the run's own, whatever the isolate used before it.
  const cpu = fakeCpuMeter(1_400);
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo, cpu, runCpuMs: 100 }),
  );
  const edits = Math.floor(100 / EDIT_CPU_MS);
  assert.deepEqual(report, { applied: edits, conflict: 0, failed: 0, retrying: 0, more: true });
  assert.equal(cpu.usedMs(), 1_400 + edits * EDIT_CPU_MS, "each edit charged");
  const released = database.matching("sync.release_write_back").map((s) => s.values[0]);
  assert.deepEqual(released, due.slice(edits).map((d) => d.id), "the rest go back untried");
});

Deno.test("an edit's planning is a measured step of the isolate's CPU: large items stop a run sooner", async () => {
  // A meter that counts 30 ms for each measured step (a large item's mapping and plan),
  // as the estimating meter counts a step by its wall time.
  const due = Array.from({ length: 30 }, (_, i) => ({ ...claimed, id: String(200 + i) }));
  const database = db(due);
  const dynamo = fakeDynamo((c) => (c.name === "GetItemCommand" ? { Item: item } : {}));
  const cpu = fakeCpuMeter(0, 30);
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo, cpu, runCpuMs: 100 }),
  );
  assert.equal(cpu.steps, 3, "each edit's plan measured");
  assert.deepEqual(report, { applied: 3, conflict: 0, failed: 0, retrying: 0, more: true });
  assert.equal(cpu.usedMs(), 3 * (30 + EDIT_CPU_MS));
});

Deno.test("a spent write-back is ended whatever the allowance; the untried ones go back", async () => {
  const spentRow = { ...claimed, id: "50", status: "failed", detail: "gave up after 8 attempts" };
  const database = db([{ ...claimed, id: "40" }, spentRow, { ...claimed, id: "60" }]);
  const dynamo = fakeDynamo(() => ({ Item: item }));
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo, runCpuMs: EDIT_CPU_MS }),
  );
  assert.equal(report.failed, 1, "the spent one ended first, its row restored");
  assert.equal(report.applied, 0, "its charge took the allowance");
  assert.equal(report.more, true);
  assert.deepEqual(
    database.matching("sync.release_write_back").map((s) => s.values[0]),
    ["40", "60"],
  );
});

Deno.test("spent write-backs go first, then edits while the allowance holds", async () => {
  const spentRow = { ...claimed, id: "50", status: "failed", detail: "gave up after 8 attempts" };
  const database = db([{ ...claimed, id: "40" }, spentRow, { ...claimed, id: "60" }]);
  const dynamo = fakeDynamo(() => ({ Item: item }));
  const report = await runWriteBacks(
    deps(database.sql, {
      reader: dynamo.dynamo,
      writer: dynamo.dynamo,
      runCpuMs: 2 * EDIT_CPU_MS,
    }),
  );
  assert.equal(report.failed, 1);
  assert.equal(report.applied, 1, "the one edit the allowance holds");
  assert.equal(report.more, true);
  const released = database.matching("sync.release_write_back").map((s) => s.values[0]);
  assert.deepEqual(released, ["60"]);
});

Deno.test("a run that ends with nothing due says nothing more is", async () => {
  const database = db();
  const dynamo = fakeDynamo((c) => (c.name === "GetItemCommand" ? { Item: item } : {}));
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo }),
  );
  assert.deepEqual(report, { applied: 1, conflict: 0, failed: 0, retrying: 0 });
});

Deno.test("a run that fails gives its claimed, untried write-backs back", async () => {
  let claims = 0;
  const database = fakeSql((s) => {
    if (s.text.includes("sync.claim_write_backs")) {
      return claims++ === 0 ? [{ ...claimed, id: "70" }, { ...claimed, id: "71" }] : [];
    }
    if (s.text.includes("sync.hold_write_back")) return [{ holds: true }];
    if (s.text.includes("sync.finish_write_back")) throw new Error("the connection was lost");
    if (s.text.includes("sync.release_write_back")) return [];
    return undefined;
  });
  const dynamo = fakeDynamo((c) => (c.name === "GetItemCommand" ? { Item: item } : {}));
  await assert.rejects(
    runWriteBacks(deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo })),
    /the connection was lost/,
  );
  const released = database.matching("sync.release_write_back").map((s) => s.values[0]);
  assert.deepEqual(released, ["71"], "not left leased for 2 minutes");
});

/** An edit that reorders a string set's members, and the item that holds the set. */
const reordered = {
  columns: ["segment_criteria"],
  before_values: '{"segment_criteria": {"raw": {"tags": ["a", "b"]}}}',
  after_values: '{"segment_criteria": {"raw": {"tags": ["b", "a"]}}}',
};
const heldInOrder = { segment_id: { S: "s-1" }, raw: { M: { tags: { SS: ["a", "b"] } } } };

Deno.test("an edit DynamoDB holds already in equal values (a set reordered) writes nothing, ends applied, and puts the row back", async () => {
  const database = db({ ...claimed, ...reordered });
  const dynamo = fakeDynamo(() => ({ Item: heldInOrder }));
  const { report } = await runLogged(database, dynamo);
  assert.deepEqual(report, { applied: 1, conflict: 0, failed: 0, retrying: 0 });
  assert.ok(!dynamo.sent.some((c) => c.name === "UpdateItemCommand"), "nothing written");
  const [ended] = database.finished;
  assert.equal(ended.values[2], "applied");
  // The row is put back from a read of the source (tried: the fake database cannot).
  assert.match(
    String(ended.values[3]),
    /so nothing was written; the row still shows the values as edited: putting them back as the source shows them failed \(.+\); the table's next validation repairs it$/,
  );
});

Deno.test("a spent write-back whose item holds it in a form equal to DynamoDB's is applied, and its row put back", async () => {
  // Put back from the source (tried: the fake database cannot).
  assert.match(
    await spentButApplied(reordered, heldInOrder),
    /an answer\); the row still shows the values as edited: putting them back .* the table's next validation repairs it$/,
  );
});
