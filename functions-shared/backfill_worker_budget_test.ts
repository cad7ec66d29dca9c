/**
 * When the import-worker stops or waits: an isolate's CPU budget and the wall budget
 * (the segment handed on to a woken worker), pacing by consumed capacity, and a throttled
 * Scan retried after a backoff or given up. The loop itself is in backfill_worker_test.ts.
 */

import assert from "node:assert/strict";
import { CPU_PAGE_CEILING_MS, PagesInFlight, runWorker } from "./backfill_worker.ts";
import { REQUEST_CPU_FLOOR_MS, STATEMENT_CPU_MS } from "./cpu_meter.ts";
import { SMALLEST_PAGE_ROOM_MS } from "./pages_in_flight.ts";
import { SCAN_ROUNDS } from "./scan_pacing.ts";
import { awsError, fakeClock, fakeCpuMeter, fakeDynamo } from "./testing_fakes.ts";
import {
  backfillDb,
  checkpointArgs,
  claim,
  item,
  keyOf,
  pagedDynamo,
  SEGMENTS,
  twoPages,
  WHERE,
  workerDeps,
} from "./backfill_worker_fakes.ts";

/** A segment of five pages of one item each (a to e). */
function fivePages() {
  const ids = ["a", "b", "c", "d", "e"];
  return pagedDynamo(Object.fromEntries(ids.map((id, i) => [
    i === 0 ? "null" : JSON.stringify(keyOf(ids[i - 1])),
    { Items: [item(id)], LastEvaluatedKey: i < ids.length - 1 ? keyOf(id) : undefined },
  ])));
}

/**
 * An isolate over its budget of 1,000 ms and 40 ms under the ceiling: no room even for
 * a page smaller than a whole one (pages_in_flight.ts).
 */
const AT_THE_CEILING = CPU_PAGE_CEILING_MS - SMALLEST_PAGE_ROOM_MS + 10;

Deno.test("an isolate over its CPU budget and at its ceiling hands the segment on before any Scan", async () => {
  const db = backfillDb([claim(), claim({ segment: 2 })]);
  const dynamo = pagedDynamo(twoPages);
  const { deps, lines, woken } = workerDeps(db, dynamo, {
    cpu: fakeCpuMeter(AT_THE_CEILING),
    cpuBudgetMs: 1000,
  });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "budget");
  assert.equal(result.pages, 0);
  assert.equal(dynamo.sent.length, 0);
  assert.deepEqual(db.matching("sync.release_segment").map((s) => s.values.slice(0, 3)), [
    ["7", 1, "worker-a"],
  ]);
  assert.equal(woken.count, 1, "another request goes on");
  assert.equal(db.matching("sync.claim_segment").length, 1, "no second claim");
  assert.equal(result.handedOn, `${WHERE}: budget spent (isolate CPU 1660 ms)`);
  assert.deepEqual(lines, [], "routine: the import-worker counts it (request_tally.ts)");
});

Deno.test("a run in an isolate its meter puts past the budget still scans its floor's worth while pages fit under the ceiling", async () => {
  // An estimate ahead of the runtime's count: 1,200 ms by the meter, past the 1,100 ms
  // budget, in an isolate the runtime has not retired, so the hand-on came back here.
  const db = backfillDb([claim()]);
  const dynamo = fivePages();
  const cpu = fakeCpuMeter(1_200, 40);
  const { deps, woken } = workerDeps(db, dynamo, { cpu, cpuBudgetMs: 1_100 });
  const result = await runWorker(deps, "worker-a");
  // 40 ms a page: pages until the meter reaches 1,200 + the floor.
  assert.equal(REQUEST_CPU_FLOOR_MS, 100);
  assert.equal(result.pages, 3, "1,240, 1,280, 1,320 ms: the third page passes 1,300");
  assert.equal(result.stoppedBy, "budget");
  assert.equal(woken.count, 1, "then it hands on");
  assert.match(result.handedOn!, /budget spent \(isolate CPU 1320 ms\)$/);
});

