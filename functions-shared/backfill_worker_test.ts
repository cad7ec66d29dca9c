/**
 * The import-worker's loop with a fake database (claims, checkpoints, releases) and a
 * fake DynamoDB (pages, throttling, a missing table): what it sends, in which
 * transaction, and when it stops.
 */

import assert from "node:assert/strict";
import { runWorker, type WorkerDeps } from "./backfill_worker.ts";
import { SCAN_ROUNDS } from "./scan_pacing.ts";
import {
  awsError,
  fakeClock,
  fakeCpuMeter,
  fakeDynamo,
  fakeSql,
  type SentCommand,
  type Statement,
} from "./testing_fakes.ts";

const SEGMENTS = "firespring-backdoor-segments-dev";
const WHERE = `backfill job 7 segment 1/4 of ${SEGMENTS}`;

interface Claim {
  job_id: string;
  segment: number;
  total_segments: number;
  source_table: string;
  target_table: string;
  region: string;
  exclusive_start_key: Record<string, unknown> | null;
  page_size: number;
}

const claim = (over: Partial<Claim> = {}): Claim => ({
  job_id: "7",
  segment: 1,
  total_segments: 4,
  source_table: SEGMENTS,
  target_table: "firespring_segments",
  region: "us-east-1",
  exclusive_start_key: null,
  page_size: 2,
  ...over,
});

const item = (id: string, value = "5") => ({
  segment_id: { S: id },
  name: { S: `name ${id}` },
  value: { N: value },
});

const keyOf = (id: string) => ({ segment_id: { S: id } });

/**
 * A database that hands out `claims` one by one, answers the wake check with
 * `pending`/`running`, merges every change, and runs `checkpoint` for each checkpoint.
 */
function backfillDb(
  claims: Claim[],
  options: {
    pending?: boolean;
    running?: number;
    checkpoint?: (s: Statement) => unknown[];
    release?: (s: Statement) => unknown[];
  } = {},
) {
  const queue = [...claims];
  return fakeSql((s) => {
    if (s.text.includes("sync.claim_segment")) {
      const next = queue.shift();
      return next ? [next] : [];
    }
    if (s.text.includes("sync.backfill_work_pending")) {
      return [{ pending: options.pending ?? false, running: options.running ?? 0 }];
    }
    if (s.text.includes("sync.merge_changes")) {
      return [{ applied: (JSON.parse(String(s.values[1])) as unknown[]).length }];
    }
    if (s.text.includes("insert into sync.dead_letters")) return [];
    if (s.text.includes("sync.checkpoint_segment")) return options.checkpoint?.(s) ?? [];
    if (s.text.includes("sync.release_segment")) return options.release?.(s) ?? [];
    if (s.text.includes("sync.fail_segment")) return [];
    return undefined;
  });
}

/** A DynamoDB whose Scan answers from `pages`, keyed by the JSON of ExclusiveStartKey. */
function pagedDynamo(
  pages: Record<string, { Items: unknown[]; LastEvaluatedKey?: unknown; units?: number }>,
  before: (command: SentCommand) => void = () => {},
) {
  return fakeDynamo((command) => {
    before(command);
    assert.equal(command.name, "ScanCommand");
    const start = JSON.stringify(command.input.ExclusiveStartKey ?? null);
    const page = pages[start];
    if (!page) throw new Error(`no page starts at ${start}`);
    return {
      Items: page.Items,
      LastEvaluatedKey: page.LastEvaluatedKey,
      ConsumedCapacity: page.units === undefined ? undefined : { CapacityUnits: page.units },
    };
  });
}

function workerDeps(
  db: ReturnType<typeof backfillDb>,
  dynamo: ReturnType<typeof fakeDynamo>,
  extra: Partial<WorkerDeps> = {},
) {
  const lines: string[] = [];
  const woken = { count: 0 };
  const deps: WorkerDeps = {
    sql: db.sql,
    dynamo: dynamo.dynamo,
    wake: () => {
      woken.count++;
      return Promise.resolve();
    },
    cpu: fakeCpuMeter(),
    cpuBudgetMs: 60_000,
    // Short, so that a regression that loops over pages fails in seconds rather than hangs.
    wallBudgetMs: 2_000,
    maxConcurrent: 4,
    maxRcuPerSecond: 1_000_000,
    pacing: fakeClock(),
    log: (line) => lines.push(line),
    ...extra,
  };
  return { deps, lines, woken };
}

