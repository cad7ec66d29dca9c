/**
 * The validator's reads of the source with a fake DynamoDB and database: the Scan on the
 * run's leased segments from their checkpoints, several at once, each page compared (a
 * plain table) or staged (a collapsed one) with its checkpoint in one transaction, the
 * budget and the CPU the pages in flight will cost, throttling.
 */

import assert from "node:assert/strict";
import type { ValidatorDeps } from "./validator_deps.ts";
import { byTargetTable } from "./table_registry.ts";
import { awsError, fakeClock, fakeDynamo, fakeSql, type SentCommand } from "./testing_fakes.ts";
import { scanForRun } from "./validator_source.ts";
import { IN_FLIGHT_CEILING } from "./validator_deps.ts";
import { runsDb } from "./validator_fakes.ts";
import { IsolatePages } from "./isolate_pages.ts";
import { STATEMENT_CPU_MS } from "./cpu_meter.ts";
import type { ScanResult } from "./segment_work.ts";
import type { PacingDeps } from "./scan_pacing.ts";

const segments = byTargetTable("firespring_segments")!;
const visitors = byTargetTable("firespring_visitors")!;

const item = (id: string, value = "1") => ({ segment_id: { S: id }, value: { N: value } });

/** A database that records staging and progress. */
function deps(
  db: { sql: ReturnType<typeof fakeSql>["sql"] },
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

/**
 * Scans a run of `segments` endless segments (every page has a next key) four at a time,
 * each page's mapping costing `pageMs` of an isolate's CPU that starts at `startMs`, under
 * a budget of `budgetMs`: what the request ended with, the CPU it took the isolate to and
 * the pages it read.
 */
async function scanWithPageCost(
  { segments: total, startMs, pageMs, budgetMs, aheadMs = 0 }: {
    segments: number;
    startMs: number;
    pageMs: number;
    budgetMs: number;
    /** How far the meter is known to run ahead (cpu_meter.ts): limits move up as far. */
    aheadMs?: number;
  },
) {
  const db = runsDb();
  db.newRun("firespring_segments", false, total, 5);
  let cpu = startMs;
  const meter = {
    source: "process" as const,
    usedMs: () => cpu,
    measure: <T>(step: () => T) => {
      cpu += pageMs;
      return step();
    },
    charge: () => {},
    requestArrived: () => {},
    aheadMs: () => aheadMs,
  };
  const dynamo = fakeDynamo(async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    return { Items: [item("a")], LastEvaluatedKey: { segment_id: { S: "a" } } };
  });
  const outcome = await scanForRun(
    deps(db, dynamo, {
      cpu: meter,
      // The request's own budget as withRequestCpuBudget sets it (checksum_validator.ts).
      budget: { cpuMs: budgetMs, wallMs: 1e9, requestCpuMs: budgetMs + aheadMs },
      segmentsAtOnce: 4,
    }),
    segments,
    5,
    "w1",
    () => cpu >= budgetMs + aheadMs,
  );
  return { outcome, cpu, pages: dynamo.sent.length };
}