Deno.test("a run whose meter read past the hard limit when its request arrived still scans its floor's worth", async () => {
  // A CI run under load: a cold isolate's estimate read 3,065 ms (its boot's wall time,
  // steps at three times theirs), past the hard limit no live isolate has reached. The
  // floor was capped by the ceiling, so every run handed on at once, to the same isolate.
  const stalled = fakeCpuMeter(3_065, 40);
  const before = workerDeps(backfillDb([claim()]), fivePages(), {
    cpu: stalled,
    cpuBudgetMs: 1_100,
  });
  assert.equal((await runWorker(before.deps, "worker-a")).pages, 0, "without the arrival");
  // The arrival says the isolate is under the 1,000 ms soft limit (and the 200 ms slack):
  // the meter runs 1,865 ahead, and the run gets its floor's worth, 100 ms: pages at
  // 3,105 and 3,145, then 3,185 passes 3,165.
  const cpu = fakeCpuMeter(3_065, 40);
  cpu.requestArrived();
  assert.equal(cpu.aheadMs(), 1_865);
  const { deps, woken } = workerDeps(backfillDb([claim()]), fivePages(), {
    cpu,
    cpuBudgetMs: 1_100,
  });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.pages, 3);
  assert.equal(result.stoppedBy, "budget");
  assert.equal(woken.count, 1, "then it hands on");
});

Deno.test("a run with no room for a whole page and none in flight reads a page sized to the room, not nothing", async () => {
  // The isolate read a whole page of the table before: 10 items, 300 ms. Its meter reads
  // 1,500: 200 ms under the ceiling, no whole page fits. Before, the run handed on without
  // a page, and the runtime sent the next request to the same isolate (not yet retired),
  // which found no room either (`npm start`: 67 requests, 1 page).
  const inFlight = new PagesInFlight();
  inFlight.begin(700);
  const before = { items: 10, ms: 300 };
  inFlight.end(1_000, { table: SEGMENTS, limit: 10, pageSize: 10, mapped: before });
  const db = backfillDb([claim({ page_size: 10 })]);
  const dynamo = pagedDynamo(twoPages);
  const cpu = fakeCpuMeter(1_500, 150);
  const { deps, woken } = workerDeps(db, dynamo, { cpu, cpuBudgetMs: 1_000, inFlight });
  const result = await runWorker(deps, "worker-a");
  assert.equal(dynamo.sent.length, 1);
  assert.equal(dynamo.sent[0].input.Limit, Math.floor(200 / 30), "the items that fit: 6");
  assert.equal(result.pages, 1);
  assert.equal(result.rows, 2, "the page's items written");
  // 1,650 by the meter: past the request's floor (1,600), so it hands on from there.
  assert.equal(result.stoppedBy, "budget");
  assert.equal(woken.count, 1);
  assert.equal(inFlight.count, 0);
  // Its read settles what it cost, but is not the job's estimate of a whole page's.
  const [page] = db.matching("sync.checkpoint_segment");
  assert.equal(page.values.at(-1), false, "p_whole");
});

Deno.test("the item cost that sizes a page is what the isolate's own pages of the table measured", async () => {
  // A whole page held 5 items (as a 1 MB page of large items would, asked for 10) and its
  // mapping cost 300 ms: 60 ms an item. Then the meter is 200 ms under the ceiling: 3
  // items fit (a probe, knowing nothing of the table, would read 10 × 200 / 300 = 6).
  const five = ["a", "b", "c", "d", "e"].map((id) => item(id));
  const dynamo = pagedDynamo({
    "null": { Items: five, LastEvaluatedKey: keyOf("e") },
    [JSON.stringify(keyOf("e"))]: { Items: [item("f")] },
  });
  const db = backfillDb([claim({ page_size: 10 })]);
  const cpu = fakeCpuMeter(1_200, 300);
  const { deps } = workerDeps(db, dynamo, { cpu, cpuBudgetMs: 1_600 });
  const result = await runWorker(deps, "worker-a");
  assert.deepEqual(dynamo.sent.map((c) => c.input.Limit), [10, 3]);
  assert.equal(result.pages, 2);
  assert.deepEqual(db.matching("sync.checkpoint_segment").map((s) => s.values.at(-1)), [
    true,
    false,
  ]);
});

Deno.test("a run that stops for its budget hands on through handOn when given one, not wake", async () => {
  const db = backfillDb([claim()]);
  const dynamo = pagedDynamo(twoPages);
  let handedOn = 0;
  const { deps, woken } = workerDeps(db, dynamo, {
    cpu: fakeCpuMeter(AT_THE_CEILING),
    cpuBudgetMs: 1000,
    handOn: () => {
      handedOn++;
      return Promise.resolve();
    },
  });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "budget");
  assert.equal(handedOn, 1, "handed on once");
  assert.equal(
    woken.count,
    0,
    "not by wake: the import-worker calls itself once the run's place is free",
  );
});

