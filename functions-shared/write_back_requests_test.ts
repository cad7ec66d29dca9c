import assert from "node:assert/strict";
import { RunGate } from "./run_gate.ts";
import { fakeCpuMeter, fakeDynamo, fakeSql } from "./testing_fakes.ts";
import { wakeHourOf, wakeKeyOf } from "./service_auth.ts";
import {
  HAND_ON_BODY,
  handleWriteBackRequest,
  RUNS_PER_ISOLATE,
  type WriteBackRequestDeps,
} from "./write_back_requests.ts";
import { EDIT_CPU_MS } from "./write_back_run.ts";

const edit = (id: number) => ({
  id: String(id),
  target_table: "firespring_segments",
  row_key: `{"segment_id": "s-${id}"}`,
  range_key: null,
  columns: ["segment_name"],
  before_values: '{"segment_name": "Old"}',
  after_values: '{"segment_name": "New"}',
});

/** A database whose first claim returns `due` edits; the requests' deps around it. */
function setup(due: number, overrides: Partial<WriteBackRequestDeps> = {}) {
  let claims = 0;
  const database = fakeSql((s) => {
    if (s.text.includes("sync.claim_write_backs")) {
      return claims++ === 0 ? Array.from({ length: due }, (_, i) => edit(i + 1)) : [];
    }
    if (s.text.includes("sync.finish_write_back")) return [{ status: s.values[2] }];
    if (s.text.includes("sync.hold_write_back")) return [{ holds: true }];
    if (s.text.includes("sync.release_write_back")) return [];
    return undefined;
  });
  const dynamo = fakeDynamo((c) =>
    c.name === "GetItemCommand" ? { Item: { segment_id: { S: "x" }, name: { S: "Old" } } } : {}
  );
  const calls: unknown[] = [];
  const background: Promise<unknown>[] = [];
  const deps: WriteBackRequestDeps = {
    sql: database.sql,
    serviceKeys: ["sb_secret_test"],
    reader: dynamo.dynamo,
    writer: dynamo.dynamo,
    worker: "w-1",
    wallBudgetMs: 10_000,
    cpu: fakeCpuMeter(),
    runCpuMs: 300,
    gate: new RunGate(RUNS_PER_ISOLATE),
    waitUntil: (work) => background.push(work),
    callSelf: (body) => {
      calls.push(body);
      return Promise.resolve();
    },
    ...overrides,
  };
  return { deps, calls, background, database };
}

const post = (body = "{}", key = "sb_secret_test") =>
  new Request("http://x/", {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body,
  });

Deno.test("a request needs POST and a service key", async () => {
  const { deps } = setup(0);
  const get = await handleWriteBackRequest(new Request("http://x/", { method: "GET" }), deps);
  assert.equal(get.status, 405);
  const anonymous = await handleWriteBackRequest(
    new Request("http://x/", { method: "POST" }),
    deps,
  );
  assert.equal(anonymous.status, 401);
  assert.doesNotMatch(await anonymous.text(), /sb_secret_test/);
});

