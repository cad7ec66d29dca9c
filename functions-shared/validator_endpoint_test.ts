/**
 * The data-checksum-validator endpoint with a fake database and a fake DynamoDB (the
 * validator itself runs on them): refusals, the unknown table, a run that finishes
 * (200), one that goes on in another request or outlasts the answer (202 with its run
 * id), and the database's failures.
 */

import assert from "node:assert/strict";
import { type EndpointDeps, handleValidatorRequest } from "./validator_endpoint.ts";
import { STATEMENT_CPU_MS } from "./cpu_meter.ts";
import { RunGate, whenAdmitted } from "./run_gate.ts";
import { TABLES } from "./table_registry.ts";
import { realPacing } from "./scan_pacing.ts";
import { fakeClock, fakeCpuMeter, fakeDynamo, fakeSql } from "./testing_fakes.ts";
import { runsDb, type RunsOptions } from "./validator_fakes.ts";

const KEY = "service-key";
const RUN = 42;

/**
 * A database of validation runs (validator_fakes.ts); `running` are runs already running
 * (id -> target table); `fail` makes every statement fail, `failWhen` those it names.
 */
function validatorDb(
  options: Pick<RunsOptions, "fail" | "failWhen"> & {
    running?: Record<number, string>;
  } = {},
) {
  const db = runsDb({ fail: options.fail, failWhen: options.failWhen });
  for (const [id, table] of Object.entries(options.running ?? {})) {
    db.newRun(table, false, 1, Number(id));
  }
  return db;
}

const segmentItem = { segment_id: { S: "s-1" }, value: { N: "5" } };

/** Asserts the answer of a run that goes on: 202, the segments table's run, running. */
async function assertRunning(response: Response, message?: string) {
  assert.equal(response.status, 202, message);
  assert.deepEqual(await response.json(), {
    table: "firespring_segments",
    runId: RUN,
    status: "running",
  });
}

function endpointDeps(
  db: ReturnType<typeof runsDb>,
  dynamo: ReturnType<typeof fakeDynamo>,
  extra: Partial<EndpointDeps> = {},
) {
  const waited: Promise<unknown>[] = [];
  const calls: unknown[] = [];
  const deps: EndpointDeps = {
    sql: db.sql,
    dynamo: dynamo.dynamo,
    segments: 1,
    settleMs: 0,
    pacing: fakeClock(),
    serviceRoleKey: KEY,
    waitUntil: (work) => waited.push(work),
    callSelf: (body) => {
      calls.push(body);
      return Promise.resolve();
    },
    answerWithinMs: 100,
    ...extra,
  };
  return { deps, waited, calls };
}

const post = (body: string, key: string | null = KEY) =>
  new Request("http://localhost/data-checksum-validator", {
    method: "POST",
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
    body,
  });

/** The endpoint's own answer timer is not cleared: let it fire before the test ends. */
const timersFire = (deps: EndpointDeps) =>
  new Promise((resolve) => setTimeout(resolve, (deps.answerWithinMs ?? 0) + 5));

const noDynamo = () =>
  fakeDynamo(() => {
    throw new Error("DynamoDB must not be read");
  });

Deno.test("the validator endpoint answers 405 to anything but POST", async () => {
  const db = validatorDb();
  const { deps } = endpointDeps(db, noDynamo());
  const response = await handleValidatorRequest(new Request("http://localhost/"), deps);
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "POST");
  assert.deepEqual(await response.json(), { error: "method not allowed: use POST" });
});

Deno.test("the validator endpoint answers 401 without a service key, touching nothing", async () => {
  const db = validatorDb();
  const { deps, waited } = endpointDeps(db, noDynamo());
  for (const key of [null, "wrong"]) {
    const response = await handleValidatorRequest(
      post('{"table": "firespring_segments"}', key),
      deps,
    );
    assert.equal(response.status, 401, String(key));
    assert.match((await response.json()).error, /missing Authorization|not a service key/);
  }
  assert.equal(db.statements.length, 0);
  assert.equal(waited.length, 0);
});