Deno.test("the mapping is measured on the isolate's CPU meter, and the budget checked before each page", async () => {
  const db = backfillDb([claim()]);
  const dynamo = fivePages();
  // 400 ms per page's mapping, a budget of 1000 ms: three pages (1200 ms), then hand on.
  const cpu = fakeCpuMeter(0, 400);
  const { deps, woken } = workerDeps(db, dynamo, { cpu, cpuBudgetMs: 1000 });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.pages, 3);
  assert.equal(result.stoppedBy, "budget");
  assert.equal(cpu.steps, 3, "each page's mapping measured once");
  assert.equal(dynamo.sent.length, 3);
  assert.deepEqual(checkpointArgs(db.matching("sync.checkpoint_segment").at(-1)!).slice(3), [
    JSON.stringify(keyOf("c")),
    1,
    1,
    false,
  ]);
  assert.equal(woken.count, 1);
  assert.equal(result.handedOn, `${WHERE}: budget spent (isolate CPU 1200 ms)`);
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
    const { deps, woken } = workerDeps(db, dynamo, { wallBudgetMs: 150 });
    const result = await runWorker(deps, "worker-a");
    assert.equal(result.stoppedBy, "budget");
    assert.equal(result.pages, 2);
    assert.equal(result.segmentsFinished, 0);
    assert.equal(dynamo.sent.length, 2);
    const checkpoints = db.matching("sync.checkpoint_segment").map(checkpointArgs);
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
    assert.match(result.handedOn!, /budget spent/);
  } finally {
    delete (performance as unknown as Record<string, unknown>).now;
  }
  assert.notEqual(performance.now(), 0, "the real clock is back");
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
  // The lease is held before the wait: a throttled Scan's rounds outlast it.
  const hold = db.statements.findIndex((s) =>
    s.text.startsWith("update sync.backfill_segments s set lease_expires_at")
  );
  assert.ok(hold >= 0, "the lease held before the backoff");
  assert.ok(hold < db.statements.findIndex((s) => s.text.includes("sync.checkpoint_segment")));
  assert.ok(lines.includes(
    `${WHERE}: ProvisionedThroughputExceededException: ProvisionedThroughputExceededException (fake) after the client's retries; trying again in 500 ms`,
  ));
});

Deno.test("a throttled Scan whose lease is lost between its rounds reads no more: the segment is left to its holder", async () => {
  // The client's attempts end throttled; before the backoff the hold finds the lease
  // another's (or the job cancelled): no second round reads the table.
  const db = backfillDb([claim()], { hold: () => [] });
  const dynamo = fakeDynamo(() => {
    throw awsError("ProvisionedThroughputExceededException");
  });
  const clock = fakeClock(0.5);
  const { deps, lines } = workerDeps(db, dynamo, { pacing: clock, wallBudgetMs: 60_000 });
  await runWorker(deps, "worker-a");
  assert.equal(dynamo.sent.length, 1, "one round only");
  assert.deepEqual(clock.slept, [], "no backoff slept");
  assert.ok(
    lines.some((l) =>
      /its lease was taken over, or its job ended, while its read was retried/.test(l)
    ),
    lines.join("\n"),
  );
  assert.equal(db.matching("sync.release_segment").length, 0, "nothing given back: not its own");
  assert.equal(db.matching("sync.checkpoint_segment").length, 0);
});

Deno.test("a page whose read was retried lets its job catch nothing up: the table may be at its capacity", async () => {
  // Retried here (a throttle past the SDK's retries), or by the SDK itself ($metadata's
  // attempts): either way the page's statement books the next read from now.
  for (
    const [name, answer] of [
      ["retried here", (calls: number) => {
        if (calls === 0) throw awsError("ProvisionedThroughputExceededException");
        return { Items: [item("a")] };
      }],
      ["retried by the SDK", () => ({ Items: [item("a")], $metadata: { attempts: 3 } })],
      ["read at once", () => ({ Items: [item("a")] })],
    ] as const
  ) {
    let calls = 0;
    const db = backfillDb([claim()], { turns: [{ wait_ms: 0, units: 40 }] });
    const dynamo = fakeDynamo(() => answer(calls++));
    const { deps } = workerDeps(db, dynamo, { pacing: fakeClock(0.5), maxRcuPerSecond: 100 });
    await runWorker(deps, "worker-a");
    const [page] = db.matching("sync.checkpoint_segment");
    assert.equal(page.values.at(-2), name === "read at once", name);
  }
});

