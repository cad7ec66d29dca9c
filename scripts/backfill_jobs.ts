/**
 * Scan backfill jobs, for `npm run backfill` (backfill.ts) and `npm start`: queued with
 * `sync.start_backfill` (or followed, when one of the table's is already pending or
 * running), refused after the cutover, and followed with a progress bar per job (items,
 * rows, rate, ETA, segments or files) from `sync.backfill_progress` until each has ended.
 *
 * @module
 */

import type postgres from "postgres";
import { DescribeTableCommand } from "../functions-shared/dynamo_commands.ts";
import type { DynamoClient } from "../functions-shared/dynamo_http.ts";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { BarScreen } from "./bar_screen.ts";

/** A row of `sync.backfill_progress`. */
export interface Progress {
  job_id: string;
  target_table: string;
  status: string;
  segments_done: number;
  total_segments: number;
  items_scanned: number;
  rows_written: number;
  items_per_second: number | null;
  /** `scan`, or `export` (then the segments are the export's data files). */
  source?: string;
  /** An export's item count (its manifest's). */
  expected_items?: number | null;
  /** When a worker last worked on the job (the job's request before any). */
  last_worked_at?: Date | string | null;
}

/** How long a Scan backfill may go without a worker before the command says so. */
export const STALL_MS = 5 * 60_000;

/**
 * What to say of a Scan backfill, still to finish, that no worker has worked on for
 * {@link STALL_MS} at `now` (the import-worker never called, or failing before its
 * first page); undefined otherwise. An export's loader is the command itself, which says
 * what it meets.
 */
export function stallNotice(p: Progress, now: number): string | undefined {
  if ((p.source ?? "scan") !== "scan" || !["pending", "running"].includes(p.status)) {
    return undefined;
  }
  const last = p.last_worked_at ? new Date(p.last_worked_at).getTime() : NaN;
  if (!(now - last >= STALL_MS)) return undefined;
  return `backfill job ${p.job_id} of ${p.target_table}: no worker has worked on it for ` +
    `${Math.floor((now - last) / 60_000)} minutes (last at ${new Date(last).toISOString()}); ` +
    "pg_cron's sync-import-worker job calls the import-worker: see the README's " +
    'Troubleshooting, "a backfill stays at 0 %" (select * from sync.status: scheduler_problem, function_problem)';
}

const BAR = 24;

/** One line of progress for a job. */
export function progressLine(p: Progress, expectedItems: number | undefined): string {
  const items = Number(p.items_scanned);
  const total = Math.max(Number(p.expected_items ?? expectedItems ?? 0), items);
  const share = p.status === "done" ? 1 : total > 0 ? Math.min(1, items / total) : 0;
  const filled = Math.round(share * BAR);
  const rate = Number(p.items_per_second ?? 0);
  const eta = p.status === "done"
    ? "done"
    : p.status === "failed"
    ? "FAILED"
    : p.status === "cancelled"
    ? "CANCELLED"
    : rate > 0 && total > items
    ? `ETA ${Math.ceil((total - items) / rate)}s`
    : "ETA ?";
  return `${p.target_table.padEnd(27)} [${"#".repeat(filled)}${"-".repeat(BAR - filled)}] ` +
    `${items.toLocaleString("en-US").padStart(7)}/${
      total.toLocaleString("en-US").padEnd(7)
    } items ` +
    `${Number(p.rows_written).toLocaleString("en-US").padStart(7)} rows ` +
    `${rate.toFixed(0).padStart(6)}/s  ${p.source === "export" ? "files" : "segments"} ` +
    `${p.segments_done}/${p.total_segments}  ${eta}`;
}

/** How long each table's item count (for the ETA only) is waited for. */
const COUNT_WAIT_MS = 10_000;

/**
 * Queues a backfill of each table; returns the job ids, and a map of each table's item
 * count (for the ETA) that fills in as DynamoDB answers: every table is asked at once,
 * once every job is queued, each for at most {@link COUNT_WAIT_MS}, so that a DynamoDB the
 * command cannot reach delays no job (its bars show "?"). `log` gets why a count is
 * missing.
 */
