import assert from "node:assert/strict";
import type postgres from "postgres";
import { TABLES } from "../functions-shared/table_registry.ts";
import type { ValidationResult } from "../functions-shared/validator_result.ts";
import { validateThroughFunction, type ValidationClient } from "./validation_client.ts";

const SPEC = TABLES[0];
const RESULT = { table: SPEC.targetTable, match: true, sourceItems: 3 } as ValidationResult;

/** A client whose function answers `answers` in turn and whose run records say `records`. */
function fakeClient(
  answers: Response[],
  records: (ValidationResult | "running" | { failed: string })[] = [],
  waitMs = 60_000,
) {
  let clock = 0;
  const sent: { url: string; body: unknown }[] = [];
  const traces: (string | null)[] = [];
  const keys: (string | null)[] = [];
  const slept: number[] = [];
  const client: ValidationClient = {
    functionsUrl: "http://functions/v1",
    serviceRoleKey: "key",
    sql: {} as postgres.Sql,
    waitMs,
    fetch: (url, init) => {
      sent.push({ url: String(url), body: JSON.parse(String(init?.body)) });
      traces.push(new Headers(init?.headers).get("traceparent"));
      keys.push(new Headers(init?.headers).get("idempotency-key"));
      return Promise.resolve(answers.shift() ?? new Response("no more answers", { status: 599 }));
    },
    recorded: () => Promise.resolve(records.length > 1 ? records.shift()! : records[0]),
    sleep: (ms) => {
      slept.push(ms);
      clock += ms;
      return Promise.resolve();
    },
    now: () => clock,
  };
  return { client, sent, slept, traces, keys };
}