Deno.test("a Scan that stays throttled gives up after the rounds, releases its segment and names table and segment", async () => {
  const db = backfillDb([claim(), claim({ segment: 2 })], { turns: [{ wait_ms: 0, units: 40 }] });
  const dynamo = fakeDynamo(() => {
    throw awsError("ThrottlingException", "Rate of requests exceeds the allowed throughput");
  });
  const clock = fakeClock(1);
  const { deps, lines } = workerDeps(db, dynamo, { pacing: clock });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "throttled");
  assert.equal(dynamo.sent.length, SCAN_ROUNDS);
  assert.deepEqual(clock.slept, [1000, 2000]);
  // Given back with its turn's units (a throttled read consumed no capacity), the job
  // catching nothing up: the table was at its capacity.
  assert.deepEqual(db.matching("sync.release_segment").map((s) => s.values), [
    ["7", 1, "worker-a", "7", 1_000_000, 40, false],
  ]);
  assert.equal(db.matching("sync.claim_segment").length, 1, "the worker stops");
  assert.equal(db.matching("sync.checkpoint_segment").length, 0);
  // Why, kept on the segment while it is still this worker's, and counted: a job whose
  // attempts never get past the throttle (over more than 10 minutes) fails naming it, a
  // validation run is reaped naming it.
  assert.deepEqual(db.matching("sync.note_failed_attempt").map((s) => s.values), [
    [
      "7",
      1,
      "worker-a",
      `${WHERE}: Scan failed ${SCAN_ROUNDS} times in a row (each after the client's own retries): ThrottlingException: Rate of requests exceeds the allowed throughput`,
    ],
  ]);
  const [noted, released] = [
    db.statements.findIndex((s) => s.text.includes("sync.note_failed_attempt")),
    db.statements.findIndex((s) => s.text.includes("sync.release_segment")),
  ];
  assert.ok(noted < released, "noted before it is given back");
  assert.equal(
    lines.at(-1),
    `${WHERE}: Scan failed ${SCAN_ROUNDS} times in a row (each after the client's own retries): ` +
      "ThrottlingException: Rate of requests exceeds the allowed throughput; " +
      "released for a later worker",
  );
});

Deno.test("a throttled attempt that is the segment's last fails its job instead of giving the segment back", async () => {
  const db = backfillDb([claim()], { lastAttempt: true });
  const dynamo = fakeDynamo(() => {
    throw awsError("ThrottlingException", "Rate of requests exceeds the allowed throughput");
  });
  const { deps, lines } = workerDeps(db, dynamo, { pacing: fakeClock(1) });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "throttled");
  assert.equal(db.matching("sync.release_segment").length, 0, "not given back");
  assert.match(
    lines.at(-1)!,
    /ThrottlingException.*; its job failed: every attempt in a row ended so$/,
  );
});

