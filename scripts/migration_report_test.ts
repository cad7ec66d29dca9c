import assert from "node:assert/strict";
import { TABLES } from "../functions-shared/table_registry.ts";
import type postgres from "postgres";
import { openProblems, printReport, reportOf, type TableVerdict } from "./migration_report.ts";

Deno.test("the report lists every table in the registry's order, then the total", () => {
  const verdicts: TableVerdict[] = [...TABLES].reverse().map((s) => ({
    spec: s,
    items: 10,
    keys: 5,
    rows: 5,
    match: s.targetTable !== "firespring_segments",
    unmappableReasons: [],
    unmappableCount: 0,
  }));
  const report = reportOf(verdicts);
  assert.deepEqual(report.rows.map((r) => r[0]), [...TABLES.map((t) => t.sourceTable), "total"]);
  assert.equal(report.allMatch, false);
  assert.deepEqual(report.rows.at(-1), ["total", "90", "45", "45", "50.0%", "MISMATCH"]);
  assert.throws(() => reportOf(verdicts.slice(1)), /no verdict for/);
});

Deno.test("open problems count every unmappable item, not only those the answer listed", async () => {
  // No dead letters: the statement's answer.
  const sql = (() => Promise.resolve([])) as unknown as postgres.Sql;
  const reasons = Array.from(
    { length: 10_000 },
    (_, i) => `a-${i}: action_type is not a string`,
  );
  const lines = await openProblems(
    sql,
    new Map([
      ["firespring_actions", { count: 12_345, reasons }],
      ["firespring_segments", { count: 0, reasons: [] }],
    ]),
  );
  assert.deepEqual(lines, [
    "firespring_actions: 12345 unmappable source items",
    ...reasons.slice(0, 5).map((reason) => `    ${reason}`),
  ]);
});

Deno.test("where to look next names the settings file, and prints no password", () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    printReport([], { backfillSeconds: 1, liveSeconds: 2, wholeSeconds: 3 }, "/x/.local/stack.env");
  } finally {
    console.log = log;
  }
  const text = printed.join("\n");
  assert.match(text, /psql "\$\(sed -n 's\/\^DATABASE_URL=\/\/p' '\/x\/\.local\/stack\.env'\)"/);
  assert.doesNotMatch(text, /postgresql:\/\/|:postgres@/);
});