Deno.test("scanForRun claims the run's segments, from their checkpoints, comparing each page with its checkpoint", async () => {
  const db = runsDb();
  const run = db.newRun("firespring_segments", false, 3, 5);
  run.segments[0].status = "done";
  run.segments[1].key = { segment_id: { S: "k" } };
  const dynamo = scans({
    [`1:${JSON.stringify({ segment_id: { S: "k" } })}`]: {
      Items: [item("m"), item("bad", "x")],
      LastEvaluatedKey: { segment_id: { S: "m" } },
    },
    [`1:${JSON.stringify({ segment_id: { S: "m" } })}`]: { Items: [] },
    "2:null": { Items: [item("z")] },
  });
  const outcome = await scanForRun(deps(db, dynamo), segments, 5, "w1", () => false);
  assert.deepEqual(outcome, {
    segmentsFinished: 2,
    pages: 3,
    items: 3,
    rows: 0,
    stoppedBy: "no work",
    resumed: 1,
  });
  // Each claim books its segment's first read in the job's read ledger, at the table's
  // budget (250 read units a second by default).
  // Each lane claims under an id of its own (laneId), so that two lanes of the request
  // never pass one another's lease checks.
  const claimers = [];
  for (const claim of db.matching("sync.claim_segment")) {
    const [rate, worker, runId] = claim.values;
    assert.deepEqual([rate, runId], [250, 5]);
    assert.match(String(worker), /^w1\/[1-4]$/);
    claimers.push(worker);
    assert.match(claim.text, /sync\.backfill_read_turn\(c\.job_id, \$1, null, 0, true\)/);
  }
  assert.ok(new Set(claimers).size >= 2, `lanes claimed as ${claimers}`);
  // A page's checkpoint names the lane that claimed its segment.
  for (const checkpoint of db.matching("sync.checkpoint_segment")) {
    assert.match(String(checkpoint.values[2]), /^w1\/[1-4]$/);
  }
  assert.deepEqual(
    dynamo.sent.map((c) => [c.input.Segment, c.input.TotalSegments, c.input.Limit]).sort(),
    [[1, 3, 1000], [1, 3, 1000], [2, 3, 1000]],
    "segment 0 was done already",
  );
  // Segments 1 and 2 are scanned at once: segment 2 is claimed before segment 1 is done.
  const secondClaim = db.statements.filter((s) => s.text.includes("sync.claim_segment("))[1];
  const segmentOneDone = db.matching("sync.checkpoint_segment")
    .find((s) => s.values[1] === 1 && s.values[6] === true)!;
  assert.ok(secondClaim && segmentOneDone);
  assert.ok(
    db.statements.indexOf(secondClaim) < db.statements.indexOf(segmentOneDone),
    "segments 1 and 2 are scanned at once",
  );
  for (const c of dynamo.sent) {
    assert.equal(c.input.TableName, "firespring-backdoor-segments-dev");
    // Eventually consistent (half the read units): every key found different is read
    // again consistently before it is reported (point_reads.ts).
    assert.equal(c.input.ConsistentRead, false);
    assert.equal(c.input.ReturnConsumedCapacity, "TOTAL");
  }
  // Each page of a plain table: compared as it comes (no staging), with its counts and
  // its checkpoint in one transaction.
  const compared = db.matching("sync.check_checksum_page");
  const counts = db.matching("set source_items = source_items +");
  const checkpoints = db.matching("sync.checkpoint_segment");
  assert.equal(db.matching("sync.stage_checksum_items").length, 0, "nothing staged");
  assert.equal(compared.length, 2, "the empty page compares nothing");
  assert.equal(counts.length, 3);
  assert.equal(checkpoints.length, 3);
  // The unmappable item kept aside, by the page that found it only.
  const kept = db.matching("insert into sync.checksum_unmappable");
  assert.equal(kept.length, 1, "pages without unmappable items keep nothing");
  for (const s of [...compared, ...counts, ...kept]) {
    assert.ok(checkpoints.some((c) => c.tx === s.tx), "written with its checkpoint");
  }
  const unmappable = kept.map((c) => JSON.parse(String(c.values[1]))).flat();
  assert.equal(unmappable.length, 1);
  assert.deepEqual(unmappable[0].key, { segment_id: "bad" });
  assert.match(unmappable[0].reason, /\[segment_id="bad"\]/);
  assert.equal(run.sourceItems, 3);
  assert.equal(run.staged, 2, "the two mapped items were compared");
  assert.equal(run.phase, "compare", "the last segment's checkpoint moves the run on");
});