Deno.test("an empty last page still checkpoints the segment as done, with no merge", async () => {
  const db = backfillDb([claim()]);
  const dynamo = pagedDynamo({
    "null": { Items: [item("a")], LastEvaluatedKey: keyOf("a"), units: 50 },
    [JSON.stringify(keyOf("a"))]: { Items: [item("b")], LastEvaluatedKey: keyOf("b"), units: 10 },
    [JSON.stringify(keyOf("b"))]: { Items: [] },
  });
  const { deps } = workerDeps(db, dynamo, { pacing: fakeClock(), maxRcuPerSecond: 100 });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.pages, 3);
  assert.deepEqual(checkpointArgs(db.matching("sync.checkpoint_segment").at(-1)!), [
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

Deno.test("a segment reads at the turns its job's read ledger books, and settles each read's cost with its page", async () => {
  // The claim's turn, then each page's statement books the next read (backfill_page.ts).
  const db = backfillDb([claim()], {
    turns: [{ wait_ms: 300, units: 257 }, { wait_ms: 1200, units: 50 }, {
      wait_ms: 0,
      units: 10,
    }],
  });
  const dynamo = pagedDynamo({
    "null": { Items: [item("a")], LastEvaluatedKey: keyOf("a"), units: 50 },
    [JSON.stringify(keyOf("a"))]: { Items: [item("b")], LastEvaluatedKey: keyOf("b"), units: 10 },
    [JSON.stringify(keyOf("b"))]: { Items: [], units: 2 },
  });
  const clock = fakeClock();
  const { deps } = workerDeps(db, dynamo, { pacing: clock, maxRcuPerSecond: 100 });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.pages, 3);
  // The ledger's waits, not the segment's own share (100 ÷ 4 a second would be 2,000 ms).
  assert.deepEqual(clock.slept, [300, 1200]);
  const [claimed] = db.matching("sync.claim_segment");
  assert.match(claimed.text, /sync\.backfill_read_turn\(c\.job_id, \$1, null, 0, true\)/);
  // Each page: the table's budget, what the read cost, what its turn booked, whether
  // another read follows (the last page books none), whether it may catch up after a
  // pause (no read was retried), whether it was a whole page (its cost the next read's
  // estimate).
  assert.deepEqual(
    db.matching("sync.checkpoint_segment").map((s) => s.values.slice(-6)),
    [
      [100, 50, 257, true, true, true],
      [100, 10, 50, true, true, true],
      [100, 2, 10, false, true, true],
    ],
  );
});

Deno.test("a segment handed on before its read gives its turn back to the job with the segment", async () => {
  const db = backfillDb([claim()], { turns: [{ wait_ms: 0, units: 257 }] });
  const { deps } = workerDeps(db, pagedDynamo(twoPages), {
    cpu: fakeCpuMeter(AT_THE_CEILING),
    cpuBudgetMs: 1000,
  });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "budget");
  // One statement: the release and the unused turn (257 units booked, none spent).
  const released = db.matching("sync.release_segment");
  assert.equal(released.length, 1);
  assert.match(
    released[0].text,
    /sync\.backfill_read_turn\(\$4, \$5,\s+null, \$6, false, \$7\)/,
  );
  assert.deepEqual(released[0].values, ["7", 1, "worker-a", "7", 1_000_000, 257, true]);
});

Deno.test("an isolate without room for another page yet waits for a page in flight to end rather than hand on", async () => {
  // Another run of the isolate has a page in flight; a page costs 400 ms here, so at
  // 900 ms a second one would pass the ceiling: 900 + 400 + 400 = 1,700.
  const inFlight = new PagesInFlight();
  inFlight.begin(0);
  inFlight.begin(0);
  inFlight.end(400);
  const db = backfillDb([claim()]);
  const dynamo = pagedDynamo({ "null": { Items: [item("a")] } });
  const { deps, woken } = workerDeps(db, dynamo, {
    cpu: fakeCpuMeter(900),
    cpuBudgetMs: 1100,
    inFlight,
  });
  const run = runWorker(deps, "worker-a");
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(dynamo.sent.length, 0, "no Scan while the isolate has no room");
  assert.equal(db.matching("sync.release_segment").length, 0, "the segment is kept");
  inFlight.end(400); // the other run's page ends
  const result = await run;
  assert.equal(result.pages, 1);
  assert.equal(result.stoppedBy, "no work");
  assert.equal(woken.count, 0, "no request woken only to land on this isolate again");
  assert.ok(CPU_PAGE_CEILING_MS < 2000, "below the hosted hard limit");
});

Deno.test("two runs that one page's end woke: the one the room went to reads, the other waits for it, neither hands on", async () => {
  // As above, with two runs waiting. When the page ends (at 800 ms: a page costs 400),
  // each finds room for one page (900 + 400 + 400 = 1,700), and the first to start one
  // takes it: the other has room for none until that page ends.
  const inFlight = new PagesInFlight();
  inFlight.begin(0);
  inFlight.begin(0);
  inFlight.end(400);
  const cpu = fakeCpuMeter(900);
  const run = (segment: number) => {
    const db = backfillDb([claim({ segment })]);
    const dynamo = pagedDynamo({ "null": { Items: [item(`s${segment}`)] } });
    const handedOn: string[] = [];
    const { deps } = workerDeps(db, dynamo, { cpu, cpuBudgetMs: 1100, inFlight });
    const done = runWorker(
      { ...deps, handOn: () => Promise.resolve(void handedOn.push("hand-on")) },
      `worker-${segment}`,
    );
    return { db, done, handedOn };
  };
  const [a, b] = [run(1), run(2)];
  await new Promise((resolve) => setTimeout(resolve, 20));
  inFlight.end(800); // the other run's page ends: both wake
  const [resultA, resultB] = await Promise.all([a.done, b.done]);
  assert.deepEqual([...a.handedOn, ...b.handedOn], [], "no hand-on: the room comes back");
  assert.deepEqual([resultA.pages, resultB.pages], [1, 1], "each read its page in turn");
  assert.equal(a.db.matching("sync.release_segment").length, 0);
  assert.equal(b.db.matching("sync.release_segment").length, 0);
});

Deno.test("a run waiting for its read's turn hands on as soon as another run's page spends the isolate's CPU", async () => {
  // Run B claims first and is booked a read a minute away; run A, in the same isolate,
  // then spends the isolate's CPU budget (two pages of 600 ms against 1,000 ms).
  const db = backfillDb([claim({ segment: 1 }), claim({ segment: 2 })], {
    turns: [{ wait_ms: 60_000, units: 257 }, { wait_ms: 0, units: 10 }],
  });
  const dynamo = pagedDynamo({
    "null": { Items: [item("a")], LastEvaluatedKey: keyOf("a") },
    [JSON.stringify(keyOf("a"))]: { Items: [item("b")], LastEvaluatedKey: keyOf("b") },
    [JSON.stringify(keyOf("b"))]: { Items: [item("c")] },
  });
  const inFlight = new PagesInFlight();
  const cpu = fakeCpuMeter(0, 600);
  const shared = { inFlight, cpu, cpuBudgetMs: 1000 };
  // B's clock never reaches its turn: only the isolate's spent budget can end its wait.
  const neverDue = { now: () => 0, sleep: () => new Promise<void>(() => {}), random: () => 0.5 };
  const b = workerDeps(db, dynamo, { ...shared, pacing: neverDue });
  const runB = runWorker(b.deps, "worker-b");
  await new Promise((resolve) => setTimeout(resolve, 10));
  const a = workerDeps(db, dynamo, shared);
  const resultA = await runWorker(a.deps, "worker-a");
  assert.equal(resultA.pages, 2);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const resultB = await Promise.race([
    runB,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("run B still waits for its turn")), 2_000);
    }),
  ]).finally(() => clearTimeout(timer));
  assert.equal(resultB.stoppedBy, "budget");
  assert.equal(resultB.pages, 0);
  const releasedB = db.matching("sync.release_segment").find((s) => s.values[2] === "worker-b");
  assert.deepEqual(releasedB?.values.slice(0, 3), ["7", 1, "worker-b"]);
  assert.equal(releasedB?.values.at(-2), 257, "its turn goes back to the job unused");
  assert.equal(b.woken.count, 1, "B's segment goes on in another request");
  assert.match(resultB.handedOn!, /segment 1\/4 .*budget spent \(isolate CPU 1200 ms\)$/);
});

