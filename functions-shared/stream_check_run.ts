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

import type postgres from "postgres";
import type { CpuMeter } from "./cpu_meter.ts";
import {
  checkShard,
  iso,
  MAX_PAGES_PER_SHARD,
  type ShardFinding,
  type StreamReader,
} from "./stream_check.ts";
import { type RunBudget, runBudget, type RunLimits } from "./stream_check_budget.ts";
import {
  type CheckTiming,
  DELIVERY_LAG_LIMIT_MS,
  judgeTable,
  MAX_CHECK_INTERVAL_MS,
  PASSED_OVER_AFTER_MS,
  STREAM_RETENTION_MS,
  waitingRecord,
} from "./stream_verdict.ts";
import type { TableSpec } from "./table_registry.ts";
import { isRetryable } from "./dynamo_errors.ts";
import {
  appliedLookup,
  previousCheck,
  recordUnchecked,
  releaseTableLease,
  streamAppliedSince,
  takeTableLease,
} from "./stream_check_db.ts";
import { unpipelined } from "./unpipelined.ts";
import { isDatabaseUnavailable } from "./db_errors.ts";

/** What the check needs; built once, at cold start. */
export interface StreamCheckDeps {
  sql: postgres.Sql;
  /** The table's current stream ARN (DescribeTable), undefined when its stream is off. */
  streamArnOf(spec: TableSpec): Promise<string | undefined>;
  /** A reader of a stream of the table's region. */
  readerOf(spec: TableSpec, streamArn: string): StreamReader;
  cpu: CpuMeter;
  /** What one run may use: CPU from its start, by `cpu`, and wall time. */
  budget: RunLimits;
  now?: () => number;
  log?: (line: string) => void;
}

/** One table's line of the answer. */
export interface TableReport {
  table: string;
  streamArn?: string;
  shards?: number;
  problem?: string;
  backfillJobId?: number;
  error?: string;
  /** Shards the run stopped short of their frontier or end, or did not reach. */
  unfinishedShards?: number;
  /** The check failed because the database was unavailable (db_errors.ts). */
  databaseUnavailable?: true;
}

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
 * Checks one table and records the run; returns its line. `since`: when the chain of runs
 * this one belongs to began (stream_check_requests.ts); a shard a run of it read whole is
 * not read again.
 */