export async function startBackfills(
  sql: postgres.Sql,
  dynamo: (region: string) => DynamoClient,
  tables: TableSpec[],
  segments: number,
  log: (line: string) => void = console.error,
): Promise<{ jobs: string[]; expected: Map<string, number | undefined> }> {
  const expected = new Map<string, number | undefined>();
  const jobs: string[] = [];
  for (const spec of tables) {
    // A Scan backfill of the table that is still pending or running (a run of this
    // command interrupted, say) is followed, not started again beside it: two would read
    // the table at twice its read budget, which is each job's. Every one of them: a heal
    // may have queued a newer job behind a running one, and the table is whole (its stale
    // mark cleared) only once that one ends too.
    const active = await sql<{ id: string; status: string }[]>`
      select id, status from sync.backfill_jobs
      where source_table = ${spec.sourceTable} and status in ('pending', 'running')
        and checksum_run_id is null and export_arn is null
      order by id`;
    if (active.length > 0) {
      for (const job of active) {
        console.log(
          `backfill: ${spec.targetTable}: following backfill job ${job.id}, already ${job.status}`,
        );
        jobs.push(job.id);
      }
      continue;
    }
    const [row] = await sql`select sync.start_backfill(${spec.sourceTable}, ${segments}) as id`;
    jobs.push(row.id);
  }
  for (const spec of tables) {
    dynamo(spec.region).send(
      new DescribeTableCommand({ TableName: spec.sourceTable }),
      { abortSignal: AbortSignal.timeout(COUNT_WAIT_MS) },
    ).then(
      (description) => expected.set(spec.targetTable, description?.Table?.ItemCount),
      (error) =>
        log(
          `${spec.targetTable}: no item count for the ETA (DescribeTable of ${spec.sourceTable} ` +
            `in ${spec.region}: ${
              (error as Error).name === "TimeoutError"
                ? `no answer within ${COUNT_WAIT_MS / 1000} s`
                : (error as Error).message
            })`,
        ),
    );
  }
  return { jobs, expected };
}

/**
 * Shows a progress bar per job (redrawn in place on a terminal, a block every 2 s
 * otherwise) until every job has finished, or `until` settles (the loaders of the jobs
 * have all stopped: a job still running then waits for a later run); returns the failed
 * jobs' causes, and names each job left running. Log lines printed meanwhile go through
 * `screen`, above the bars.
 */
export async function followBackfills(
  sql: postgres.Sql,
  jobs: string[],
  expected: Map<string, number | undefined>,
  until?: Promise<unknown>,
  screen: BarScreen = new BarScreen(),
): Promise<string[]> {
  let lastPlain = 0;
  let stopped = false;
  /** The jobs whose stall was told, until a worker works on them again. */
  const stalled = new Set<string>();
  until?.finally(() => (stopped = true)).catch(() => {});
  for (;;) {
    // Read before the rows: loaders that stopped before the query are seen by it.
    const loadersStopped = stopped;
    const rows = await sql<Progress[]>`
      select * from sync.backfill_progress where job_id = any(${jobs}::bigint[]) order by job_id`;
    const lines = rows.map((p) => progressLine(p, expected.get(p.target_table)));
    for (const p of rows) {
      const notice = stallNotice(p, Date.now());
      if (notice && !stalled.has(p.job_id)) screen.log(notice);
      if (notice) stalled.add(p.job_id);
      else stalled.delete(p.job_id);
    }
    // Cancelled too (npm start's reset, the validator, an operator's update): it never
    // finishes otherwise, and the bar would show its last ETA for ever.
    const over = (p: Progress) => ["done", "failed", "cancelled"].includes(p.status);
    const finished = loadersStopped || rows.every(over);
    if (screen.terminal || finished || Date.now() - lastPlain > 2_000) {
      screen.bars(lines);
      lastPlain = Date.now();
    }
    if (finished) {
      const failed = await sql`select id, source_table, status, error from sync.backfill_jobs
                               where id = any(${jobs}::bigint[])
                                 and status in ('failed', 'cancelled')`;
      return [
        ...failed.map((f) =>
          f.status === "cancelled"
            ? `backfill job ${f.id} of ${f.source_table} was cancelled${
              f.error ? `: ${f.error}` : ""
            }; start it again`
            : `backfill job ${f.id} of ${f.source_table} failed: ${f.error}`
        ),
        ...rows.filter((p) => !over(p)).map((p) =>
          `backfill job ${p.job_id} of ${p.target_table} is left ${p.status}: its loader ` +
          "stopped (above); run the command again to go on from its checkpoints"
        ),
      ];
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * Why a backfill may not start, when the sync is cut over (`write_back` `cutover`):
 * Supabase is then the source of truth, and every merge is refused (sync.enter_merge,
 * SY005), so the Scan's reads (or the export, paid for) would be for nothing.
 */
export async function cutOverProblem(sql: postgres.Sql): Promise<string | undefined> {
  const [row] = await sql<{ value: string }[]>`
    select value from sync.settings where key = ${"write_back"}`;
  if (row?.value !== "cutover") return undefined;
  return "the sync is cut over (sync.settings write_back is cutover): Supabase is the " +
    "source of truth, and nothing from DynamoDB is merged; to sync again, follow the " +
    'README\'s "Rolling back" (write_back off first)';
}