Deno.test("scanForRun maps a page before its transaction, then sends the compare, the count, the checkpoint and the next turn in it", async () => {
  const db = runsDb();
  db.newRun("firespring_segments", false, 1, 5);
  const dynamo = scans({ "0:null": { Items: [item("a"), item("b")] } });
  // The transactions begun when each page was mapped: the page's own must not be one
  // of them (no connection is held while the isolate computes).
  const mappedAt: number[] = [];
  const charged: number[] = [];
  const cpu = {
    source: "estimate" as const,
    usedMs: () => 0,
    measure: <T>(step: () => T): T => {
      mappedAt.push(db.transactions.begun);
      return step();
    },
    charge: (ms: number) => charged.push(ms),
    requestArrived: () => {},
    aheadMs: () => 0,
  };
  await scanForRun(deps(db, dynamo, { cpu }), segments, 5, "w1", () => false);
  assert.equal(mappedAt.length, 1);
  assert.deepEqual(charged, [STATEMENT_CPU_MS], "the page's transaction is charged, unmeasured");
  const page = db.statements.filter((s) => s.tx > 0);
  assert.deepEqual(
    page.map((s) =>
      s.text.match(/check_checksum_page|source_items|checkpoint_segment|backfill_read_turn/)?.[0]
    ),
    ["check_checksum_page", "source_items", "checkpoint_segment", "backfill_read_turn"],
    "the page's statements, in this order, in one transaction",
  );
  assert.equal(new Set(page.map((s) => s.tx)).size, 1);
  assert.ok(page[0].tx > mappedAt[0], "the transaction begins after the page is mapped");
  assert.deepEqual(page[2].values.slice(3, 7), [null, 2, 0, true], "the checkpoint: done, 2 items");
});

Deno.test("scanForRun stages a collapsed table's pages: a row is the latest of observations on any page", async () => {
  const db = runsDb();
  const run = db.newRun("firespring_visitors", false, 1, 5);
  const dynamo = fakeDynamo(() => ({
    Items: [{ session_id: { S: "v" }, timestamp: { N: "1" } }],
  }));
  await scanForRun(deps(db, dynamo), visitors, 5, "w1", () => false);
  assert.equal(run.streamed, false);
  assert.equal(db.matching("sync.check_checksum_page").length, 0);
  const staged = db.matching("sync.stage_checksum_items");
  assert.equal(staged.length, 1);
  assert.equal(staged[0].tx, db.matching("sync.checkpoint_segment")[0].tx);
});

Deno.test("scanForRun stops when the budget is spent, giving the segment back at its checkpoint", async () => {
  const db = runsDb();
  const run = db.newRun("firespring_segments", false, 1, 5);
  const dynamo = scans({
    "0:null": { Items: [item("a")], LastEvaluatedKey: { segment_id: { S: "a" } } },
  });
  let pages = 0;
  const outcome = await scanForRun(deps(db, dynamo), segments, 5, "w1", () => pages++ >= 1);
  assert.equal(outcome.stoppedBy, "budget");
  assert.equal(dynamo.sent.length, 1);
  assert.deepEqual(run.segments[0].status, "pending");
  assert.deepEqual(run.segments[0].key, { segment_id: { S: "a" } });
});

Deno.test("scanForRun scans segmentsAtOnce segments in this request", async () => {
  const db = runsDb();
  db.newRun("firespring_segments", false, 8, 5);
  let inFlight = 0;
  let most = 0;
  const dynamo = fakeDynamo(async () => {
    most = Math.max(most, ++inFlight);
    await new Promise((resolve) => setTimeout(resolve, 5));
    inFlight--;
    return { Items: [] };
  });
  const outcome = await scanForRun(
    deps(db, dynamo, { segmentsAtOnce: 3 }),
    segments,
    5,
    "w1",
    () => false,
  );
  assert.equal(outcome.segmentsFinished, 8);
  assert.equal(most, 3, "three segments at once");
});