Deno.test("a wake key starts a run, as pg_cron's sweep does; a hand-on takes a service key", async () => {
  // pg_net's queue, where pg_cron's wake key waits, is readable by every database role.
  const wake = wakeKeyOf("sb_secret_test", wakeHourOf(Date.now()));
  const { deps, database } = setup(0);
  const handOn = await handleWriteBackRequest(post('{"handOn": true}', wake), deps);
  assert.equal(handOn.status, 403);
  assert.match((await handOn.json()).error, /a wake key \(pg_cron's\) may only start a run/);
  assert.equal(database.matching("sync.claim_write_backs").length, 0, "nothing claimed");
  const swept = await handleWriteBackRequest(post("{}", wake), deps);
  assert.equal(swept.status, 200);
  assert.equal(database.matching("sync.claim_write_backs").length, 1);
});

Deno.test("pg_net's call is answered with the run's report; nothing left, nothing handed on", async () => {
  const { deps, calls } = setup(3);
  const answer = await handleWriteBackRequest(post(), deps);
  assert.equal(answer.status, 200);
  assert.deepEqual(await answer.json(), { applied: 3, conflict: 0, failed: 0, retrying: 0 });
  assert.deepEqual(calls, []);
});

Deno.test("a run its allowance stopped hands on; the hand-on is answered 202 at once", async () => {
  const { deps, calls, background, database } = setup(30, { runCpuMs: 10 * EDIT_CPU_MS });
  const answer = await handleWriteBackRequest(post(), deps);
  assert.equal(answer.status, 200);
  assert.deepEqual(await answer.json(), {
    applied: 10,
    conflict: 0,
    failed: 0,
    retrying: 0,
    more: true,
  });
  assert.equal(database.matching("sync.release_write_back").length, 20);
  await Promise.all(background);
  assert.deepEqual(calls, [HAND_ON_BODY], "the successor is asked for, not awaited");
  assert.equal(deps.gate.active, 0, "the run's place is free before its successor comes");

  // The successor: accepted at once, its run in the background.
  const next = setup(0);
  const accepted = await handleWriteBackRequest(post(JSON.stringify(HAND_ON_BODY)), next.deps);
  assert.equal(accepted.status, 202);
  assert.deepEqual(await accepted.json(), { accepted: true });
  assert.equal(next.background.length, 1);
  await Promise.all(next.background);
});

Deno.test("an isolate runs two at a time; a third request starts nothing", async () => {
  const { deps } = setup(0);
  assert.ok(deps.gate.take() && deps.gate.take());
  const busy = await handleWriteBackRequest(post(), deps);
  assert.equal(busy.status, 200);
  assert.deepEqual(await busy.json(), {
    accepted: false,
    reason: "this isolate already runs 2; they go on claiming",
  });
  // A hand-on turned away says so with an error, which its caller logs.
  const busyHandOn = await handleWriteBackRequest(post(JSON.stringify(HAND_ON_BODY)), deps);
  assert.equal(busyHandOn.status, 503);
  assert.equal(busyHandOn.headers.get("retry-after"), "1");
});

Deno.test("an unreachable database answers 503 with Retry-After, as the other functions", async () => {
  const { sql } = fakeSql(() => {
    throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6543"), { code: "ECONNREFUSED" });
  });
  const { deps } = setup(0, { sql });
  const answer = await handleWriteBackRequest(post(), deps);
  assert.equal(answer.status, 503);
  assert.equal(answer.headers.get("retry-after"), "5");
  assert.deepEqual(await answer.json(), { error: "the database is unavailable; retry later" });
});

Deno.test("a statement that timed out answers 503; any other failure a 500 naming its SQLSTATE, no value", async () => {
  const failing = (error: Error) =>
    setup(0, {
      sql: fakeSql(() => {
        throw error;
      }).sql,
    }).deps;
  const timedOut = await handleWriteBackRequest(
    post(),
    failing(
      Object.assign(new Error("canceling statement due to statement timeout"), { code: "57014" }),
    ),
  );
  assert.equal(timedOut.status, 503);
  assert.deepEqual(await timedOut.json(), {
    error: "the write-back could not run now (57014); retry later",
  });
  const readOnly = await handleWriteBackRequest(
    post(),
    failing(
      Object.assign(new Error("cannot execute INSERT in a read-only transaction"), {
        code: "25006",
      }),
    ),
  );
  assert.equal(readOnly.status, 503);
  assert.equal(readOnly.headers.get("x-sync-refusal"), "read-only");
  assert.match((await readOnly.json()).error, /^the database is read-only \(25006; /);
  const errors: unknown[][] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    const broken = await handleWriteBackRequest(
      post(),
      failing(Object.assign(new Error('value too long: "secret@example.com"'), { code: "22001" })),
    );
    assert.equal(broken.status, 500);
    const body = await broken.json();
    assert.deepEqual(body, {
      error: "write-back failed (SQLSTATE 22001); the function's log has the error",
    });
    assert.equal(errors.length, 1, "the whole error is logged");
  } finally {
    console.error = error;
  }
});