const twoPages = {
  "null": { Items: [item("a"), item("b")], LastEvaluatedKey: keyOf("b") },
  [JSON.stringify(keyOf("b"))]: { Items: [item("c")] },
};

Deno.test("a claimed segment is scanned page by page, each page written with its checkpoint in one transaction", async () => {
  const db = backfillDb([claim()]);
  const dynamo = pagedDynamo(twoPages);
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.deepEqual(result, {
    segmentsFinished: 1,
    pages: 2,
    items: 3,
    rows: 3,
    stoppedBy: "no work",
  });
  assert.deepEqual(db.matching("sync.claim_segment").map((s) => s.values), [
    ["worker-a"],
    ["worker-a"],
  ]);
  assert.deepEqual(dynamo.regions, ["us-east-1", "us-east-1"]);
  assert.equal(dynamo.sent.length, 2);
  for (const [i, { input }] of dynamo.sent.entries()) {
    assert.equal(input.TableName, SEGMENTS);
    assert.equal(input.Segment, 1);
    assert.equal(input.TotalSegments, 4);
    assert.equal(input.Limit, 2);
    assert.equal(input.ConsistentRead, true, "a consistent Scan");
    assert.equal(input.ReturnConsumedCapacity, "TOTAL");
    assert.deepEqual(input.ExclusiveStartKey, i === 0 ? undefined : keyOf("b"));
  }
  // Each page: its merge and its checkpoint in the same transaction, one per page.
  const merges = db.matching("sync.merge_changes");
  const checkpoints = db.matching("sync.checkpoint_segment");
  assert.deepEqual(merges.map((s) => s.tx), [1, 2]);
  assert.deepEqual(checkpoints.map((s) => s.tx), [1, 2]);
  assert.deepEqual(db.transactions, { begun: 2, committed: 2, rolledBack: 0 });
  assert.deepEqual(checkpoints.map((s) => s.values), [
    ["7", 1, "worker-a", JSON.stringify(keyOf("b")), 2, 2, false],
    ["7", 1, "worker-a", null, 1, 1, true],
  ]);
  assert.equal(merges[0].values[0], "firespring_segments");
  const changes = JSON.parse(String(merges[0].values[1])) as {
    op: string;
    row: Record<string, unknown>;
    source: string;
    seq: unknown;
    changed_at: string;
  }[];
  assert.deepEqual(changes.map((c) => [c.op, c.row.segment_id, c.row.member_count, c.source]), [
    ["upsert", "a", 5, "backfill"],
    ["upsert", "b", 5, "backfill"],
  ]);
  assert.equal(changes[0].seq, null);
  assert.ok(!Number.isNaN(Date.parse(changes[0].changed_at)), "stamped with the read time");
  assert.deepEqual(lines, [`${WHERE}: claimed`, `${WHERE}: done`]);
});

Deno.test("a claim with a checkpoint resumes from it", async () => {
  const db = backfillDb([claim({ exclusive_start_key: keyOf("b") })]);
  const dynamo = pagedDynamo(twoPages);
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.equal(dynamo.sent.length, 1);
  assert.deepEqual(dynamo.sent[0].input.ExclusiveStartKey, keyOf("b"));
  assert.equal(result.items, 1);
  assert.equal(result.segmentsFinished, 1);
  assert.equal(lines[0], `${WHERE}: claimed (resuming from its checkpoint)`);
});

Deno.test("each claim wakes another worker only while segments wait and fewer than maxConcurrent run", async () => {
  const cases: [boolean, number, number][] = [[true, 1, 1], [true, 4, 0], [false, 0, 0]];
  for (const [pending, running, expected] of cases) {
    const db = backfillDb([claim()], { pending, running });
    const { deps, woken } = workerDeps(db, pagedDynamo(twoPages));
    await runWorker(deps, "worker-a");
    assert.equal(woken.count, expected, `pending ${pending}, running ${running}`);
  }
});

