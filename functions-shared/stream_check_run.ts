/**
 * The `stream-check` Edge Function's run (docs/interfaces.md, "stream-check"): for each
 * registry table, read its stream and compare it with what the webhook applied
 * (functions-shared/stream_check.ts), record the run with `sync.record_stream_check`,
 * which marks the table stale on a problem (queuing the healing backfill), and answer
 * one line per table.
 *
 * Bounded by its budget (stream_check_budget.ts): once it is spent the run reads no
 * further page; the table it was reading is recorded with what it read (the shards it
 * did not reach keep their previous state and the time they were last read), and the
 * tables it did not start are named in `skipped`. Those and the unfinished one are
 * `left`, for the run's successor (stream_check_requests.ts) or the next hourly run. The
 * table whose shard was read longest ago goes first, and in it the shards read longest
 * ago, so that each gets its turn. Two reads of a shard more than 3 hours apart are a
 * problem (stream_verdict.ts), as is a table not checked for that long, found by its next
 * check, by its next failure to check, or by a run that skips it.
 *
 * @module
 */

import { MAX_PAGES_PER_SHARD } from "./stream_check.ts";
import { runBudget } from "./stream_check_budget.ts";
import {
  DELIVERY_LAG_LIMIT_MS,
  MAX_CHECK_INTERVAL_MS,
  STREAM_RETENTION_MS,
} from "./stream_timing.ts";
import type { TableSpec } from "./table_registry.ts";
import { recordUnchecked, releaseTableLease, takeTableLease } from "./stream_check_db.ts";
import { unpipelined } from "./unpipelined.ts";
import { isDatabaseUnavailable } from "./db_errors.ts";
import { checkTable, type StreamCheckDeps, type TableReport } from "./stream_check_table.ts";

/** What a run did. */
export interface StreamCheckReport {
  checked: TableReport[];
  /** Tables not started: the run's budget was spent. */
  skipped: string[];
  /** Tables with work left: the skipped ones and those with unfinished shards. */
  left: string[];
  /**
   * Tables another run was reading (its lease, sync.take_stream_check_lease): left to it,
   * neither read here nor handed on. Absent when none.
   */
  busy?: string[];
}

/**
 * Runs the check over `tables` within the budget; `since`, when the run continues a chain
 * begun then (stream_check_table.ts).
 */