Deno.test("the isolate's CPU past a budget: each listener told once, by the page that passes it", () => {
  const pages = new PagesInFlight();
  const told: string[] = [];
  pages.begin(0);
  pages.end(1200); // a page that ended before: no one is told of it
  const cancelA = pages.onCpuPast(1000, () => told.push("a"));
  pages.onCpuPast(1500, () => told.push("b"));
  const cancelC = pages.onCpuPast(1000, () => told.push("c"));
  cancelC();
  pages.begin(1200);
  pages.end(1300);
  assert.deepEqual(told, ["a"]);
  pages.begin(1300);
  pages.end(1600);
  assert.deepEqual(told, ["a", "b"], "each once");
  cancelA(); // cancelling after the call is harmless
});

Deno.test("a segment waiting long for its turn holds its lease as it waits, and leaves a segment taken over meanwhile", async () => {
  // The claim's turn is 10 s away (a low read budget): held at 4 s and 8 s, then read.
  const db = backfillDb([claim()], { turns: [{ wait_ms: 10_000, units: 1 }] });
  const dynamo = pagedDynamo({ null: { Items: [item("a")] } });
  const clock = fakeClock();
  const cpu = fakeCpuMeter(0);
  const { deps } = workerDeps(db, dynamo, { pacing: clock, wallBudgetMs: 60_000, cpu });
  await runWorker(deps, "worker-a");
  const holds = db.matching("update sync.backfill_segments s set lease_expires_at");
  assert.equal(holds.length, 2);
  // Each hold's round trip is charged on the isolate's meter: no step of it is measured.
  assert.equal(cpu.usedMs(), 2 * STATEMENT_CPU_MS);
  assert.deepEqual(holds[0].values, ["7", 1, "worker-a"]);
  assert.deepEqual(clock.slept.slice(0, 3), [4_000, 4_000, 2_000]);
  assert.equal(dynamo.sent.length, 1, "then read");

  // A hold that finds the lease another's: no read, no release, the segment is left.
  const lost = backfillDb([claim()], { turns: [{ wait_ms: 10_000, units: 1 }], hold: () => [] });
  const untouched = pagedDynamo({ null: { Items: [item("a")] } });
  const { deps: lostDeps, lines } = workerDeps(lost, untouched, {
    pacing: fakeClock(),
    wallBudgetMs: 60_000,
  });
  await runWorker(lostDeps, "worker-a");
  assert.equal(untouched.sent.length, 0);
  assert.equal(lost.matching("sync.release_segment").length, 0);
  assert.ok(lines.some((l) => /its lease was taken over while it waited for its turn/.test(l)));
  const returned = lost.matching("sync.backfill_read_turn").filter((s) => s.values.length === 6);
  assert.deepEqual(
    returned.map((s) => s.values),
    [["7", 1_000_000, null, 1, true, true]],
    "its booked turn, unused, goes back to the job, which keeps its estimate of a page (no read: spent null)",
  );
});