Deno.test("an isolate already over its CPU budget hands the segment on before any Scan", async () => {
  const db = backfillDb([claim(), claim({ segment: 2 })]);
  const dynamo = pagedDynamo(twoPages);
  const { deps, lines, woken } = workerDeps(db, dynamo, {
    cpu: fakeCpuMeter(1500),
    cpuBudgetMs: 1000,
  });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "budget");
  assert.equal(result.pages, 0);
  assert.equal(dynamo.sent.length, 0);
  assert.deepEqual(db.matching("sync.release_segment").map((s) => s.values), [
    ["7", 1, "worker-a"],
  ]);
  assert.equal(woken.count, 1, "another request goes on");
  assert.equal(db.matching("sync.claim_segment").length, 1, "no second claim");
  assert.equal(lines.at(-1), `${WHERE}: budget spent (isolate CPU 1500 ms), handed on`);
});

Deno.test("the mapping is measured on the isolate's CPU meter, and the budget checked before each page", async () => {
  const db = backfillDb([claim()]);
  const ids = ["a", "b", "c", "d", "e"];
  const pages = Object.fromEntries(ids.map((id, i) => [
    i === 0 ? "null" : JSON.stringify(keyOf(ids[i - 1])),
    { Items: [item(id)], LastEvaluatedKey: i < ids.length - 1 ? keyOf(id) : undefined },
  ]));
  const dynamo = pagedDynamo(pages);
  // 400 ms per page's mapping, a budget of 1000 ms: three pages (1200 ms), then hand on.
  const cpu = fakeCpuMeter(0, 400);
  const { deps, lines, woken } = workerDeps(db, dynamo, { cpu, cpuBudgetMs: 1000 });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.pages, 3);
  assert.equal(result.stoppedBy, "budget");
  assert.equal(cpu.steps, 3, "each page's mapping measured once");
  assert.equal(dynamo.sent.length, 3);
  assert.deepEqual(db.matching("sync.checkpoint_segment").at(-1)!.values.slice(3), [
    JSON.stringify(keyOf("c")),
    1,
    1,
    false,
  ]);
  assert.equal(woken.count, 1);
  assert.equal(lines.at(-1), `${WHERE}: budget spent (isolate CPU 1200 ms), handed on`);
});

Deno.test("when the wall budget runs out between pages, the segment is released and the worker woken", async () => {
  // The worker reads its wall clock with performance.now: each Scan moves it 100 ms.
  let t = 0;
  Object.defineProperty(performance, "now", { value: () => t, configurable: true });
  try {
    const db = backfillDb([claim()]);
    const dynamo = pagedDynamo({
      "null": { Items: [item("a")], LastEvaluatedKey: keyOf("a") },
      [JSON.stringify(keyOf("a"))]: { Items: [item("b")], LastEvaluatedKey: keyOf("b") },
      [JSON.stringify(keyOf("b"))]: { Items: [item("c")] },
    }, () => (t += 100));
    const { deps, lines, woken } = workerDeps(db, dynamo, { wallBudgetMs: 150 });
    const result = await runWorker(deps, "worker-a");
    assert.equal(result.stoppedBy, "budget");
    assert.equal(result.pages, 2);
    assert.equal(result.segmentsFinished, 0);
    assert.equal(dynamo.sent.length, 2);
    const checkpoints = db.matching("sync.checkpoint_segment").map((s) => s.values);
    assert.deepEqual(checkpoints.at(-1), [
      "7",
      1,
      "worker-a",
      JSON.stringify(keyOf("b")),
      1,
      1,
      false,
    ]);
    assert.equal(db.matching("sync.release_segment").length, 1);
    assert.ok(
      db.statements.findIndex((s) => s.text.includes("sync.release_segment")) >
        db.statements.findLastIndex((s) => s.text.includes("sync.checkpoint_segment")),
      "released after the last checkpoint",
    );
    assert.equal(woken.count, 1);
    assert.match(lines.at(-1)!, /budget spent .* handed on/);
  } finally {
    delete (performance as unknown as Record<string, unknown>).now;
  }
  assert.notEqual(performance.now(), 0, "the real clock is back");
});