export async function checkTable(
  spec: TableSpec,
  deps: StreamCheckDeps,
  timing: CheckTiming,
  budget?: RunBudget,
  since?: string,
): Promise<TableReport> {
  const { sql } = deps;
  budget?.table();
  const table = spec.targetTable;
  const previous = await previousCheck(sql, table);
  const streamArn = await deps.streamArnOf(spec);
  let verdict;
  let unfinished = 0;
  if (!streamArn) {
    verdict = {
      shards: {},
      problem: `${table}: lost-record check: ${spec.sourceTable} has no stream enabled, so ` +
        `its changes are not captured`,
      coversUntil: timing.now,
    };
  } else {
    const reader = deps.readerOf(spec, streamArn);
    const applied = appliedLookup(sql, streamArn);
    const sameStream = previous?.streamArn === streamArn;
    const before = sameStream ? previous!.shards : {};
    const listed = await reader.shards();
    // When a run last read each shard (stream_check.ts, `readBefore`): its state's time,
    // or the last run's for a shard new since or a state from before `readAt` was kept.
    // None for a closed shard read whole before (it has nothing more to lose).
    const readBefore = (id: string) =>
      before[id]?.done ? undefined : before[id]?.readAt ??
        (sameStream ? iso(previous!.checkedAt) : undefined);
    // Read longest ago first (at a first look, in their order): a shard a budget leaves
    // over is not always last.
    const readAt = (id: string) => readBefore(id) ?? "";
    const findings: ShardFinding[] = [];
    const byReadAt = [...listed].sort((a, b) =>
      readAt(a.id) < readAt(b.id) ? -1 : readAt(a.id) > readAt(b.id) ? 1 : 0
    );
    // Once a read of this table's stream kept being throttled, its other shards are left
    // too: each would spend the client's retries and backoff on the same throttle (40
    // shards, 400 s: past the isolate's wall clock, nothing recorded), and the run goes on
    // to the other tables.
    let throttled = false;
    for (const shard of byReadAt) {
      const earlier = before[shard.id];
      // Read whole by a run of this chain, with nothing waiting in it: reading it again
      // seconds later tells nothing new, and a stream of more shards than one run reads
      // would keep the chain going to its last link, every hour. (A shard with a frontier
      // is read again: the verdict weighs what its read saw after the frontier.)
      if (
        since && earlier?.readAt && earlier.readAt >= since && !earlier.stoppedShort &&
        !earlier.pending && !earlier.frontier
      ) {
        findings.push({ shardId: shard.id, state: earlier, readBefore: earlier.readAt });
        continue;
      }
      const leftUnread = (): ShardFinding => ({
        shardId: shard.id,
        state: earlier ?? {},
        unread: true,
        throttled: true,
      });
      let finding: ShardFinding;
      if (throttled) {
        finding = leftUnread();
      } else {
        try {
          finding = await checkShard(shard.id, earlier, reader, applied, {
            closed: shard.closed,
            endingSeq: shard.endingSeq,
            budget,
            passedOverBefore: timing.now - PASSED_OVER_AFTER_MS,
          });
        } catch (error) {
          // Throttled (more readers of the shard than the two AWS allows at once: Lambda's
          // mapping and a run of this check beside another), or a 5xx, past the client's
          // retries: the shard is left unread, as a spent budget leaves it, and the others
          // read are recorded, not thrown away with it. A shard left unread too long is a
          // problem all the same (stream_verdict.ts).
          if (!isRetryable((error as Error).cause)) throw error;
          (deps.log ?? console.log)(
            `stream-check: ${table}: ${(error as Error).message}; this shard and the ` +
              "table's others not read yet are left for the next hourly run",
          );
          throttled = true;
          finding = leftUnread();
        }
      }
      // A shard left unread keeps its time; one never read, the last run's (it was not
      // listed then, or that run would have kept it) or, at a first look, this one's.
      finding.readBefore = readBefore(shard.id);
      finding.state.readAt = finding.unread
        ? finding.readBefore ?? iso(timing.now)
        : iso(timing.now);
      // What a chain reads on: a shard left unread, and a read stopped short that got
      // further (one that got no further, a closed shard of more empty pages than the page
      // cap, is not handed on: a successor would get no further either).
      if (finding.throttled) {
        // Not handed on: the next run within the hour would meet the same throttle.
      } else if (finding.unread) {
        finding.state = { ...finding.state, pending: true };
      } else {
        const further = finding.incomplete && finding.state.through !== earlier?.through;
        if (further) finding.state.stoppedShort = true;
        else delete finding.state.stoppedShort;
        delete finding.state.pending;
      }
      findings.push(finding);
    }
    unfinished = findings.filter((f) =>
      (f.unread && !f.throttled) || f.state.stoppedShort === true
    ).length;
    const gone = [];
    for (const [shardId, state] of Object.entries(before)) {
      if (
        listed.some((shard) => shard.id === shardId) || !state.frontier
      ) continue;
      const frontier = {
        seq: state.frontier.seq,
        createdAt: Date.parse(state.frontier.created_at),
      };
      gone.push({ shardId, frontier, applied: (await applied([frontier.seq])).size > 0 });
    }
    // Asked only when a record has waited past the lag line (stream_verdict.ts).
    const record = waitingRecord(streamArn, findings, previous, timing);
    const waiting = record && {
      record,
      appliedSince: await streamAppliedSince(sql, streamArn, record.askSince),
    };
    verdict = judgeTable(table, streamArn, findings, gone, previous, timing, waiting);
  }
  const [row] = await sql`select sync.record_stream_check(
      ${table}, ${streamArn ?? null}, ${JSON.stringify(verdict.shards)}::text::jsonb,
      ${verdict.problem ?? null},
      ${verdict.coversUntil === undefined ? null : new Date(verdict.coversUntil)}) as job`;
  const report: TableReport = {
    table,
    streamArn,
    shards: Object.keys(verdict.shards).length,
  };
  if (verdict.problem) report.problem = verdict.problem;
  if (row.job !== null) report.backfillJobId = Number(row.job);
  if (unfinished > 0) report.unfinishedShards = unfinished;
  return report;
}

/**
 * Runs the check over `tables` within the budget; `since`, when the run continues a chain
 * begun then ({@link checkTable}).
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
