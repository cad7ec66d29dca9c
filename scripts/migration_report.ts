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
import type { StackEnv } from "../local-stack/stack_env.ts";
import { validateThroughFunction } from "./validation_client.ts";

const say = (line = "") => console.log(line);

/** A table's verdict from the data-checksum-validator (scripts/validation_client.ts). */
export async function validate(env: StackEnv, sql: postgres.Sql, spec: TableSpec) {
  const result = await validateThroughFunction(
    { functionsUrl: env.FUNCTIONS_URL, serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY, sql },
    spec,
  );
  return {
    sourceItems: result.sourceItems,
    expectedRows: result.expectedRows,
    targetRows: result.targetRows,
    match: result.match,
    unmappableReasons: result.unmappableReasons,
    // The answer lists the first of a longer list; `counts` has them all.
    unmappableCount: result.counts?.unmappable ?? result.unmappable.length,
  };
}

/**
 * What keeps the migration from being done although rows may match: source items that
 * map to no row (from the validation) and dead letters not yet replayed. One line per
 * table and kind, naming the count, then the first few items with their reasons.
 */
export async function openProblems(
  sql: postgres.Sql,
  unmappable: Map<string, UnmappableFound>,
): Promise<string[]> {
  const lines: string[] = [];
  for (const [table, { count, reasons }] of unmappable) {
    if (count === 0) continue;
    lines.push(`${table}: ${count} unmappable source items`);
    for (const reason of reasons.slice(0, 5)) lines.push(`    ${reason}`);
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

/** What validating every table found: the report's rows and what is not done. */
export interface ValidationReport {
  /** One row per source table, then the total: the cells of the report's table. */
  rows: string[][];
  /** Whether every table's checksum matches. */
  allMatch: boolean;
  /** The unmappable source items, per target table. */
  unmappable: Map<string, UnmappableFound>;
}

/** A table's unmappable source items: how many, and why, for the first the validator listed. */
export interface UnmappableFound {
  count: number;
  reasons: string[];
}

/** One table's line of the report. */
export interface TableVerdict {
  spec: TableSpec;
  /** The items a full Scan of the source table returned (the validator's Scan). */
  items: number;
  /**
   * The distinct keys of the rows those items map to: what the target table should hold
   * (an item soft-deleted or unmappable maps to none).
   */
  keys: number;
  /** The target table's rows. */
  rows: number;
  match: boolean;
  /** Why the first unmappable items map to no row (the validator's answer lists at most 10,000). */
  unmappableReasons: string[];
  /** How many there are. */
  unmappableCount: number;
}

/** Validates one table and counts its items, distinct keys and rows. */
export async function validateTable(
  env: StackEnv,
  sql: postgres.Sql,
  spec: TableSpec,
): Promise<TableVerdict> {
  const result = await validate(env, sql, spec);
  return {
    spec,
    items: result.sourceItems,
    // The rows the items should make (soft-deleted and unmappable ones make none; a
    // collapsed table's items of one key make one): the validator's expected rows.
    keys: result.expectedRows,
    rows: result.targetRows,
    match: result.match,
    unmappableReasons: result.unmappableReasons ?? [],
    unmappableCount: result.unmappableCount,
  };
}

/** The report's rows (in the registry's order) and totals from every table's verdict. */
export function reportOf(verdicts: TableVerdict[]): ValidationReport {
  const rows: string[][] = [];
  const unmappable = new Map<string, UnmappableFound>();
  let allMatch = true;
  const totals = { items: 0, keys: 0, rows: 0 };
  for (const spec of TABLES) {
    const verdict = verdicts.find((v) => v.spec.targetTable === spec.targetTable);
    if (!verdict) throw new Error(`the report has no verdict for ${spec.targetTable}`);
    allMatch &&= verdict.match;
    unmappable.set(spec.targetTable, {
      count: verdict.unmappableCount,
      reasons: verdict.unmappableReasons,
    });
    totals.items += verdict.items;
    totals.keys += verdict.keys;
    totals.rows += verdict.rows;
    const dedup = verdict.items === 0
      ? "N/A"
      : `${((1 - verdict.rows / verdict.items) * 100).toFixed(1)}%`;
    rows.push([
      spec.sourceTable,
      String(verdict.items),
      String(verdict.keys),
      String(verdict.rows),
      dedup,
      verdict.match ? "match" : "MISMATCH",
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

/** Validates every table at once and counts its items, distinct keys and rows. */
export async function validateEveryTable(
  env: StackEnv,
  sql: postgres.Sql,
): Promise<ValidationReport> {
  return reportOf(await Promise.all(TABLES.map((spec) => validateTable(env, sql, spec))));
}

/** How long the phases of the run took, in seconds. */
export interface RunTimes {
  backfillSeconds: number;
  liveSeconds: number;
  wholeSeconds: number;
  /** One line per phase (scripts/phase_clock.ts), printed before the totals. */
  phases?: string[];
}

/**
 * Prints the migration report's table, the times, and where to look next: a `psql`
 * command that reads the database's URL from `envFile` (the stack's settings), so that no
 * password is printed, the local stack's default one included.
 */
export function printReport(rows: string[][], times: RunTimes, envFile: string): void {
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
  if (times.phases?.length) say(`\n${times.phases.join("\n")}`);
  say(
    `\nbackfill ${backfillSeconds.toFixed(1)}s, live changes ${liveSeconds.toFixed(1)}s, ` +
      `whole run ${wholeSeconds.toFixed(1)}s`,
  );
  say(
    `\nWhere to look next:\n  psql "$(sed -n 's/^DATABASE_URL=//p' '${envFile}')"\n` +
      "  select * from sync.status;\n" +
      "  select city, state, count(*), avg(session_duration_seconds) from firespring_visitors_detailed\n" +
      "    where country_code = 'us' group by city, state order by count(*) desc;\n" +
      "  select referrer_type, referrer_domain, count(*) from firespring_visitors_detailed\n" +
      "    group by referrer_type, referrer_domain order by count(*) desc;\n" +
      "  select os, browser, count(*) from firespring_visitors_detailed group by os, browser order by count(*) desc;",
  );
}