Deno.test("a body that is not a request answers 400", async () => {
  const db = validatorDb();
  const { deps } = endpointDeps(db, noDynamo());
  const cases: [string, RegExp][] = [
    ["{table", /^body is not valid JSON: /],
    ["", /^body is not valid JSON: /],
    ["{}", /^malformed body at table: .*: send \{"table": "<target table>", "repair": false\}$/],
    ['{"table": ""}', /^malformed body/],
    ['{"table": "firespring_segments", "repair": "yes"}', /^malformed body at repair: /],
    ['{"table": "firespring_segments", "extra": 1}', /^malformed body/],
    ['{"runId": 0}', /^malformed body/],
    [
      '{"table": "firespring_segments", "pagesPerRequest": 0}',
      /^malformed body at pagesPerRequest: /,
    ],
    ['{"rereads": false}', /^malformed body/],
    ['{"rereads": true, "table": "firespring_visitors"}', /^malformed body/],
  ];
  for (const [body, expected] of cases) {
    const response = await handleValidatorRequest(post(body), deps);
    assert.equal(response.status, 400, body);
    assert.match((await response.json()).error, expected, body);
  }
  assert.equal(db.statements.length, 0);
});

Deno.test("an unknown table answers 400 naming the known ones", async () => {
  const db = validatorDb();
  const { deps } = endpointDeps(db, noDynamo());
  const response = await handleValidatorRequest(
    post('{"table": "firespring-backdoor-segments-dev"}'),
    deps,
  );
  assert.equal(response.status, 400);
  const { error } = await response.json();
  assert.equal(
    error,
    `firespring-backdoor-segments-dev is not a target table; known: ${
      TABLES.map((t) => t.targetTable).join(", ")
    }`,
  );
  assert.match(error, /firespring_actions, .*toledo_dashboard$/);
  assert.equal(db.statements.length, 0);
});

Deno.test("a run id that does not exist answers 404", async () => {
  const db = validatorDb({ running: {} });
  const { deps } = endpointDeps(db, noDynamo());
  const response = await handleValidatorRequest(post('{"runId": 9}'), deps);
  assert.equal(response.status, 404);
  assert.deepEqual(await response.json(), { error: "validation run 9 does not exist" });
});

Deno.test("a run id whose run has ended answers 200 with its status and does nothing", async () => {
  const db = validatorDb({ running: { 9: "firespring_segments" } });
  db.runs.get(9)!.status = "failed";
  const { deps, waited, calls } = endpointDeps(db, noDynamo());
  const response = await handleValidatorRequest(post('{"runId": 9}'), deps);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), {
    table: "firespring_segments",
    runId: 9,
    status: "failed",
  });
  assert.equal(waited.length + calls.length, 0, "no work, no hand-on");
  assert.equal(db.statements.length, 1, "one look at the run");
});

Deno.test("a run id of a queued run answers 409", async () => {
  const db = validatorDb({ running: { 9: "firespring_segments" } });
  db.runs.get(9)!.status = "queued";
  const { deps } = endpointDeps(db, noDynamo());
  const response = await handleValidatorRequest(post('{"runId": 9}'), deps);
  assert.equal(response.status, 409);
  assert.deepEqual(await response.json(), {
    error: "validation run 9 is queued, not running",
  });
});

Deno.test("a start of a table with a run under way answers 409 with that run to follow", async () => {
  const db = validatorDb({ running: { 9: "firespring_segments" } });
  const { deps, calls } = endpointDeps(db, noDynamo());
  const response = await handleValidatorRequest(post('{"table": "firespring_segments"}'), deps);
  assert.equal(response.status, 409);
  const body = await response.json();
  assert.equal(body.runId, 9);
  assert.match(body.error, /^validation run 9 of firespring_segments is already running/);
  assert.equal(db.runs.size, 1, "no second run");
  assert.equal(calls.length, 0, "nothing handed on");
});

