import assert from "node:assert/strict";
import { TABLES } from "../functions-shared/table_registry.ts";
import type postgres from "postgres";
import type { StackEnv } from "../local-stack/stack_env.ts";
import { keysOf, reportOf, type TableVerdict, validate } from "./migration_report.ts";

const spec = (name: string) => TABLES.find((t) => t.targetTable === name)!;
const noScan = () => Promise.reject(new Error("no Scan expected"));

Deno.test("a plain table's distinct keys are its items, without a Scan", async () => {
  const counts = { sourceItems: 5, expectedRows: 4, unmappable: [] };
  assert.equal(await keysOf(spec("mmp_toledo_leads"), counts, noScan), 5);
  assert.equal(await keysOf(spec("firespring_actions"), { ...counts, sourceItems: 9 }, noScan), 9);
});

Deno.test("a collapsed table's distinct keys are its expected rows when every item maps", async () => {
  const counts = { sourceItems: 13_804, expectedRows: 2_247, unmappable: [] };
  assert.equal(await keysOf(spec("firespring_visitors"), counts, noScan), 2_247);
});

Deno.test("with unmappable items a collapsed table's keys are counted from a Scan", async () => {
  const counts = {
    sourceItems: 3,
    expectedRows: 1,
    unmappable: [{ key: { session_id: "s-2" }, reason: "s-2: bad timestamp" }],
  };
  const items = [
    { session_id: { S: "s-1" }, timestamp: { N: "1" } },
    { session_id: { S: "s-1" }, timestamp: { N: "2" } },
    { session_id: { S: "s-2" }, timestamp: { S: "x" } },
  ];
  assert.equal(await keysOf(spec("firespring_visitors"), counts, () => Promise.resolve(items)), 2);
});

Deno.test("the report lists every table in the registry's order, then the total", () => {
  const verdicts: TableVerdict[] = [...TABLES].reverse().map((s) => ({
    spec: s,
    items: 10,
    keys: 5,
    rows: 5,
    match: s.targetTable !== "firespring_segments",
    unmappable: [],
  }));
  const report = reportOf(verdicts);
  assert.deepEqual(report.rows.map((r) => r[0]), [...TABLES.map((t) => t.sourceTable), "total"]);
  assert.equal(report.allMatch, false);
  assert.deepEqual(report.rows.at(-1), ["total", "90", "45", "45", "50.0%", "MISMATCH"]);
  assert.throws(() => reportOf(verdicts.slice(1)), /no verdict for/);
});

/** validate() against a fake function answering 202 and a fake run row that moves on. */
async function validateWith(rows: Record<string, unknown>[]) {
  const table = TABLES[0];
  const realFetch = globalThis.fetch;
  globalThis.fetch = () =>
    Promise.resolve(new Response(JSON.stringify({ runId: 7, status: "running" }), { status: 202 }));
  const sql = (() =>
    Promise.resolve(
      [rows.length > 1 ? rows.shift() : rows[0]].filter(Boolean),
    )) as unknown as postgres.Sql;
  try {
    return await validate({ FUNCTIONS_URL: "http://functions" } as StackEnv, sql, table);
  } finally {
    globalThis.fetch = realFetch;
  }
}

Deno.test("a validation run that is queued or running is waited for; its verdict is the done row's", async () => {
  const result = await validateWith([
    { status: "queued" },
    { status: "running" },
    {
      status: "done",
      source_items: 3,
      expected_rows: 3,
      target_rows: 3,
      match: true,
      unmappable: [],
    },
  ]);
  assert.deepEqual(result, {
    sourceItems: 3,
    expectedRows: 3,
    targetRows: 3,
    match: true,
    unmappable: [],
  });
});

Deno.test("a failed or missing run is an error naming the table, the run and why", async () => {
  await assert.rejects(
    validateWith([{ status: "failed", error: "reaped: no progress for 15 minutes" }]),
    new RegExp(
      `^Error: validating ${
        TABLES[0].targetTable
      }: run 7 failed: reaped: no progress for 15 minutes$`,
    ),
  );
  await assert.rejects(validateWith([]), /run 7 does not exist/);
});