Deno.test("a Scan's lease is held before each of the client's own retries: its attempts may outlast it", async () => {
  const db = backfillDb([claim()]);
  // The client retries twice (a silent connection, say) before the page answers.
  const dynamo = fakeDynamo(async (c) => {
    await c.beforeRetry?.();
    await c.beforeRetry?.();
    return { Items: [item("a")] };
  });
  const { deps } = workerDeps(db, dynamo, { pacing: fakeClock(), wallBudgetMs: 60_000 });
  await runWorker(deps, "worker-a");
  const holds = db.matching("update sync.backfill_segments s set lease_expires_at");
  assert.equal(holds.length, 2, "one hold before each retry");
  assert.deepEqual(holds[0].values, ["7", 1, "worker-a"]);

  // A hold that finds the lease another's stops the read: the segment is left to it.
  const lost = backfillDb([claim()], { hold: () => [] });
  let aborted = false;
  const abortable = fakeDynamo(async (c) => {
    await c.beforeRetry?.();
    aborted = c.abortSignal?.aborted ?? false;
    throw Object.assign(new Error("The signal has been aborted"), { name: "AbortError" });
  });
  const { deps: lostDeps, lines } = workerDeps(lost, abortable, {
    pacing: fakeClock(),
    wallBudgetMs: 60_000,
  });
  await runWorker(lostDeps, "worker-a");
  assert.ok(aborted, "the send was aborted");
  assert.ok(
    lines.some((l) =>
      /its lease was taken over, or its job ended, while its read was retried/.test(l)
    ),
  );
  assert.equal(lost.matching("sync.release_segment").length, 0, "nothing given back: not its own");
  assert.equal(lost.matching("sync.checkpoint_segment").length, 0);
});

Deno.test("a turn that comes after the request's wall-clock budget is not slept into: the segment and its turn are given back at the deadline, and the run hands on", async () => {
  // The turn is 200 s away; the request may run 30 s more.
  const db = backfillDb([claim()], { turns: [{ wait_ms: 200_000, units: 40 }] });
  const dynamo = pagedDynamo({ null: { Items: [item("a")] } });
  const clock = fakeClock();
  const { deps, woken } = workerDeps(db, dynamo, { pacing: clock, wallBudgetMs: 30_000 });
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "budget");
  assert.equal(dynamo.sent.length, 0, "nothing read before its turn");
  const slept = clock.slept.reduce((a, b) => a + b, 0);
  assert.ok(slept <= 30_000, `slept ${slept} ms, within the budget`);
  assert.ok(slept >= 25_000, `slept ${slept} ms, until near the deadline`);
  // Given back with the turn's units, for the job's other segments (a pause, which the
  // job may catch up).
  assert.deepEqual(db.matching("sync.release_segment").map((s) => s.values), [
    ["7", 1, "worker-a", "7", 1_000_000, 40, true],
  ]);
  assert.equal(woken.count, 1, "handed on");
  assert.equal(result.handedOn, `${WHERE}: its turn comes after the request's wall-clock budget`);
});