export async function runStreamCheck(
  tables: readonly TableSpec[],
  deps: StreamCheckDeps,
  since?: string,
): Promise<StreamCheckReport> {
  const now = deps.now ?? Date.now;
  const log = deps.log ?? console.log;
  const budget = runBudget(deps.cpu, deps.budget, now);
  const checked: TableReport[] = [];
  const skipped: string[] = [];
  const busy: string[] = [];
  // This run's name for its tables' leases, held for as long as a run may last.
  const holder = `stream-check-${crypto.randomUUID()}`;
  const leaseSeconds = Math.ceil(deps.budget.wallMs / 1000) + 60;
  // The table whose shard was read longest ago first (never checked before any; one
  // without a shard to read by its last check): every run reads on the oldest read, so
  // no table is always left over, however its check was marked meanwhile.
  // (Unknown when the database cannot say: then the tables go in their order, each
  // reporting its own failure, and none is marked for going unchecked.)
  // No parameters, on the shared pool: nothing may be pipelined behind it (unpipelined.ts).
  const states = await unpipelined<
    {
      target_table: string;
      stream_arn: string | null;
      checked_at: Date;
      oldest_read: Date | null;
    }[]
  >(
    deps.sql,
    `select target_table, stream_arn, checked_at,
            (select min((s.value ->> 'readAt')::timestamptz) from jsonb_each(shards) as s
             where (s.value ->> 'done') is distinct from 'true') as oldest_read
     from sync.stream_checks`,
  )
    .catch((error) => {
      log(`stream-check: when each table was last checked could not be read: ${error}`);
      return undefined;
    });
  const lastChecked = states &&
    new Map(states.map((r) => [r.target_table, new Date(r.checked_at).getTime()]));
  // A table whose check never ran ('' : only its failures or skips were recorded) is
  // as one never checked.
  const turn = new Map(
    states?.map((r) => [
      r.target_table,
      r.stream_arn === "" ? -Infinity : new Date(r.oldest_read ?? r.checked_at).getTime(),
    ]),
  );
  const order = [...tables].sort((a, b) =>
    (turn.get(a.targetTable) ?? -Infinity) - (turn.get(b.targetTable) ?? -Infinity)
  );
  // Once a table has gone unchecked for longer than the check tolerates, records may
  // have been trimmed unseen: what kept it unchecked is recorded as the problem, which
  // marks the table stale (it counts as a check, so not every hour, and a backfill of the
  // last 21 h covers it). A table never checked is marked only on a failure: a run that
  // skips it hands it on. A failure to record that too is logged and left to the next run.
  const markIfLongUnchecked = async (
    table: string,
    message: string,
    at: number,
    markNeverChecked: boolean,
  ) => {
    const last = lastChecked?.get(table);
    const due = last === undefined ? markNeverChecked : at - last > MAX_CHECK_INTERVAL_MS;
    if (!lastChecked || !due) return undefined;
    try {
      return await recordUnchecked(deps.sql, table, message, last, at);
    } catch (again) {
      log(`stream-check: ${table}: recording that it went unchecked failed too: ${again}`);
    }
  };
  for (const spec of order) {
    if (!budget.tableMayStart()) {
      skipped.push(spec.targetTable);
      const job = await markIfLongUnchecked(
        spec.targetTable,
        `${spec.targetTable}: the lost-record check's runs spent their budget before it`,
        now(),
        false,
      );
      if (job !== undefined) {
        log(`stream-check: ${spec.targetTable}: unchecked too long (backfill ${job})`);
      }
      continue;
    }
    const timing = {
      now: now(),
      retentionMs: STREAM_RETENTION_MS,
      maxIntervalMs: MAX_CHECK_INTERVAL_MS,
      lagLimitMs: DELIVERY_LAG_LIMIT_MS,
    };
    let leased = false;
    try {
      // One run reads a table's stream at a time: with Lambda's mapping, a second would
      // make three readers of its shards, which AWS throttles (20261128004800).
      leased = await takeTableLease(deps.sql, spec.targetTable, holder, leaseSeconds);
      if (!leased) {
        busy.push(spec.targetTable);
        log(`stream-check: ${spec.targetTable}: another run is reading its stream; left to it`);
        continue;
      }
      const report = await checkTable(spec, deps, timing, budget, since);
      if (report.problem) {
        log(
          `stream-check: ${report.problem}` +
            (report.backfillJobId === undefined ? "" : ` (backfill ${report.backfillJobId})`),
        );
      }
      if (report.unfinishedShards) {
        log(
          `stream-check: ${spec.targetTable}: ${report.unfinishedShards} of ${report.shards} ` +
            `shards not read to their end (the run's budget spent, or a shard's ` +
            `${MAX_PAGES_PER_SHARD} pages read); a later run reads on`,
        );
      }
      checked.push(report);
    } catch (error) {
      // An AWS or database failure vouches for nothing: the next run tries again (and the
      // table is marked once it has gone unchecked too long, or was never checked).
      const message = `${spec.targetTable}: the lost-record check could not run: ${
        (error as Error).name
      }: ${(error as Error).message}`;
      log(`stream-check: ${message}`);
      const report: TableReport = {
        table: spec.targetTable,
        error: message,
        ...(isDatabaseUnavailable(error) ? { databaseUnavailable: true as const } : {}),
      };
      report.backfillJobId = await markIfLongUnchecked(spec.targetTable, message, timing.now, true);
      checked.push(report);
    } finally {
      if (leased) await releaseTableLease(deps.sql, spec.targetTable, holder);
    }
  }
  const unfinished = checked.filter((r) => r.unfinishedShards).map((r) => r.table);
  return {
    checked,
    skipped,
    left: [...unfinished, ...skipped],
    ...(busy.length > 0 ? { busy } : {}),
  };
}