Deno.test("a table read within the request answers 200 with the validation", async () => {
  const db = validatorDb();
  const dynamo = fakeDynamo(() => ({ Items: [segmentItem] }));
  const { deps, waited, calls } = endpointDeps(db, dynamo);
  const response = await handleValidatorRequest(post('{"table": "firespring_segments"}'), deps);
  assert.equal(response.status, 200);
  const result = await response.json();
  assert.equal(result.table, "firespring_segments");
  assert.equal(result.runId, RUN);
  assert.equal(result.match, true);
  assert.equal(result.sourceItems, 1);
  assert.deepEqual([result.missing, result.unexpected, result.different], [[], [], []]);
  assert.equal(waited.length, 0);
  assert.equal(calls.length, 0);
  assert.equal(dynamo.sent[0].input.TableName, "firespring-backdoor-segments-dev");
  // Eventually consistent: a key found different is read again consistently.
  assert.equal(dynamo.sent[0].input.ConsistentRead, false);
  await timersFire(deps);
});

Deno.test("a run that outgrows the request answers 202 with its runId and calls itself to go on", async () => {
  const db = validatorDb();
  const dynamo = fakeDynamo(() => ({
    Items: [segmentItem],
    LastEvaluatedKey: { segment_id: { S: "s-1" } },
  }));
  const { deps, waited, calls } = endpointDeps(db, dynamo);
  const response = await handleValidatorRequest(
    post('{"table": "firespring_segments", "pagesPerRequest": 1}'),
    deps,
  );
  await assertRunning(response);
  assert.equal(dynamo.sent.length, 1, "one page, as asked");
  assert.deepEqual(calls, [{ runId: RUN, pagesPerRequest: 1 }]);
  assert.equal(waited.length, 1);
  await Promise.all(waited);
  await timersFire(deps);
});

/** The looks at a run's record (validator_result.ts, recordedResult) a request made. */
const recordLooks = (db: ReturnType<typeof validatorDb>) =>
  db.matching("select status, error, repaired, revalidation_run_id").length;

Deno.test("a request whose work handed on for its CPU budget answers 202 after one look, not after looking at the run for 25 s", async () => {
  // The bench's validation: the request's work handed on at 1,237 ms by the meter, then it
  // looked at the run's record every 250 ms in an isolate the runtime had retired, unseen
  // by the estimate, until the hard limit killed it 22 s later (a 546 to the caller).
  // Here each page costs 150 ms by the meter: the second one's check finds the budget
  // (1,100) spent, at 1,150.
  const db = validatorDb();
  const dynamo = fakeDynamo(() => ({
    Items: [segmentItem],
    LastEvaluatedKey: { segment_id: { S: "s-1" } },
  }));
  const { deps, waited } = endpointDeps(db, dynamo, {
    cpu: fakeCpuMeter(1_000, 150),
    budget: { cpuMs: 1_100, wallMs: 60_000 },
    answerWithinMs: 60_000,
    pollMs: 1,
  });
  const answered = await Promise.race([
    handleValidatorRequest(
      post('{"table": "firespring_segments"}'),
      deps,
    ),
    new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 2_000)),
  ]);
  assert.notEqual(answered, "late", "answered at once");
  await assertRunning(answered as Response);
  assert.equal(recordLooks(db), 1, "one look at the run's record, none past the budget");
  await Promise.all(waited);
});

Deno.test("each look at the run's record while a request waits is charged on the isolate's meter", async () => {
  const db = validatorDb();
  const dynamo = fakeDynamo(() => ({
    Items: [segmentItem],
    LastEvaluatedKey: { segment_id: { S: "s-1" } },
  }));
  // The looks themselves spend the budget, three looks' worth past the page's transaction:
  // no clock decides how many there are (a loaded machine's late timers change nothing).
  const cpu = fakeCpuMeter(0);
  const { deps, waited } = endpointDeps(db, dynamo, {
    cpu,
    budget: { cpuMs: 4 * STATEMENT_CPU_MS, wallMs: 60_000 },
    answerWithinMs: 60_000,
    pollMs: 1,
  });
  const response = await handleValidatorRequest(
    post('{"table": "firespring_segments", "pagesPerRequest": 1}'),
    deps,
  );
  await assertRunning(response);
  assert.equal(recordLooks(db), 3, "looks until they have spent the budget");
  assert.equal(cpu.usedMs(), 4 * STATEMENT_CPU_MS, "the page's transaction and three looks");
  await Promise.all(waited);
});

