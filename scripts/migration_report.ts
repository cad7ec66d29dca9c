/**
 * The migration report of `npm start` (docs/interfaces.md, "npm start"; README, "What the
 * report means"): validates every table through the data-checksum-validator, counts
 * source items, distinct keys and rows per table, prints the table and the times, and
 * names what keeps the migration from being done (unmappable items, open dead letters).
 *
 * @module
 */

import type postgres from "postgres";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { TABLES } from "../functions-shared/table_registry.ts";
import type { Unmappable } from "../functions-shared/validator_plan.ts";
import type { StackEnv } from "../local-stack/stack_env.ts";
import { type Item, scanAll } from "./live_changes.ts";

const say = (line = "") => console.log(line);

/** A table's verdict from the data-checksum-validator (waiting for a run that went async). */
export async function validate(env: StackEnv, sql: postgres.Sql, spec: TableSpec) {
  const response = await fetch(`${env.FUNCTIONS_URL}/data-checksum-validator`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env.SUPABASE_SERVICE_ROLE_KEY}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ table: spec.targetTable, repair: false }),
  });
  let result = await response.json();
  if (response.status === 202) {
    for (;;) {
      const [run] = await sql`select * from public.sync_checksums where id = ${result.runId}`;
      if (run.status !== "running") {
        result = {
          sourceItems: Number(run.source_items),
          targetRows: Number(run.target_rows),
          match: run.match,
          unmappable: run.unmappable,
        };
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  } else if (response.status !== 200) {
    throw new Error(`validating ${spec.targetTable}: ${response.status} ${JSON.stringify(result)}`);
  }
  return result as {
    sourceItems: number;
    targetRows: number;
    match: boolean;
    unmappable: Unmappable[];
  };
}

/**
 * What keeps the migration from being done although rows may match: source items that
 * map to no row (from the validation) and dead letters not yet replayed. One line per
 * table and kind, naming the count, then the first few items with their reasons.
 */
export async function openProblems(
  sql: postgres.Sql,
  unmappable: Map<string, Unmappable[]>,
): Promise<string[]> {
  const lines: string[] = [];
  for (const [table, items] of unmappable) {
    if (items.length === 0) continue;
    lines.push(`${table}: ${items.length} unmappable source items`);
    for (const item of items.slice(0, 5)) lines.push(`    ${item.reason}`);
  }
  const letters = await sql<{ table: string; n: number; reason: string }[]>`
    select coalesce(target_table, source_table, '(no table)') as table, count(*)::int as n,
           min(reason) as reason
    from sync.dead_letters where replayed_at is null group by 1 order by 1`;
  for (const { table, n, reason } of letters) {
    lines.push(
      `${table}: ${n} open dead letters (select * from sync.dead_letters where replayed_at is null)`,
    );
    lines.push(`    ${reason}`);
  }
  return lines;
}

/** The distinct keys of the Postgres table that a source table's items map to. */
export function distinctKeys(spec: TableSpec, items: Item[]): number {
  const keyAttributes = spec.collapse
    ? [spec.sourceKey[0].name]
    : spec.sourceKey.map((k) => k.name);
  return new Set(items.map((i) => keyAttributes.map((a) => i[a]?.S ?? i[a]?.N).join("\u0000")))
    .size;
}

/** What validating every table found: the report's rows and what is not done. */
export interface ValidationReport {
  /** One row per source table, then the total: the cells of the report's table. */
  rows: string[][];
  /** Whether every table's checksum matches. */
  allMatch: boolean;
  /** The unmappable source items, per target table. */
  unmappable: Map<string, Unmappable[]>;
}

/** Validates every table and counts its items, distinct keys and rows (one report row each). */
export async function validateEveryTable(
  env: StackEnv,
  sql: postgres.Sql,
): Promise<ValidationReport> {
  const rows: string[][] = [];
  const unmappable = new Map<string, Unmappable[]>();
  let allMatch = true;
  const totals = { items: 0, keys: 0, rows: 0 };
  for (const spec of TABLES) {
    const items = await scanAll(env, spec);
    const result = await validate(env, sql, spec);
    const keys = distinctKeys(spec, items);
    allMatch &&= result.match;
    unmappable.set(spec.targetTable, result.unmappable ?? []);
    totals.items += items.length;
    totals.keys += keys;
    totals.rows += result.targetRows;
    const dedup = items.length === 0
      ? "N/A"
      : `${((1 - result.targetRows / items.length) * 100).toFixed(1)}%`;
    rows.push([
      spec.sourceTable,
      String(items.length),
      String(keys),
      String(result.targetRows),
      dedup,
      result.match ? "match" : "MISMATCH",
    ]);
  }
  rows.push([
    "total",
    String(totals.items),
    String(totals.keys),
    String(totals.rows),
    totals.items ? `${((1 - totals.rows / totals.items) * 100).toFixed(1)}%` : "N/A",
    allMatch ? "match" : "MISMATCH",
  ]);
  return { rows, allMatch, unmappable };
}

/** How long the phases of the run took, in seconds. */
export interface RunTimes {
  backfillSeconds: number;
  liveSeconds: number;
  wholeSeconds: number;
}

/** Prints the migration report's table, the times, and where to look next. */
export function printReport(rows: string[][], times: RunTimes, databaseUrl: string): void {
  const header = [
    "source table",
    "DynamoDB items",
    "distinct keys",
    "Supabase rows",
    "dedup rate",
    "checksum",
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  say("\nMigration report");
  say(line(header));
  say(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) say(line(row));
  const { backfillSeconds, liveSeconds, wholeSeconds } = times;
  say(
    `\nbackfill ${backfillSeconds.toFixed(1)}s, live changes ${liveSeconds.toFixed(1)}s, ` +
      `whole run ${wholeSeconds.toFixed(1)}s`,
  );
  say(
    `\nWhere to look next:\n  psql ${databaseUrl}\n` +
      "  select * from sync.status;\n" +
      "  select city, state, count(*), avg(session_duration_seconds) from firespring_visitors_detailed\n" +
      "    where country_code = 'us' group by city, state order by count(*) desc;\n" +
      "  select referrer_type, referrer_domain, count(*) from firespring_visitors_detailed\n" +
      "    group by referrer_type, referrer_domain order by count(*) desc;\n" +
      "  select os, browser, count(*) from firespring_visitors_detailed group by os, browser order by count(*) desc;",
  );
}
