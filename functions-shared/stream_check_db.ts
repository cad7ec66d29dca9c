/**
 * What `stream-check` reads of the database (functions-shared/stream_check_run.ts): the
 * previous run of a table, which of a stream's records the webhook applied, and whether
 * it applied any since a moment (`sync.stream_checks`, `sync.stream_batches_applied`);
 * and the record of a table that went unchecked.
 *
 * @module
 */

import type postgres from "postgres";
import type { AppliedLookup, ShardState } from "./stream_shard.ts";
import type { PreviousCheck } from "./stream_verdict.ts";
import { atRiskLine, MAX_CHECK_INTERVAL_MS, STREAM_RETENTION_MS } from "./stream_timing.ts";

/** What the previous run of `table` left, if it ran. */
export async function previousCheck(
  sql: postgres.Sql,
  table: string,
): Promise<PreviousCheck | undefined> {
  const [row] = await sql`select stream_arn, checked_at, shards from sync.stream_checks
                          where target_table = ${table}`;
  if (!row) return undefined;
  return {
    streamArn: row.stream_arn,
    checkedAt: new Date(row.checked_at).getTime(),
    shards: row.shards as Record<string, ShardState>,
  };
}

/** Which of a batch of sequence numbers of `streamArn` the webhook applied. */
export function appliedLookup(sql: postgres.Sql, streamArn: string): AppliedLookup {
  return async (seqs) => {
    if (seqs.length === 0) return new Set();
    const [row] = await sql`select sync.stream_records_applied_of(${streamArn}, ${seqs}) as s`;
    return new Set(row.s as string[]);
  };
}

/**
 * Whether the webhook applied any record of the stream since `sinceMs` (its notes,
 * `sync.stream_batches_applied`): the index on `applied_at` reads the notes of every
 * stream since then, about an hour's (the last check's time), each checked for the
 * stream. Asked only for a record that waits (stream_verdict.ts, `waitingRecord`).
 */
export async function streamAppliedSince(
  sql: postgres.Sql,
  streamArn: string,
  sinceMs: number,
): Promise<boolean> {
  const since = new Date(sinceMs);
  const [row] = await sql`
    select exists (select from sync.stream_batches_applied
                   where applied_at >= ${since} and stream_arn = ${streamArn}) as applied`;
  return row.applied === true;
}

/**
 * Records a check that could not run as a problem: the table's stream positions kept as
 * they were, so that the next check that runs goes on from them. Returns the backfill it
 * queued, if any.
 */
export async function recordUnchecked(
  sql: postgres.Sql,
  table: string,
  message: string,
  last: number | undefined,
  now: number,
): Promise<number | undefined> {
  const since = last === undefined
    ? "never checked"
    : `unchecked since ${new Date(last).toISOString()}`;
  // What may be trimmed before the next check is what is older than the at-risk line: a
  // backfill since then heals it (so a check that keeps failing costs a backfill about
  // once a day, not one each time it is found unchecked). A table never checked keeps
  // an unknown stream (''), not null, which would read as "no stream" to the next check;
  // one last found with no stream (null) keeps that, or the next check would take a
  // stream enabled meanwhile as its first look, and not vouch for what came before it.
  const atRiskBefore = atRiskLine(now, STREAM_RETENTION_MS, MAX_CHECK_INTERVAL_MS);
  const [row] = await sql`
    select sync.record_stream_check(${table},
             case when s.target_table is null then '' else s.stream_arn end,
             coalesce(s.shards, '{}'::jsonb),
             ${`${message} (${since}: records the stream trimmed meanwhile cannot be vouched for)`},
             ${new Date(atRiskBefore)}) as job
    from (select) as one
    left join sync.stream_checks s on s.target_table = ${table}`;
  return row.job === null ? undefined : Number(row.job);
}

/**
 * Takes `table`'s lease for the run `holder` for `seconds` (sync.take_stream_check_lease):
 * false when another run is reading the table.
 */
export async function takeTableLease(
  sql: postgres.Sql,
  table: string,
  holder: string,
  seconds: number,
): Promise<boolean> {
  const [row] = await sql<{ taken: boolean }[]>`
    select sync.take_stream_check_lease(${table}, ${holder}, ${seconds}) as taken`;
  return row?.taken === true;
}

/** Gives `table`'s lease back (sync.release_stream_check_lease); a failure is left to expire. */
export async function releaseTableLease(
  sql: postgres.Sql,
  table: string,
  holder: string,
): Promise<void> {
  await sql`select sync.release_stream_check_lease(${table}, ${holder})`.catch(() => {});
}