Deno.test("a continued run reads its table from its row", async () => {
  const db = validatorDb({ running: { [RUN]: "firespring_segments" } });
  const dynamo = fakeDynamo(() => ({ Items: [segmentItem] }));
  const { deps } = endpointDeps(db, dynamo);
  const { deps: d, waited } = { deps, waited: [] as Promise<unknown>[] };
  d.waitUntil = (work) => waited.push(work);
  const response = await handleValidatorRequest(post(`{"runId": ${RUN}}`), d);
  await assertRunning(response, "a request to go on answers at once");
  const result = await waited[0] as { runId: number; table: string };
  assert.equal(result.runId, RUN);
  assert.equal(result.table, "firespring_segments");
  assert.equal(db.matching("insert into public.sync_checksums").length, 0, "no new run");
  await timersFire(deps);
});

Deno.test("a run still going when the answer is due answers 202 and goes on in the background", async () => {
  const db = validatorDb();
  let release = () => {};
  const dynamo = fakeDynamo(async () => {
    await new Promise<void>((resolve) => (release = resolve));
    return { Items: [segmentItem] };
  });
  const { deps, waited, calls } = endpointDeps(db, dynamo, { answerWithinMs: 1 });
  const response = await handleValidatorRequest(post('{"table": "firespring_segments"}'), deps);
  await assertRunning(response);
  assert.equal(waited.length, 1);
  release();
  const outcome = await waited[0] as { match: boolean };
  assert.equal(outcome.match, true, "the background run finished");
  assert.equal(calls.length, 0);
});

/** A gate whose one place is taken, as by a run already working in the isolate. */
function fullGate(): RunGate {
  const gate = new RunGate(1);
  gate.admit(() => new Promise(() => {}));
  return gate;
}

for (
  const [holder, hold] of [
    // Another run working in the isolate (admitted as the endpoint admits every run).
    ["a run frees", (gate: RunGate, work: () => Promise<void>) => whenAdmitted(gate, work)],
    // The collapsed keys' re-reads (admitted with admit(), as the endpoint does): a run's
    // request waiting behind them waited for the next heartbeat, a minute here.
    ["the re-reads free", (gate: RunGate, work: () => Promise<void>) => gate.admit(work)!],
  ] as const
) {
  Deno.test(`a busy isolate keeps a run's request: 202 at once, and the run goes on when ${holder} the place`, async () => {
    const db = validatorDb({ running: { [RUN]: "firespring_segments" } });
    const gate = new RunGate(1);
    let free = () => {};
    const other = hold(gate, () => new Promise<void>((resolve) => (free = resolve)));
    const dynamo = fakeDynamo(() => ({ Items: [segmentItem] })); // the segment's one page
    const { deps, waited, calls } = endpointDeps(db, dynamo, { gate });
    const response = await handleValidatorRequest(post(`{"runId": ${RUN}}`), deps);
    await assertRunning(response);
    assert.equal(waited.length, 1, "kept alive until it has run");
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(
      db.matching("claim_validation").length,
      0,
      "nothing read while the place is taken",
    );
    free();
    await other;
    await Promise.all(waited);
    assert.ok(db.matching("claim_validation").length >= 1, "the run went on, no heartbeat needed");
    assert.equal(dynamo.sent.length, 1, "with its budget: it read its page, having waited");
    assert.deepEqual(calls, [], "and did not hand on");
    assert.equal(gate.active, 0);
  });
}