Deno.test("scanForRun starts a page only while the pages in flight stay within the ceiling past the budget", async () => {
  // Each page's mapping costs 200 ms.
  const { outcome, cpu } = await scanWithPageCost({
    segments: 8,
    startMs: 0,
    pageMs: 200,
    budgetMs: 1000,
  });
  assert.equal(outcome.stoppedBy, "budget");
  // Without the reservation the four segments would each start a page at 800 ms and
  // take the isolate to 1,600 ms; with it the pages in flight stay within 1.4 x the budget.
  assert.ok(cpu <= 1000 * IN_FLIGHT_CEILING, `CPU ${cpu} ms`);
});

Deno.test("scanForRun's ceiling moves up as far as the meter is known to run ahead, and still holds", async () => {
  // The estimate read 2,900 ms when the request arrived, 1,700 ahead; now 2,500 of 2,700.
  const { outcome, cpu, pages } = await scanWithPageCost({
    segments: 8,
    startMs: 2_500,
    pageMs: 50,
    budgetMs: 1000,
    aheadMs: 1_700,
  });
  assert.equal(outcome.stoppedBy, "budget");
  assert.ok(pages >= 2, `${pages} pages, though the reading is past 1.4 x the budget`);
  assert.ok(cpu <= 1000 * IN_FLIGHT_CEILING + 1_700, `CPU ${cpu} ms`);
});

Deno.test("scanForRun retries a throttled page after a backoff, logging run and segment", async () => {
  const db = runsDb();
  db.newRun("firespring_segments", false, 1, 5);
  let calls = 0;
  const dynamo = fakeDynamo(() => {
    if (calls++ === 0) throw awsError("ThrottlingException");
    return { Items: [item("a")] };
  });
  const lines: string[] = [];
  const clock = fakeClock(0.25);
  const outcome = await scanForRun(
    deps(db, dynamo, { pacing: clock, log: (l) => lines.push(l) }),
    segments,
    5,
    "w1",
    () => false,
  );
  assert.equal(outcome.stoppedBy, "no work");
  assert.deepEqual(clock.slept, [250]);
  assert.ok(
    lines.includes(
      "validation run 5 segment 0/1 of firespring-backdoor-segments-dev: ThrottlingException: ThrottlingException (fake) after the client's retries; trying again in 250 ms",
    ),
    lines.join("\n"),
  );
});

Deno.test("scanForRun claims its other segments once the first page's cost is settled in the ledger", async () => {
  // The first page's settlement in the ledger is slow to answer; the other segments'
  // Scans note whether it had been answered when they ran.
  let settled = false;
  const db = runsDb({
    beforeAnswer: async (s) => {
      if (s.tx > 0 && s.text.includes("sync.backfill_read_turn(")) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        settled = true;
      }
    },
  });
  db.newRun("firespring_segments", false, 4, 5);
  const scannedAfterSettling: boolean[] = [];
  const dynamo = fakeDynamo((c: SentCommand) => {
    if (c.input.Segment !== 0) scannedAfterSettling.push(settled);
    return { Items: [] };
  });
  await scanForRun(deps(db, dynamo, { segmentsAtOnce: 4 }), segments, 5, "w1", () => false);
  // Claimed before, the others' first turns would be booked at the ledger's first
  // estimate (a consistent 1 MB page, 257 units), a second apart even on an empty table.
  assert.deepEqual(scannedAfterSettling, [true, true, true]);
});