Deno.test("a page whose checkpoint is refused still settles its read in the ledger", async () => {
  const lost = Object.assign(
    new Error("backfill job 7 segment 1: worker-a no longer holds the lease"),
    {
      code: "SY001",
    },
  );
  const db = backfillDb([claim()], {
    turns: [{ wait_ms: 0, units: 40 }],
    checkpoint: () => {
      throw lost;
    },
  });
  const dynamo = pagedDynamo({ null: { Items: [item("a")], units: 64 } });
  const { deps, lines } = workerDeps(db, dynamo, { pacing: fakeClock() });
  await runWorker(deps, "worker-a");
  const settled = db.statements.filter((s) => s.text.startsWith("select sync.backfill_read_turn("));
  assert.equal(settled.length, 1);
  // (job, rate, spent, booked, catch up, whole), none booked next: 64 spent against 40
  // booked, a read not retried, a whole page.
  assert.deepEqual(settled[0].values.slice(2), [64, 40, true, true]);
  assert.match(settled[0].text, /\$4, false, \$5,\s+\$6\)$/);
  assert.ok(lines.some((l) => /lease lost to another worker; its page was not written/.test(l)));
});

Deno.test("a page whose statement fails for any cause settles its read, unless the statement may have committed", async () => {
  // A statement timeout, a lock wait lost, a row refused: rolled back, so the ledger hears
  // of the read from the settle alone. A connection lost in flight: the statement may have
  // settled it already.
  for (const [code, settles] of [["57014", 1], ["55P03", 1], ["ECONNRESET", 0]] as const) {
    const failed = Object.assign(new Error(`the page's statement failed (${code})`), { code });
    const db = backfillDb([claim()], {
      turns: [{ wait_ms: 0, units: 40 }],
      checkpoint: () => {
        throw failed;
      },
    });
    const dynamo = pagedDynamo({ null: { Items: [item("a")], units: 64 } });
    const { deps } = workerDeps(db, dynamo, { pacing: fakeClock() });
    await assert.rejects(runWorker(deps, "worker-a"), new RegExp(code));
    const settled = db.statements.filter((s) =>
      s.text.startsWith("select sync.backfill_read_turn(")
    );
    assert.equal(settled.length, settles, code);
    if (settles) assert.deepEqual(settled[0].values.slice(2), [64, 40, true, true], code);
  }
});

Deno.test("a Scan that fails for another cause than the throttle gives its turn back unused", async () => {
  const db = backfillDb([claim()], { turns: [{ wait_ms: 0, units: 40 }] });
  const dynamo = fakeDynamo(() => {
    throw awsError("AccessDeniedException", "not authorized to perform: dynamodb:Scan");
  });
  const { deps } = workerDeps(db, dynamo, { pacing: fakeClock() });
  await assert.rejects(runWorker(deps, "worker-a"), /not authorized/);
  const settled = db.statements.filter((s) => s.text.startsWith("select sync.backfill_read_turn("));
  // (job, rate, spent, booked, ...): nothing spent, the 40 units booked given back.
  assert.deepEqual(settled.map((s) => s.values.slice(2, 4)), [[null, 40]]);
  assert.equal(db.matching("sync.release_segment").length, 1, "the segment given back too");
});

Deno.test("a refused page read smaller than a whole one, or retried, settles with its read's flags", async () => {
  // The page's statement would have said so; the settle after its refusal says it too, or
  // a small page's cost would become its job's estimate of a page.
  const lost = Object.assign(new Error("worker-a no longer holds the lease"), { code: "SY001" });
  const inFlight = new PagesInFlight();
  inFlight.begin(700);
  inFlight.end(1_000, { table: SEGMENTS, limit: 10, pageSize: 10, mapped: { items: 10, ms: 300 } });
  let calls = 0;
  const db = backfillDb([claim({ page_size: 10 })], {
    turns: [{ wait_ms: 0, units: 40 }],
    checkpoint: () => {
      throw lost;
    },
  });
  const dynamo = fakeDynamo(() => {
    if (calls++ === 0) throw awsError("ProvisionedThroughputExceededException");
    return { Items: [item("a")], ConsumedCapacity: { CapacityUnits: 3 } };
  });
  const { deps } = workerDeps(db, dynamo, {
    cpu: fakeCpuMeter(1_500),
    cpuBudgetMs: 1_000,
    inFlight,
    pacing: fakeClock(0.5),
  });
  await runWorker(deps, "worker-a");
  assert.equal(dynamo.sent.at(-1)!.input.Limit, 6, "a page sized to the room");
  const settled = db.statements.filter((s) => s.text.startsWith("select sync.backfill_read_turn("));
  assert.deepEqual(settled.map((s) => s.values.slice(2)), [[3, 40, false, false]]);
});