Deno.test("a 200 is the result, asked for once with the table and whether to repair", async () => {
  const { client, sent, traces } = fakeClient([Response.json(RESULT)]);
  assert.deepEqual(await validateThroughFunction(client, SPEC, true), RESULT);
  assert.deepEqual(sent, [{
    url: "http://functions/v1/data-checksum-validator",
    body: { table: SPEC.targetTable, repair: true },
  }]);
  // A trace of its own, whose budget of calls between functions its hand-ons share.
  assert.match(traces[0] ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
});

Deno.test("a 503 is asked again after its Retry-After; the database back, the result", async () => {
  const unavailable = () =>
    Response.json({ error: "the database is unavailable; retry later" }, {
      status: 503,
      headers: { "retry-after": "5" },
    });
  const { client, sent, slept, keys } = fakeClient([
    unavailable(),
    unavailable(),
    Response.json(RESULT),
  ]);
  assert.deepEqual(await validateThroughFunction(client, SPEC), RESULT);
  assert.equal(sent.length, 3);
  assert.deepEqual(slept, [5000, 5000]);
  // One Idempotency-Key for every attempt: a start whose answer was lost is found again.
  assert.match(keys[0] ?? "", /^[0-9a-f-]{36}$/);
  assert.deepEqual(keys, [keys[0], keys[0], keys[0]]);
  // Another validation, another key.
  const next = fakeClient([Response.json(RESULT)]);
  await validateThroughFunction(next.client, SPEC);
  assert.notEqual(next.keys[0], keys[0]);
});

Deno.test("503s past the wait are an error naming the table and the answer", async () => {
  const answers = Array.from(
    { length: 20 },
    () =>
      Response.json({ error: "the database is unavailable; retry later" }, {
        status: 503,
        headers: { "retry-after": "5" },
      }),
  );
  const { client } = fakeClient(answers, [], 12_000);
  await assert.rejects(
    validateThroughFunction(client, SPEC),
    new RegExp(
      `^Error: validating ${SPEC.targetTable}: still 503 after 12 s: ` +
        '\\{"error":"the database is unavailable; retry later"\\}$',
    ),
  );
});

Deno.test("a schema of another version is an error at once, not waited out", async () => {
  const { client, slept } = fakeClient([
    Response.json({ error: "the database's schema is not the one these functions map" }, {
      status: 503,
      headers: { "retry-after": "60", "x-sync-refusal": "schema-mismatch" },
    }),
  ]);
  await assert.rejects(
    validateThroughFunction(client, SPEC),
    new RegExp(
      `^Error: validating ${SPEC.targetTable}: 503: ` +
        `\\{"error":"the database's schema is not the one these functions map"\\}$`,
    ),
  );
  assert.deepEqual(slept, []);
});

Deno.test("a database in read-only mode is an error at once, not waited out", async () => {
  const { client, slept } = fakeClient([
    Response.json({ error: "the database is read-only (25006; ...); retry later" }, {
      status: 503,
      headers: { "retry-after": "60", "x-sync-refusal": "read-only" },
    }),
  ]);
  await assert.rejects(
    validateThroughFunction(client, SPEC),
    /^Error: validating [a-z_]+: 503: \{"error":"the database is read-only/,
  );
  assert.deepEqual(slept, []);
});

Deno.test("a 202's run is waited for, queued or running; its verdict is its record's", async () => {
  const { client, slept } = fakeClient(
    [Response.json({ runId: 7, status: "running" }, { status: 202 })],
    ["running", "running", RESULT],
  );
  assert.deepEqual(await validateThroughFunction(client, SPEC), RESULT);
  assert.deepEqual(slept, [250, 250]);
});

Deno.test("a 409 naming the table's run under way is waited for, then asked again", async () => {
  const underWay = () =>
    Response.json({ error: "validation run 5 of x is already running", runId: 5 }, { status: 409 });
  const followed: number[] = [];
  const own = { ...RESULT, runId: 6 } as ValidationResult;
  const { client, sent } = fakeClient([underWay(), Response.json(own)], [RESULT]);
  client.recorded = (_spec, run) => {
    followed.push(run);
    return Promise.resolve(RESULT);
  };
  assert.deepEqual(await validateThroughFunction(client, SPEC), own, "its own run's verdict");
  assert.deepEqual(followed, [5], "the run under way, read until it ended");
  assert.equal(sent.length, 2, "asked again once it had ended");
  await assert.rejects(
    validateThroughFunction(fakeClient([underWay()], ["running"], 1_000).client, SPEC),
    /^Error: validating .*: run 5 is still running after 1 s/,
  );
  const repaired = { ...RESULT, runId: 6 } as ValidationResult;
  const again = fakeClient([underWay(), Response.json(repaired)], ["running", RESULT]);
  assert.deepEqual(await validateThroughFunction(again.client, SPEC, true), repaired);
  assert.deepEqual(again.sent.map((s) => s.body), [
    { table: SPEC.targetTable, repair: true },
    { table: SPEC.targetTable, repair: true },
  ], "the repair asked again once the run under way ended");
  assert.deepEqual(again.slept, [250], "after waiting for it");
});

Deno.test("a failed or missing run, a run past the wait, any other status: errors naming the table", async () => {
  const running = () => Response.json({ runId: 7, status: "running" }, { status: 202 });
  const table = SPEC.targetTable;
  await assert.rejects(
    validateThroughFunction(
      fakeClient([running()], [{ failed: "reaped: no progress for 15 minutes" }]).client,
      SPEC,
    ),
    new RegExp(`^Error: validating ${table}: run 7 failed: reaped: no progress for 15 minutes$`),
  );
  await assert.rejects(
    validateThroughFunction(fakeClient([running()], ["running"], 1_000).client, SPEC),
    new RegExp(`^Error: validating ${table}: run 7 is still running after 1 s`),
  );
  await assert.rejects(
    validateThroughFunction(
      fakeClient([Response.json({ error: "x is not a target table" }, { status: 400 })]).client,
      SPEC,
    ),
    new RegExp(`^Error: validating ${table}: 400 \\{"error":"x is not a target table"\\}$`),
  );
  await assert.rejects(
    validateThroughFunction(
      fakeClient([new Response("<html>bad gateway", { status: 502 })]).client,
      SPEC,
    ),
    new RegExp(`^Error: validating ${table}: 502 <html>bad gateway$`),
  );
});

Deno.test("a 202 without a run, an unreachable function, an unreadable record: errors naming the table", async () => {
  const table = SPEC.targetTable;
  await assert.rejects(
    validateThroughFunction(
      fakeClient([Response.json({ table, status: "running" }, { status: 202 })]).client,
      SPEC,
    ),
    new RegExp(`^Error: validating ${table}: 202 without a run to follow: `),
  );
  const unreachable = fakeClient([]);
  unreachable.client.fetch = () => Promise.reject(new TypeError("error sending request"));
  await assert.rejects(
    validateThroughFunction(unreachable.client, SPEC),
    new RegExp(`^Error: validating ${table}: the function did not answer: error sending request$`),
  );
  const broken = fakeClient([Response.json({ runId: 7 }, { status: 202 })]);
  broken.client.recorded = () => Promise.reject(new Error("permission denied for table x"));
  await assert.rejects(
    validateThroughFunction(broken.client, SPEC),
    new RegExp(`^Error: validating ${table}: reading run 7: permission denied for table x$`),
  );
});

Deno.test("a record the database cannot give for a moment is read again", async () => {
  const { client, slept } = fakeClient([Response.json({ runId: 7 }, { status: 202 })]);
  let reads = 0;
  client.recorded = () => {
    if (reads++ === 0) {
      return Promise.reject(
        Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      );
    }
    return Promise.resolve(RESULT);
  };
  assert.deepEqual(await validateThroughFunction(client, SPEC), RESULT);
  assert.deepEqual(slept, [1000]);
});
