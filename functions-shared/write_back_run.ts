/**
 * The `write-back` Edge Function's work (docs/interfaces.md, "write-back"): claims the
 * due rows of `sync.write_backs` (a lease each; the oldest edit of a row first) and
 * writes each to its DynamoDB item (write_back_update.ts):
 * - the item holds the edit already (an earlier attempt wrote it): `applied`;
 * - the update succeeds: `applied`; the change comes back through the stream and the one
 *   merge, whose writes never fire the trigger, so nothing loops;
 * - the item changed in between (the mapped values differ, or ConditionalCheckFailed):
 *   `conflict`, with the source's values, and the row restored from a consistent read
 *   through the one merge (validator_repair.ts's repairKeys);
 * - the edit cannot be written (a key attribute, an undocumented catch-all key, a value
 *   DynamoDB cannot hold): `failed` at once, the row restored from the source;
 * - throttling, 5xx, no writer credentials, the item gone: retried after a backoff
 *   (`sync.finish_write_back`), `failed` after `write_back_max_attempts`, the row then
 *   restored from the source when it can be read (so the row never shows an edit the
 *   source does not hold; the edit stays in `after_values`).
 * Every detail names the table, the key and the cause; no secret is ever part of one.
 *
 * A run stops claiming at its wall budget or at its CPU allowance (each edit charged
 * `EDIT_CPU_MS` to the isolate's meter: a bulk edit of 3,000 rows had isolate after
 * isolate killed at the 2,000 ms hard limit), and says whether write-backs may be left
 * (`more`), which write_back_requests.ts hands on to a new request. Each claimed edit is
 * ended by write_back_edit.ts.
 *
 * @module
 */

import type postgres from "postgres";
import { FirstLines } from "./log_window.ts";
import type { EditDeps } from "./write_back_attempt.ts";
import { type Claimed, endEdit, restoreDue } from "./write_back_edit.ts";

/** What the function needs, given by its entry point (or a test). */
export interface WriteBackDeps extends EditDeps {
  sql: postgres.Sql;
  serviceKeys: readonly string[];
  /** This isolate's name in leases (each run's is this and a suffix of its own). */
  worker: string;
  /** Wall time after which no further batch is claimed (ms). */
  wallBudgetMs: number;
  /** The CPU, by `cpu`, after which the run starts no further edit (ms). */
  runCpuMs: number;
  /** Write-backs claimed at once (10). */
  batch?: number;
  log?: (line: string) => void;
}

/** The outcome of one run: how many ended how, and whether some may be left. */
export interface WriteBackReport {
  applied: number;
  conflict: number;
  failed: number;
  retrying: number;
  /**
   * Set when a budget stopped the run after a claim that found work, so that more may be
   * due: the request hands them on.
   */
  more?: true;
}

/**
 * The CPU an edit is charged: two DynamoDB requests through the SDK (signed) and three or
 * four statements. Measured on the local stack, by the gateway's count of the isolate's
 * whole process (more than the main thread it counts now): 4.0-4.9 ms an edit in runs of
 * 130-140 edits, the first edit of an isolate 60 ms (compiling what it runs). Charged at twice the steady cost, so that a run's
 * allowance by this count is more than it uses, however busy the machine.
 */
export const EDIT_CPU_MS = 8;

/** Claims and writes due write-backs until none is due or a budget is spent. */
export async function runWriteBacks(given: WriteBackDeps): Promise<WriteBackReport> {
  // Leases are the run's own, not the isolate's: two runs of one isolate must not pass
  // each other's lease checks.
  const deps = { ...given, worker: `${given.worker}/${crypto.randomUUID().slice(0, 8)}` };
  const report: WriteBackReport = { applied: 0, conflict: 0, failed: 0, retrying: 0 };
  const started = performance.now();
  // What the isolate's meter has counted since the run started, its own edits and those
  // of a run beside it (write_back_requests.ts admits two): once the runtime retires the
  // isolate at its soft limit, its runs add about one allowance more, whatever the
  // isolate used before.
  const cpuAtStart = deps.cpu.usedMs();
  const budgetLeft = () =>
    performance.now() - started < deps.wallBudgetMs &&
    deps.cpu.usedMs() - cpuAtStart + EDIT_CPU_MS <= deps.runCpuMs;
  const batch = deps.batch ?? 10;
  // Claimed, not yet tried: released if the run stops (by a budget, or an error).
  const untried = new Set<string>();
  let lastClaimed = 0;
  // The first few edits not applied (conflicts, failures, retries) get a line each; the
  // rest count in the run's totals: a bulk edit applies hundreds a run, or fails or
  // retries them all while DynamoDB or the writer's key is down, and a hosted function
  // keeps 100 log events in 10 s (https://supabase.com/docs/guides/functions/limits).
  // Each edit is in sync.write_backs with its detail.
  const problems = new FirstLines(PROBLEM_LINES_PER_RUN, deps.log);
  const logEnd = (status: string | null, line: string) => {
    if (status !== "applied") problems.line(line);
  };
  try {
    while (budgetLeft()) {
      const claimed = await deps.sql<Claimed[]>`
        select id::text, status, detail, target_table, row_key::text, range_key::text, columns,
               before_values::text, after_values::text
        from sync.claim_write_backs(${deps.worker}, ${batch})`;
      lastClaimed = claimed.length;
      if (claimed.length === 0) break;
      // Spent ones first (failed by the claim, at most a batch): their rows go back to the
      // source's state whatever the budget, and before anything else can stop the run.
      const spentRows = claimed.filter(restoreDue);
      const pending = claimed.filter((row) => !restoreDue(row));
      for (const row of pending) untried.add(row.id);
      for (const row of [...spentRows, ...pending]) {
        // The budgets are checked before each edit: one not reached goes back untried.
        if (!restoreDue(row) && !budgetLeft()) continue;
        untried.delete(row.id);
        const { status, line } = await endEdit(deps, row);
        deps.cpu.charge(EDIT_CPU_MS);
        logEnd(status, line);
        if (status === "applied") report.applied++;
        else if (status === "conflict") report.conflict++;
        else if (status === "failed") report.failed++;
        else if (status === "pending") report.retrying++;
      }
      await release(deps, untried);
    }
  } finally {
    // A run that stops on an error leaves no lease behind for 2 minutes either.
    if (untried.size > 0) await release(deps, untried).catch(() => {});
    // Also when the run stops on an error: what it did before is said.
    const unlogged = problems.unlogged;
    if (report.applied + report.conflict + report.failed + report.retrying > 0 || unlogged > 0) {
      deps.log?.(
        `write-back run: ${report.applied} applied, ${report.conflict} conflicts, ` +
          `${report.failed} failed, ${report.retrying} to retry` +
          (unlogged > 0
            ? ` (${unlogged} not logged one by one: sync.write_backs holds each edit's detail)`
            : ""),
      );
    }
  }
  // A budget stopped it after a claim that found work: more may be due (edits it gave
  // back, later edits of the rows it wrote, more spent ones). A successor that finds
  // nothing costs one claim.
  if (!budgetLeft() && lastClaimed > 0) report.more = true;
  return report;
}

/** Gives the claimed write-backs back untried (their attempt not counted). */
async function release(deps: WriteBackDeps, ids: Set<string>): Promise<void> {
  for (const id of [...ids]) {
    await deps.sql`select sync.release_write_back(${id}::bigint, ${deps.worker})`;
    ids.delete(id);
  }
}

/** How many edits of a run not applied get a line each; the rest count in its totals. */
export const PROBLEM_LINES_PER_RUN = 3;