Deno.test("scanForRun hands on rather than wait for a turn past the request's wall budget", async () => {
  const db = runsDb({ turns: [{ wait_ms: 60_000, units: 1 }] });
  const run = db.newRun("firespring_segments", false, 1, 5);
  const dynamo = scans({ "0:null": { Items: [item("a")] } });
  const lines: string[] = [];
  const outcome = await scanForRun(
    deps(db, dynamo, { pacing: fakeClock(), log: (l) => lines.push(l) }),
    segments,
    5,
    "w1",
    () => false,
    () => 5_000,
  );
  assert.equal(outcome.stoppedBy, "budget");
  assert.deepEqual(dynamo.sent.map((c) => c.name), [], "nothing read");
  assert.deepEqual(run.segments.map((g) => g.status), ["pending"], "given back");
  assert.match(outcome.handedOn!, /: its turn comes after the request's wall-clock budget$/);
});

/**
 * A run of two segments where segment 1's first turn never comes unless the scan stops
 * (a wait for a turn ends only when its time comes or the scan stops), and `scan`'s
 * outcome, or "stuck" when it did not end within 2 s.
 */
async function withFarTurn<T>(
  scan: (db: ReturnType<typeof runsDb>, pacing: PacingDeps) => Promise<T>,
) {
  const db = runsDb({
    turns: [{ wait_ms: 0, units: 1 }, { wait_ms: 0, units: 1 }, { wait_ms: 60_000, units: 1 }],
  });
  const run = db.newRun("firespring_segments", false, 2, 5);
  const pacing = {
    ...fakeClock(),
    sleep: (ms: number) => ms > 0 ? new Promise<void>(() => {}) : Promise.resolve(),
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    scan(db, pacing),
    new Promise<"stuck">((resolve) => timer = setTimeout(() => resolve("stuck"), 2_000)),
  ]);
  clearTimeout(timer);
  return { db, run, outcome };
}

Deno.test("scanForRun stops every segment once one finds the budget spent, without waiting for their turns", async () => {
  // Segment 0 finds the budget spent at its second page; segment 1's turn is far off.
  const dynamo = scans({
    "0:null": { Items: [item("a")], LastEvaluatedKey: { segment_id: { S: "a" } } },
  });
  let checks = 0;
  const { db, run, outcome } = await withFarTurn((db, pacing) =>
    scanForRun(
      deps(db, dynamo, { pacing, segmentsAtOnce: 2 }),
      segments,
      5,
      "w1",
      () => checks++ >= 1,
    )
  );
  assert.notEqual(outcome, "stuck", "the request waited for segment 1's turn");
  assert.equal((outcome as ScanResult).stoppedBy, "budget");
  assert.equal(dynamo.sent.length, 1, "segment 1 never read");
  assert.deepEqual(run.segments.map((g) => [g.status, g.key]), [
    ["pending", { segment_id: { S: "a" } }],
    ["pending", null],
  ], "both given back, each at its checkpoint");
  // Each with its turn, unused: the units it was booked at go back to the job.
  assert.deepEqual(
    db.matching("sync.release_segment").map((s) => s.values.slice(1, 2).concat(s.values.at(-2))),
    [[0, 1], [1, 1]],
  );
  assert.equal(db.matching("sync.claim_segment").length, 2, "no claim after the stop");
});

Deno.test("scanForRun: a segment that fails stops the others and the request fails with its error", async () => {
  // Segment 0's second Scan fails with an error no retry helps; segment 1's turn is far off.
  const dynamo = fakeDynamo((c: SentCommand) => {
    if (c.input.ExclusiveStartKey) {
      throw Object.assign(new Error("bad key"), { name: "ValidationException" });
    }
    return { Items: [item("a")], LastEvaluatedKey: { segment_id: { S: "a" } } };
  });
  const { run, outcome } = await withFarTurn((db, pacing) =>
    scanForRun(deps(db, dynamo, { pacing, segmentsAtOnce: 2 }), segments, 5, "w1", () => false)
      .then(() => "answered", (error: Error) => error.message)
  );
  assert.equal(outcome, "bad key");
  assert.deepEqual(run.segments.map((g) => [g.status, g.key]), [
    ["pending", { segment_id: { S: "a" } }],
    ["pending", null],
  ], "both given back, each at its checkpoint");
});

