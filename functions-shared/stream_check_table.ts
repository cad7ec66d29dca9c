/**
 * One table's turn in a `stream-check` run (stream_check_run.ts): read the shards of its
 * stream that are due, the one read longest ago first, compare what they hold with what
 * the webhook applied (stream_check.ts), judge the table (stream_verdict.ts) and record
 * the check with `sync.record_stream_check`, which marks the table stale on a problem
 * (queuing the healing backfill).
 *
 * A shard read whole by an earlier run of the same chain, with nothing waiting in it, is
 * not read again. Once a read of the table's stream stays throttled past the client's
 * retries, its other shards are left unread for the next hourly run.
 *
 * @module
 */

import type postgres from "postgres";
import type { CpuMeter } from "./cpu_meter.ts";
import { checkShard, iso } from "./stream_check.ts";
import type { ShardFinding, StreamReader } from "./stream_shard.ts";
import type { RunBudget, RunLimits } from "./stream_check_budget.ts";
import { judgeTable, waitingRecord } from "./stream_verdict.ts";
import { type CheckTiming, PASSED_OVER_AFTER_MS } from "./stream_timing.ts";
import type { TableSpec } from "./table_registry.ts";
import { isRetryable } from "./dynamo_errors.ts";
import { appliedLookup, previousCheck, streamAppliedSince } from "./stream_check_db.ts";

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
            now: timing.now,
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
      // further: past records (its `through` moved) or among a closed shard's empty pages
      // (it kept where it stopped, which a successor reads on from). One that got no
      // further is not handed on: a successor would get no further either.
      if (finding.throttled) {
        // Not handed on: the next run within the hour would meet the same throttle.
      } else if (finding.unread) {
        finding.state = { ...finding.state, pending: true };
      } else {
        const further = finding.incomplete &&
          (finding.state.through !== earlier?.through || finding.state.resume !== undefined);
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
      // (A frontier reported given up before is not reported again as it goes.)
      if (
        listed.some((shard) => shard.id === shardId) || !state.frontier || state.givenUp
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
