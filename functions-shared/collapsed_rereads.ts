/**
 * Consistent re-reads of collapsed rows (docs/sync-semantics.md, "Collapsed tables";
 * supabase/migrations/20261128002900_collapsed_rereads.sql). When a change removes the
 * observation a collapsed row holds, the merge queues the key: older items still live in
 * DynamoDB may have been purged here as superseded, and the stream never brings them
 * again. Each queued key is read consistently (a Query of its partition) and its items
 * applied through the one merge as a repair seen when the held observation was removed
 * (validator_repair.ts), so the row is the newest live item again. A re-read only brings
 * items back: an observation whose item it did not find is left to that item's own
 * stream record (and to the daily validation), as the merge leaves every removal.
 *
 * The data-checksum-validator serves the queue (`POST {"rereads": true}`), called by
 * pg_cron (`sync.wake_rereads`) while keys wait.
 *
 * @module
 */

import { budgetCheck, type ValidatorDeps } from "./validator_deps.ts";
import { FirstLines } from "./log_window.ts";
import { isDatabaseUnavailable } from "./db_errors.ts";
import { byTargetTable } from "./table_registry.ts";
import type { RowKey } from "./validator_plan.ts";
import { repairKeys } from "./validator_repair.ts";
import { PartitionTooLarge } from "./point_reads.ts";

/** What one request did: keys re-read, and keys whose re-read failed (tried again later). */
export interface RereadOutcome {
  reread: number;
  failed: number;
}

/** A key claimed from the queue (`sync.claim_rereads`). */
interface Claimed {
  target_table: string;
  row_key: RowKey;
  /** As Postgres prints it: the exact value, which `sync.finish_reread` compares. */
  queued_at: string;
}

/** Keys claimed at a time. */
export const REREADS_PER_CLAIM = 25;

/**
 * How many problems (a failed key, an item left out) of one request get a line each; the
 * rest are counted in the request's closing line. When DynamoDB is down every key of a
 * queue of hundreds fails, and a hosted function keeps 100 log events in 10 s
 * (https://supabase.com/docs/guides/functions/limits): past that the platform drops lines,
 * the first cause among them. Each failed key keeps its cause in
 * `sync.collapsed_rereads.error`; an item left out (it cannot be mapped) is the table's
 * next validation's `unmappable`.
 */
export const PROBLEM_LINES_PER_REQUEST = 3;

/**
 * The CPU a re-read is charged on the isolate's meter besides its Query's own
 * (`POINT_READ_CPU_MS` an attempt, charged by the read, validator_source.ts), none of it
 * in a measured step: three or four statements (the merge as a repair, the key's end).
 * With a one-page Query answered at once it makes 8, as a write-back's edit (two requests and three or four
 * statements, 4-5 ms measured on the local stack, charged at 8: write_back_run.ts,
 * EDIT_CPU_MS). On the hosted estimating meter, which sees only measured steps, a queue
 * of thousands of keys would otherwise run to the wall budget alone and past the CPU
 * limit (cpu_meter.ts).
 */
export const REREAD_CPU_MS = 5;

/**
 * Re-reads queued keys until none waits or the request's budget (`deps.budget`) is
 * spent, checked before each key (a claimed key not reached is given back untried). A
 * key whose re-read fails keeps its cause in the queue and is tried again after a
 * backoff; a database that is unavailable ends the request (its keys' claims lapse).
 */
export async function rereadCollapsedKeys(deps: ValidatorDeps): Promise<RereadOutcome> {
  const spent = budgetCheck(
    { ...deps, budget: deps.budget && { ...deps.budget, pages: undefined } },
    performance.now(),
  );
  const outcome: RereadOutcome = { reread: 0, failed: 0 };
  const problems = new FirstLines(PROBLEM_LINES_PER_REQUEST, deps.log);
  try {
    await rereadUntilSpent(deps, spent, outcome, (line) => problems.line(line));
  } finally {
    if (problems.unlogged > 0) {
      deps.log?.(
        `re-reads: ${outcome.reread} keys re-read, ${outcome.failed} failed; ` +
          `${problems.unlogged} more problems not logged one by one ` +
          "(each failed key's cause is in sync.collapsed_rereads.error; an item left out " +
          "shows in its table's next validation as unmappable)",
      );
    }
  }
  return outcome;
}

/** Claims and re-reads keys until none waits or `spent()`, counting into `outcome`. */
async function rereadUntilSpent(
  deps: ValidatorDeps,
  spent: () => boolean,
  outcome: RereadOutcome,
  problem: (line: string) => void,
) {
  while (!spent()) {
    const claimed = await deps.sql<Claimed[]>`
      select target_table, row_key, queued_at::text as queued_at
      from sync.claim_rereads(${REREADS_PER_CLAIM})`;
    if (claimed.length === 0) break;
    for (const [i, key] of claimed.entries()) {
      // Both as text: postgres.js would make the time a Date, losing its microseconds.
      const rowKey = JSON.stringify(key.row_key);
      if (i > 0 && spent()) {
        await deps.sql`select sync.return_reread(${key.target_table}, ${rowKey}::text::jsonb,
                                                 ${key.queued_at}::text::timestamptz)`;
        continue;
      }
      const error = await rereadKey(deps, key, problem);
      deps.cpu?.charge(REREAD_CPU_MS);
      if (error !== null) {
        problem(`re-read of ${key.target_table} ${JSON.stringify(key.row_key)} failed: ${error}`);
      }
      await deps.sql`select sync.finish_reread(${key.target_table}, ${rowKey}::text::jsonb,
                                               ${key.queued_at}::text::timestamptz, ${error})`;
      outcome[error === null ? "reread" : "failed"]++;
    }
  }
}

/** Re-reads one key; null when done, else why not. Items left out go to `problem`. */
async function rereadKey(
  deps: ValidatorDeps,
  key: Claimed,
  problem: (line: string) => void,
): Promise<string | null> {
  const spec = byTargetTable(key.target_table);
  if (!spec?.collapse) return `${key.target_table} is not a collapsed target table`;
  try {
    const skipped = await repairKeys(
      deps,
      spec,
      [{ kind: "different", key: key.row_key }],
      key.queued_at,
      { removeUnread: false },
    );
    // The items that can be mapped are back; one that cannot is its own problem (its dead
    // letter, the validation's `unmappable`), not the key's: the re-read is done.
    for (const item of skipped) {
      problem(
        `re-read of ${key.target_table} ${JSON.stringify(key.row_key)}: item ${
          JSON.stringify(item.key)
        } cannot be mapped, so it was left out: ${item.reason}`,
      );
    }
    return null;
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw error;
    if (error instanceof PartitionTooLarge) {
      // Never read whole in a request: a backfill of the table brings the row back up to
      // date, and the key is done here rather than tried again for ever.
      const reason = `${key.target_table}: re-reading key ${
        JSON.stringify(key.row_key)
      }: ${error.message}`;
      const [{ job }] = await deps.sql<{ job: string }[]>`
        select sync.heal_table(${key.target_table}, ${reason}) as job`;
      deps.log?.(`${reason}: backfill job ${job}`);
      return null;
    }
    return (error as Error).message;
  }
}