Deno.test("a busy isolate starts a new validation and hands it on at once, reading nothing", async () => {
  const db = validatorDb();
  const { deps, waited, calls } = endpointDeps(db, noDynamo(), { gate: fullGate() });
  const response = await handleValidatorRequest(post('{"table": "firespring_segments"}'), deps);
  await assertRunning(response);
  assert.deepEqual(calls, [{ runId: RUN, pagesPerRequest: undefined }]);
  await Promise.all(waited);
  await timersFire(deps);
});

Deno.test("a free gate admits the request's work and frees its place at the end", async () => {
  const db = validatorDb();
  const gate = new RunGate(1);
  const dynamo = fakeDynamo(() => ({ Items: [segmentItem] }));
  const { deps } = endpointDeps(db, dynamo, { gate });
  const response = await handleValidatorRequest(post('{"table": "firespring_segments"}'), deps);
  assert.equal(response.status, 200);
  assert.equal((await response.json()).match, true);
  assert.equal(gate.active, 0);
  await timersFire(deps);
});

Deno.test("a request hands on after giving its gate's place back, so the isolate can take the next", async () => {
  const db = validatorDb();
  const gate = new RunGate(1);
  const dynamo = fakeDynamo(() => ({
    Items: [segmentItem],
    LastEvaluatedKey: { segment_id: { S: "s-1" } },
  }));
  const placesTaken: number[] = [];
  const { deps, waited } = endpointDeps(db, dynamo, {
    gate,
    callSelf: () => {
      placesTaken.push(gate.active);
      return Promise.resolve();
    },
  });
  const response = await handleValidatorRequest(
    post('{"table": "firespring_segments", "pagesPerRequest": 1}'),
    deps,
  );
  assert.equal(response.status, 202);
  await Promise.all(waited);
  assert.deepEqual(placesTaken, [0]);
  await timersFire(deps);
});

Deno.test("a run waiting out a settle pause gives its place up to the next in line", async () => {
  // Every look finds s-1 different: the run pauses before each of its looks again. Its
  // first pause lasts until the test ends it, so no clock decides what runs when.
  const db = runsDb({ divergent: () => [{ kind: "different", key: { segment_id: "s-1" } }] });
  const gate = new RunGate(1);
  const dynamo = fakeDynamo(() => ({ Items: [segmentItem] }));
  let pauses = 0;
  let paused = () => {};
  const firstPause = new Promise<void>((resolve) => paused = resolve);
  let endPause = () => {};
  const pauseEnds = new Promise<void>((resolve) => endPause = resolve);
  const pacing = {
    ...realPacing,
    sleep: async () => {
      if (++pauses > 1) return;
      paused();
      await pauseEnds;
    },
  };
  const { deps } = endpointDeps(db, dynamo, {
    gate,
    settleMs: 100,
    answerWithinMs: 60_000,
    pacing,
  });
  const events: string[] = [];
  const answered = handleValidatorRequest(post('{"table": "firespring_segments"}'), deps)
    .then((response) => {
      events.push("the validation answers");
      return response;
    });
  await firstPause;
  const inRecheck = () => [...db.runs.values()].some((run) => run.phase === "recheck");
  assert.ok(inRecheck(), "the run paused between its looks");
  const next = whenAdmitted(gate, () => {
    events.push(inRecheck() ? "the next in line runs between the looks" : "it runs after them");
    return Promise.resolve();
  });
  // A run that kept its place through the pause would never let the next one in: the
  // wait is bounded, so that fails rather than hangs.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), 10_000));
  const admitted = await Promise.race([next.then(() => "admitted" as const), late]);
  clearTimeout(timer);
  endPause();
  assert.equal(admitted, "admitted", "the next in line was admitted during the pause");
  const response = await answered;
  assert.equal(response.status, 200);
  assert.deepEqual((await response.json()).different, [{ segment_id: "s-1" }]);
  assert.deepEqual(events, ["the next in line runs between the looks", "the validation answers"]);
  assert.ok(pauses > 1, "every look after the first paused");
  assert.equal(gate.active, 0);
});

