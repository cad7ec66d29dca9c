/**
 * The checks `npm run bench` (tests/bench.ts) makes of the work it times: a section whose
 * work did not end as it should throws, naming the section, the table, what was expected
 * and what was found, and the bench fails rather than record a goal for work not done.
 *
 * @module
 */

import type postgres from "postgres";
import { TABLES } from "../functions-shared/table_registry.ts";
import { eventually } from "./stack_clients.ts";

/** What a copy of the data set left in the targets. */
export interface Copied {
  /** The rows of every target table. */
  rows: number;
  /** The data set's distinct keys: the rows a complete copy leaves. */
  expected: number;
  /** The rows of sync.dead_letters. */
  letters: number;
}

/**
 * Checks that a copy of the data set (a backfill, an export's load) left each target
 * table one row per distinct key of its source table (`keys`, per source table, as
 * demo/demo_data.ts's dataSetKeys gives them) and nothing in sync.dead_letters (the data
 * set has no item the mapping refuses). Throws naming every table that differs; answers
 * the totals, for the section's figures.
 */
export async function checkCopied(
  sql: postgres.Sql,
  section: string,
  keys: Record<string, number>,
): Promise<Copied> {
  const counts = await sql.unsafe(
    TABLES.map((t) =>
      `select '${t.sourceTable}' as source_table, '${t.targetTable}' as target_table,
              count(*)::bigint as rows from public.${t.targetTable}`
    ).join(" union all "),
  );
  const problems: string[] = [];
  let rows = 0;
  let expected = 0;
  for (const count of counts) {
    const found = Number(count.rows);
    const wanted = keys[count.source_table] ?? 0;
    rows += found;
    expected += wanted;
    if (found !== wanted) {
      problems.push(
        `public.${count.target_table} holds ${found} rows, expected ${wanted} (the distinct keys of ${count.source_table})`,
      );
    }
  }
  const [{ letters }] = await sql`select count(*)::int as letters from sync.dead_letters`;
  if (letters !== 0) problems.push(`sync.dead_letters holds ${letters} rows, expected none`);
  if (problems.length > 0) throw new Error(`bench ${section}: ${problems.join("; ")}`);
  return { rows, expected, letters };
}

/**
 * Waits (10 minutes at most) until the backfill jobs `jobs` are done; answers their rows
 * of sync.backfill_progress. A job that failed or was cancelled ends the wait at once,
 * named with its table and its error: it would never be done.
 */
export async function backfillsDone(sql: postgres.Sql, section: string, jobs: string[]) {
  return await eventually(`bench ${section}: the backfill of every table to finish`, async () => {
    const rows = await sql`
      select job_id, target_table, status, error, items_scanned, rows_written
      from sync.backfill_progress where job_id = any(${jobs}::bigint[])`;
    const ended = rows.find((r) => r.status === "failed" || r.status === "cancelled");
    if (ended) {
      throw new Error(
        `bench ${section}: the backfill of public.${ended.target_table} (job ${ended.job_id}) ` +
          `is ${ended.status}, expected done${ended.error ? `: ${ended.error}` : ""}`,
      );
    }
    return rows.length === jobs.length && rows.every((r) => r.status === "done") ? rows : undefined;
  }, 600_000);
}