Deno.test("scanForRun reads at the turns its job's read ledger books, and settles each read's cost with its page", async () => {
  // The claim's turn, then each page's transaction books the next read (read_turns.ts).
  const db = runsDb({
    turns: [{ wait_ms: 300, units: 257 }, { wait_ms: 1200, units: 50 }, {
      wait_ms: 0,
      units: 50,
    }],
  });
  db.newRun("firespring_segments", false, 1, 5);
  const clock = fakeClock();
  const dynamo = fakeDynamo((c: SentCommand) => ({
    Items: [],
    // Three pages, of 50 read units each.
    LastEvaluatedKey: c.input.ExclusiveStartKey === undefined
      ? { segment_id: { S: "a" } }
      : JSON.stringify(c.input.ExclusiveStartKey) === '{"segment_id":{"S":"a"}}'
      ? { segment_id: { S: "b" } }
      : undefined,
    ConsumedCapacity: { CapacityUnits: 50 },
  }));
  await scanForRun(
    deps(db, dynamo, { pacing: clock, maxRcuPerSecond: 100, segmentsAtOnce: 2 }),
    segments,
    5,
    "w1",
    () => false,
  );
  // The ledger's waits, not a fixed share of the budget per segment (100 ÷ 2 a second
  // would be 1,000 ms a page).
  assert.deepEqual(clock.slept, [300, 1200]);
  // Each page: the job, the table's budget, what the read cost, what its turn booked,
  // whether another read follows (the last page books none), whether it may catch up
  // (its read was not retried).
  assert.deepEqual(
    db.matching("sync.backfill_read_turn(").filter((s) => s.tx > 0).map((s) => s.values),
    [
      ["5", 100, 50, 257, true, true],
      ["5", 100, 50, 50, true, true],
      ["5", 100, 50, 50, false, true],
    ],
  );
});

Deno.test("scanForRun keeps its first page alone in flight: a table's pages may cost far more than the last table's", async () => {
  // An isolate that already worked on another run; a dear page.
  const { outcome, cpu, pages } = await scanWithPageCost({
    segments: 8,
    startMs: 800,
    pageMs: 400,
    budgetMs: 1100,
  });
  assert.equal(outcome.stoppedBy, "budget");
  assert.equal(pages, 1, "four pages at once would have reached 2,400 ms");
  assert.equal(cpu, 1200);
});

Deno.test("scanForRun reads consistently only when consistentScan asks for it", async () => {
  for (const consistentScan of [undefined, false, true]) {
    const db = runsDb();
    db.newRun("firespring_segments", false, 1, 5);
    const dynamo = scans({ "0:null": { Items: [item("a")] } });
    await scanForRun(deps(db, dynamo, { consistentScan }), segments, 5, "w1", () => false);
    assert.equal(dynamo.sent.length, 1);
    assert.equal(dynamo.sent[0].input.ConsistentRead, consistentScan === true);
  }
});

/**
 * A request scanning one segment beside another request's page in flight (500 ms
 * expected), with its meter at `startMs` and 30 or 100 ms a page: no page may start until
 * the other's ends, which it then does. Its outcome, once its one page was read.
 */
async function scanBesideAnotherPage(
  { startMs, pageMs, budget }: {
    startMs: number;
    pageMs: number;
    budget: { cpuMs: number; wallMs: number; requestCpuMs?: number };
  },
) {
  const db = runsDb();
  db.newRun("firespring_segments", false, 1, 5);
  const isolatePages = new IsolatePages();
  let othersMs = 500; // another run's pages in flight in this isolate
  isolatePages.add(() => othersMs);
  let cpu = startMs;
  const meter = {
    source: "process" as const,
    usedMs: () => cpu,
    measure: <T>(step: () => T) => {
      cpu += pageMs;
      return step();
    },
    charge: () => {},
    requestArrived: () => {},
    aheadMs: () => 0,
  };
  const dynamo = scans({ "0:null": { Items: [item("a")] } });
  const scanning = scanForRun(
    deps(db, dynamo, { cpu: meter, budget, segmentsAtOnce: 1, isolatePages }),
    segments,
    5,
    "w1",
    () => cpu >= (budget.requestCpuMs ?? budget.cpuMs),
  );
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(dynamo.sent.length, 0, "no page started past the isolate's ceiling");
  othersMs = 0;
  isolatePages.pageEnded();
  const outcome = await scanning;
  assert.equal(dynamo.sent.length, 1, "the page read once the other's ended");
  assert.equal(outcome.stoppedBy, "no work", "its one segment read to its end");
  return { isolatePages };
}