Deno.test("a re-read request answers 200 with what it did, and 202 at once from a busy isolate", async () => {
  const db = fakeSql((s) => s.text.includes("sync.claim_rereads") ? [] : undefined);
  const gate = new RunGate(1);
  let free = () => {};
  const other = whenAdmitted(gate, () => new Promise<void>((resolve) => (free = resolve)));
  const { deps } = endpointDeps(validatorDb(), noDynamo(), { gate, sql: db.sql });
  const busy = await handleValidatorRequest(post('{"rereads": true}'), deps);
  assert.equal(busy.status, 202);
  assert.deepEqual(await busy.json(), { reread: 0, failed: 0, deferred: "the isolate is busy" });
  assert.equal(db.statements.length, 0, "nothing claimed while a run holds the place");
  free();
  await other;
  const response = await handleValidatorRequest(post('{"rereads": true}'), deps);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { reread: 0, failed: 0 });
  assert.equal(db.matching("sync.claim_rereads").length, 1);
  assert.equal(gate.active, 0, "the place is given back");
});

Deno.test("a re-read request on an isolate its estimate put past the hard limit when it arrived still claims keys", async () => {
  const db = fakeSql((s) => s.text.includes("sync.claim_rereads") ? [] : undefined);
  const cpu = fakeCpuMeter(2_753);
  cpu.requestArrived();
  const budget = { cpuMs: 1_100, wallMs: 1e9 };
  const { deps } = endpointDeps(validatorDb(), noDynamo(), { sql: db.sql, cpu, budget });
  const response = await handleValidatorRequest(post('{"rereads": true}'), deps);
  assert.equal(response.status, 200);
  assert.equal(db.matching("sync.claim_rereads").length, 1, "the request's floor: it asked");
});

Deno.test("the database lost once the run exists answers 202 with the run, not a 503 that would start another", async () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  const db = validatorDb({
    failWhen: (s) => s.text.includes("sync.claim_validation(") ? refused : undefined,
  });
  const { deps } = endpointDeps(db, noDynamo());
  const originalError = console.error;
  const logged: string[] = [];
  console.error = (line: string) => logged.push(line);
  try {
    const response = await handleValidatorRequest(
      post('{"table": "firespring_segments"}'),
      deps,
    );
    await assertRunning(response);
    assert.deepEqual(logged, [
      `validation run ${RUN} of firespring_segments: connect ECONNREFUSED; the heartbeat resumes it`,
    ]);
    assert.equal(db.matching("sync.end_validation").length, 0, "the run is not failed for it");
  } finally {
    console.error = originalError;
  }
});

Deno.test("a start sent again with its Idempotency-Key after a lost answer is the run it made", async () => {
  // The run's row committed with its key, then the connection dropped before its id came back.
  let lose = true;
  const db = validatorDb({
    failWhen: (s) => {
      if (!lose || !s.text.includes("sync.start_validation(")) return undefined;
      lose = false;
      db.runsByKey.set(String(s.values[5]), db.newRun("firespring_segments", false, 1));
      return Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    },
  });
  const dynamo = fakeDynamo(() => ({ Items: [segmentItem] }));
  const { deps } = endpointDeps(db, dynamo);
  const send = (key: string, table = "firespring_segments") =>
    handleValidatorRequest(
      new Request("http://localhost/data-checksum-validator", {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "idempotency-key": key },
        body: JSON.stringify({ table }),
      }),
      deps,
    );
  const lost = await send("req-1");
  assert.equal(lost.status, 503);
  assert.match((await lost.json()).error, /retry later, with the same Idempotency-Key/);
  const retried = await send("req-1");
  assert.equal(retried.status, 200);
  const result = await retried.json();
  assert.equal(result.runId, RUN, "the run the lost start made");
  assert.equal(result.match, true);
  assert.equal(db.runs.size, 1, "no second run of the table");
  // Sent again once the run has ended: its result, still no second run.
  const late = await send("req-1");
  assert.equal(late.status, 200);
  assert.equal((await late.json()).runId, RUN);
  assert.equal(db.runs.size, 1);
  // The key of another table's validation: 422, naming the run it started.
  const other = await send("req-1", "firespring_actions");
  assert.equal(other.status, 422);
  assert.match(
    (await other.json()).error,
    /^Idempotency-Key req-1 started validation run 42 of firespring_segments/,
  );
  // A key that is no key: 400, before the database.
  const before = db.statements.length;
  const bad = await send("a key with spaces");
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /Idempotency-Key must be 1 to 255 printable ASCII/);
  assert.equal(db.statements.length, before);
  await timersFire(deps);
});