Deno.test("a lost lease (the checkpoint's 40001) rolls the page back and the worker goes on", async () => {
  let checkpoints = 0;
  const db = backfillDb([claim(), claim({ segment: 2 })], {
    checkpoint: () => {
      if (checkpoints++ === 0) {
        throw Object.assign(
          new Error("backfill job 7 segment 1: worker worker-a no longer holds the lease"),
          { code: "40001" },
        );
      }
      return [];
    },
  });
  const dynamo = pagedDynamo({ "null": { Items: [item("a")] } });
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.deepEqual(result, {
    segmentsFinished: 1,
    pages: 1,
    items: 1,
    rows: 1,
    stoppedBy: "no work",
  });
  assert.deepEqual(db.transactions, { begun: 2, committed: 1, rolledBack: 1 });
  assert.deepEqual(dynamo.sent.map((c) => c.input.Segment), [1, 2]);
  assert.equal(db.matching("sync.claim_segment").length, 3);
  assert.equal(db.matching("sync.release_segment").length, 0, "the lease is another's now");
  assert.ok(
    lines.includes(
      `backfill job 7 segment 1 of ${SEGMENTS}: lease lost to another worker; its page was not written`,
    ),
    lines.join("\n"),
  );
});

Deno.test("a missing table fails its segment with a message naming the table and region", async () => {
  const lead = "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE";
  const db = backfillDb([
    claim({ source_table: lead, target_table: "mmp_toledo_leads", region: "us-east-2" }),
  ]);
  const dynamo = fakeDynamo(() => {
    throw awsError("ResourceNotFoundException", "Requested resource not found");
  });
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.equal(dynamo.sent.length, 1, "not retried");
  assert.deepEqual(dynamo.regions, ["us-east-2"]);
  assert.deepEqual(db.matching("sync.fail_segment").map((s) => s.values), [
    ["7", 1, "worker-a", `DynamoDB table ${lead} does not exist in us-east-2`],
  ]);
  assert.equal(db.matching("sync.claim_segment").length, 2, "the worker goes on");
  assert.equal(result.segmentsFinished, 0);
  assert.equal(result.stoppedBy, "no work");
  assert.equal(db.matching("sync.checkpoint_segment").length, 0);
  assert.ok(
    lines.includes(`backfill job 7 segment 1/4 of ${lead}: the table does not exist; job failed`),
  );
});

Deno.test("a poison item becomes a dead letter and its page still checkpoints", async () => {
  const db = backfillDb([claim()]);
  const dynamo = pagedDynamo({ "null": { Items: [item("a"), item("p", "abc")] } });
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.items, 2);
  assert.equal(result.rows, 1);
  assert.equal(result.segmentsFinished, 1);
  const [letters] = db.matching("insert into sync.dead_letters");
  const [checkpoint] = db.matching("sync.checkpoint_segment");
  assert.equal(letters.tx, checkpoint.tx, "the dead letter is written with the page");
  assert.deepEqual(checkpoint.values, ["7", 1, "worker-a", null, 2, 1, true]);
  const rows = JSON.parse(String(letters.values[0])) as Record<string, unknown>[];
  assert.equal(rows.length, 1);
  assert.equal(rows[0].source_table, SEGMENTS);
  assert.equal(rows[0].target_table, "firespring_segments");
  assert.deepEqual(rows[0].row_key, { segment_id: "p" });
  assert.equal(rows[0].position_source, "backfill");
  assert.match(String(rows[0].reason), /^firespring-backdoor-segments-dev \[segment_id="p"\]: /);
  assert.match(String(rows[0].reason), /attribute value/);
  const merged = JSON.parse(String(db.matching("sync.merge_changes")[0].values[1]));
  assert.deepEqual(merged.map((c: { row: { segment_id: string } }) => c.row.segment_id), ["a"]);
  assert.ok(lines.includes(`${WHERE}: 1 item(s) dead-lettered`));
});