Deno.test("scanForRun waits for the isolate's other pages in flight to end before its first page", async () => {
  // 800 ms used, 500 ms of the other run's pages and a first page pass 1.4 x 1,000.
  const { isolatePages } = await scanBesideAnotherPage({
    startMs: 800,
    pageMs: 100,
    budget: { cpuMs: 1000, wallMs: 1e9 },
  });
  assert.equal(isolatePages.requests, 1, "the request's own estimate is gone once it ends");
});

Deno.test("scanForRun hands on without a page when the isolate's budget is spent while it waits", async () => {
  const db = runsDb();
  db.newRun("firespring_segments", false, 1, 5);
  const isolatePages = new IsolatePages();
  isolatePages.add(() => 500);
  let cpu = 800;
  const meter = {
    source: "process" as const,
    usedMs: () => cpu,
    measure: <T>(f: () => T) => f(),
    charge: () => {},
    requestArrived: () => {},
    aheadMs: () => 0,
  };
  const dynamo = scans({ "0:null": { Items: [item("a")] } });
  const scanning = scanForRun(
    deps(db, dynamo, {
      cpu: meter,
      budget: { cpuMs: 1000, wallMs: 1e9 },
      segmentsAtOnce: 1,
      isolatePages,
    }),
    segments,
    5,
    "w1",
    () => cpu >= 1000,
  );
  await new Promise((resolve) => setTimeout(resolve, 10));
  cpu = 1050; // the other run's page ended, having spent the isolate
  isolatePages.pageEnded();
  const outcome = await scanning;
  assert.equal(outcome.stoppedBy, "budget");
  assert.equal(dynamo.sent.length, 0);
});

Deno.test("scanForRun removes its estimate from the isolate's when a segment fails", async () => {
  const db = runsDb();
  db.newRun("firespring_segments", false, 1, 5);
  const isolatePages = new IsolatePages();
  const dynamo = fakeDynamo(() => {
    throw Object.assign(new Error("bad key"), { name: "ValidationException" });
  });
  await assert.rejects(
    scanForRun(deps(db, dynamo, { isolatePages }), segments, 5, "w1", () => false),
    /bad key/,
  );
  assert.equal(isolatePages.requests, 0);
});

Deno.test("scanForRun waits for its own page in flight to end rather than hand on while the isolate has budget left", async () => {
  // After the first page, one page in flight fits under the ceiling, not two.
  const { outcome, cpu } = await scanWithPageCost({
    segments: 4,
    startMs: 0,
    pageMs: 400,
    budgetMs: 1000,
  });
  assert.equal(outcome.stoppedBy, "budget");
  // Handing on at the first lane without room would have stopped at 800 ms, two pages.
  assert.ok(cpu >= 1000, `the request read until its budget was spent (CPU ${cpu} ms)`);
  assert.ok(cpu <= 1000 * IN_FLIGHT_CEILING, `and stayed under the ceiling (CPU ${cpu} ms)`);
});

Deno.test("scanForRun in an isolate its meter puts past the budget waits, within the request's own budget, for another request's page", async () => {
  // The estimate at 1,150 ms, past the 1,000 ms budget; the request's floor took its own
  // to 1,250 (withRequestCpuBudget). Another request's page in flight leaves no room: the
  // request waits for it, as it would under the budget, rather than hand on to this same
  // isolate (not yet retired), again and again.
  await scanBesideAnotherPage({
    startMs: 1_150,
    pageMs: 30,
    budget: { cpuMs: 1_000, wallMs: 1e9, requestCpuMs: 1_250 },
  });
});