Deno.test("the database down answers 503; any other failure 500 naming it", async () => {
  const down = validatorDb({
    fail: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
  });
  const a = endpointDeps(down, noDynamo());
  const unavailable = await handleValidatorRequest(
    post('{"table": "firespring_segments"}'),
    a.deps,
  );
  assert.equal(unavailable.status, 503);
  assert.equal(unavailable.headers.get("retry-after"), "5");
  await unavailable.body?.cancel();
  await timersFire(a.deps);

  // A repair asked for after the cutover: refused for good, with the cause.
  const cut = validatorDb({
    fail: Object.assign(
      new Error(
        "the sync is cut over (sync.settings write_back is cutover): a repair of firespring_segments would merge",
      ),
      { code: "SY005" },
    ),
  });
  const d = endpointDeps(cut, noDynamo());
  const refused = await handleValidatorRequest(
    post('{"table": "firespring_segments", "repair": true}'),
    d.deps,
  );
  assert.equal(refused.status, 409);
  assert.match((await refused.json()).error, /^the sync is cut over/);
  await timersFire(d.deps);

  // A statement that timed out before the run started: 503 too, the same request passes later.
  const slow = validatorDb({
    fail: Object.assign(new Error("canceling statement due to statement timeout"), {
      code: "57014",
    }),
  });
  const c = endpointDeps(slow, noDynamo());
  const timedOut = await handleValidatorRequest(post('{"table": "firespring_segments"}'), c.deps);
  assert.equal(timedOut.status, 503);
  assert.deepEqual(await timedOut.json(), {
    error: "the validator could not start now (57014); retry later",
  });
  await timersFire(c.deps);

  // The database read-only (a nearly full disk): said at once, not retried in silence.
  const readOnlyDb = validatorDb({
    fail: Object.assign(new Error("cannot execute INSERT in a read-only transaction"), {
      code: "25006",
    }),
  });
  const r = endpointDeps(readOnlyDb, noDynamo());
  const readOnly = await handleValidatorRequest(post('{"table": "firespring_segments"}'), r.deps);
  assert.equal(readOnly.status, 503);
  assert.equal(readOnly.headers.get("x-sync-refusal"), "read-only");
  assert.match(
    (await readOnly.json()).error,
    /^the database is read-only \(25006; .*; retry later$/,
  );
  await timersFire(r.deps);

  const db = validatorDb();
  const dynamo = fakeDynamo(() => {
    throw Object.assign(new Error("Cannot do operations on a non-existent table"), {
      name: "ResourceNotFoundException",
    });
  });
  const b = endpointDeps(db, dynamo);
  const originalError = console.error;
  console.error = () => {};
  try {
    const failed = await handleValidatorRequest(post('{"table": "firespring_segments"}'), b.deps);
    assert.equal(failed.status, 500);
    assert.deepEqual(await failed.json(), {
      error:
        `validation run ${RUN} of firespring_segments failed: the Scan of firespring-backdoor-segments-dev failed: segment 0: DynamoDB table firespring-backdoor-segments-dev does not exist in us-east-1`,
    });
  } finally {
    console.error = originalError;
  }
  assert.equal(db.runs.get(RUN)!.status, "failed", "the run is marked failed");
  assert.match(
    db.runs.get(RUN)!.error!,
    /DynamoDB table firespring-backdoor-segments-dev does not exist/,
  );
  await timersFire(b.deps);
});