Deno.test("a throttled Scan is retried after a jittered backoff, then the page is written", async () => {
  let calls = 0;
  const db = backfillDb([claim()]);
  const dynamo = fakeDynamo(() => {
    if (calls++ === 0) throw awsError("ProvisionedThroughputExceededException");
    return { Items: [item("a")] };
  });
  const clock = fakeClock(0.5);
  const { deps, lines } = workerDeps(db, dynamo, { pacing: clock });
  const result = await runWorker(deps, "worker-a");
  assert.equal(dynamo.sent.length, 2);
  assert.deepEqual(clock.slept, [500], "random 0.5 × 1 s");
  assert.equal(result.segmentsFinished, 1);
  assert.ok(lines.includes(
    `${WHERE}: ProvisionedThroughputExceededException after the SDK's retries; trying again in 500 ms`,
  ));
});

Deno.test("a Scan that stays throttled gives up after the rounds, releases its segment and names table and segment", async () => {
  const db = backfillDb([claim(), claim({ segment: 2 })]);
  const dynamo = fakeDynamo(() => {
    throw awsError("ThrottlingException", "Rate of requests exceeds the allowed throughput");
  });
  const clock = fakeClock(1);
  const { deps, lines } = workerDeps(db, dynamo, { pacing: clock });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "throttled");
  assert.equal(dynamo.sent.length, SCAN_ROUNDS);
  assert.deepEqual(clock.slept, [1000, 2000]);
  assert.deepEqual(db.matching("sync.release_segment").map((s) => s.values), [
    ["7", 1, "worker-a"],
  ]);
  assert.equal(db.matching("sync.claim_segment").length, 1, "the worker stops");
  assert.equal(db.matching("sync.checkpoint_segment").length, 0);
  assert.equal(
    lines.at(-1),
    `${WHERE}: Scan failed ${SCAN_ROUNDS} times in a row (each after the SDK's own retries): ` +
      "ThrottlingException: Rate of requests exceeds the allowed throughput; " +
      "released for a later worker",
  );
});

Deno.test("any other Scan error releases the segment and propagates, even if the release fails", async () => {
  for (const releaseFails of [false, true]) {
    const db = backfillDb([claim()], {
      release: () => {
        if (releaseFails) throw new Error("connection closed");
        return [];
      },
    });
    const dynamo = fakeDynamo(() => {
      throw awsError("ValidationException", "ExclusiveStartKey is invalid");
    });
    const { deps, lines } = workerDeps(db, dynamo);
    await assert.rejects(runWorker(deps, "worker-a"), /ExclusiveStartKey is invalid/);
    assert.equal(dynamo.sent.length, 1, "not retried");
    assert.deepEqual(db.matching("sync.release_segment").map((s) => s.values), [
      ["7", 1, "worker-a"],
    ]);
    assert.equal(
      lines.at(-1),
      `backfill job 7 segment 1 of ${SEGMENTS}: ExclusiveStartKey is invalid; released for another worker`,
    );
  }
});

Deno.test("pages are paced by their consumed capacity within the segment's share of the table's budget", async () => {
  const db = backfillDb([claim()]);
  const dynamo = pagedDynamo({
    "null": { Items: [item("a")], LastEvaluatedKey: keyOf("a"), units: 50 },
    [JSON.stringify(keyOf("a"))]: { Items: [item("b")], LastEvaluatedKey: keyOf("b"), units: 10 },
    [JSON.stringify(keyOf("b"))]: { Items: [] },
  });
  const clock = fakeClock();
  // 100 units per second for the table, 4 segments: 25 per second for this one.
  const { deps } = workerDeps(db, dynamo, { pacing: clock, maxRcuPerSecond: 100 });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.pages, 3);
  assert.deepEqual(clock.slept, [2000, 400]);
  // An empty last page still checkpoints the segment as done, with no merge.
  assert.deepEqual(db.matching("sync.checkpoint_segment").at(-1)!.values, [
    "7",
    1,
    "worker-a",
    null,
    0,
    0,
    true,
  ]);
  assert.equal(db.matching("sync.merge_changes").length, 2);
});
