/**
 * What the lost-record check's findings (functions-shared/stream_check.ts) mean for a
 * table (docs/sync-semantics.md, "Lost stream records"). It reports a problem, and the
 * table is marked stale (which queues the healing backfill), when:
 * - **lost**: the frontier of the previous run is no longer held (trimmed, or its shard
 *   gone) and was never applied;
 * - **at risk**: the frontier is older than the retention less the longest allowed gap
 *   between runs, so it could be trimmed before the next run looks (a backfill queued now
 *   heals it, as a backfill reads every item as it is when its Scan runs);
 * - **unwatched**: the previous run is longer ago than that gap, so records may have been
 *   trimmed unseen (or the stream was replaced, or a shard could not be read far enough,
 *   or two reads of a shard, runs' budgets having left it unread, are more than that gap
 *   apart);
 * - **undelivered**: a record has waited past `DELIVERY_LAG_LIMIT_MS` (stream_timing.ts), seen by two
 *   runs, and no record of the stream was applied since it was made: nothing delivers it;
 * - **passed over**: the frontier is older than the mapping's maximum record age (and a
 *   margin, {@link PASSED_OVER_AFTER_MS}) and a record after it in its shard was applied:
 *   the mapping gave its batch up to its on-failure queue and will never deliver it. Found
 *   by the first hourly run past that age (1 h 20 min to 2 h 20 min after the record),
 *   not when it nears the at-risk line.
 * Together these leave no gap: a record trimmed before it was applied was, at the last
 * read of its shard before its trimming (at most `maxIntervalMs` earlier, or the gap is
 * the problem), the frontier or after it, and older than the at-risk line. Its first run on a table takes the stream as it finds it.
 *
 * @module
 */

import { iso, MAX_PAGES_PER_SHARD } from "./stream_check.ts";
import type { HeldRecord, ShardFinding, ShardState } from "./stream_shard.ts";
import {
  atRiskLine,
  type CheckTiming,
  MAPPING_MAX_RECORD_AGE_MS,
  PASSED_OVER_AFTER_MS,
} from "./stream_timing.ts";

/** The verdict of one run on one table. */
export interface TableVerdict {
  shards: Record<string, ShardState>;
  /** Why the table is stale, naming table, shards and sequence numbers; undefined: none. */
  problem?: string;
  /** A backfill queued at or after this moment heals what the problem is about. */
  coversUntil?: number;
}

/** What the previous run of a table left. */
export interface PreviousCheck {
  /** null: the table had no stream; "": the check failed before it learned the stream. */
  streamArn: string | null;
  checkedAt: number;
  shards: Record<string, ShardState>;
}

/** A record the undelivered rule asks the webhook's notes about. */
export interface WaitingRecord {
  shardId: string;
  seq: string;
  createdAt: number;
  /** Records wait after it: in its shard (its page held more), or in another shard. */
  more: boolean;
  /**
   * Since when to ask whether anything of the stream was applied: the last run's time, when
   * it already saw the record waiting (or the record's own, if later), and at least
   * {@link MAPPING_MAX_RECORD_AGE_MS} ago. A batch committed just after the record was made
   * must not count for ever.
   */
  askSince: number;
}

/**
 * The oldest record of the stream that has waited past the lag line and that the last
 * run found waiting too (a shard's frontier, unmoved), in a shard whose read saw nothing
 * applied, or undefined: what the undelivered rule asks the webhook's notes about.
 */
export function waitingRecord(
  streamArn: string,
  findings: ShardFinding[],
  previous: PreviousCheck | undefined,
  timing: CheckTiming,
): WaitingRecord | undefined {
  if (previous?.streamArn !== streamArn) return undefined;
  const lagLine = timing.now - timing.lagLimitMs;
  const waiting = findings
    .filter((f) => !f.sawApplied && !f.unread)
    .flatMap((f) => {
      const frontier = f.state.frontier;
      if (!frontier || previous.shards[f.shardId]?.frontier?.seq !== frontier.seq) return [];
      const createdAt = Date.parse(frontier.created_at);
      if (createdAt >= lagLine) return [];
      const askSince = Math.min(
        Math.max(createdAt, previous.checkedAt),
        timing.now - MAPPING_MAX_RECORD_AGE_MS,
      );
      return [{
        shardId: f.shardId,
        seq: frontier.seq,
        createdAt,
        askSince,
        more: !!f.moreAfterFrontier,
      }];
    })
    .sort((a, b) => a.createdAt - b.createdAt);
  // Other shards' records waiting too are more than the oldest alone.
  return waiting[0] && { ...waiting[0], more: waiting[0].more || waiting.length > 1 };
}

/**
 * Judges one table from its shards' findings (docs/sync-semantics.md, "Lost stream
 * records"). `gone` are shards of the previous run that the stream no longer lists, with
 * whether their frontier was applied since.
 * `waiting`: the stream's {@link waitingRecord}, if any, with whether the webhook applied
 * any record of the stream since its `askSince` (the caller asks the database only then).
 */
export function judgeTable(
  table: string,
  streamArn: string,
  findings: ShardFinding[],
  gone: { shardId: string; frontier: HeldRecord; applied: boolean }[],
  previous: PreviousCheck | undefined,
  timing: CheckTiming,
  waiting?: { record: WaitingRecord; appliedSince: boolean },
): TableVerdict {
  const { now, retentionMs, maxIntervalMs, lagLimitMs } = timing;
  const atRiskBefore = atRiskLine(now, retentionMs, maxIntervalMs);
  const lagLine = now - lagLimitMs;
  const problems: string[] = [];
  let coversUntil = -Infinity;
  const cover = (at: number) => coversUntil = Math.max(coversUntil, at);
  // Shards whose frontier this run reports passed over: the next run reads on past it.
  const givenUp = new Set<string>();

  if (previous && previous.streamArn && previous.streamArn !== streamArn) {
    problems.push(
      `the stream was replaced since the last check (${previous.streamArn} → ${streamArn}): ` +
        `records of the old stream may never have been applied`,
    );
    cover(now);
  }
  if (previous && previous.streamArn === null) {
    // The last check found no stream (it marked the table, and the backfill it queued
    // read the table then); changes made after that and before this stream began were
    // captured by no stream at all.
    problems.push(
      `the table had no stream at the last check (${iso(previous.checkedAt)}); changes ` +
        `made before ${streamArn} began were captured by no stream`,
    );
    cover(now);
  }
  if (previous && now - previous.checkedAt > maxIntervalMs) {
    problems.push(
      `the previous check ran at ${iso(previous.checkedAt)}, more than ${
        maxIntervalMs / 3600_000
      } h ago: records the stream trimmed meanwhile cannot be vouched for`,
    );
    cover(now);
  }
  for (const f of findings) {
    if (f.lost) {
      problems.push(
        `shard ${f.shardId}: record ${f.lost.seq} (created ${iso(f.lost.createdAt)}) was ` +
          `trimmed from the stream before the webhook applied it` +
          (f.oldestHeld ? `; the shard now starts at ${f.oldestHeld}` : ""),
      );
      cover(f.lost.createdAt);
    }
    const frontier = f.state.frontier;
    if (frontier && Date.parse(frontier.created_at) < atRiskBefore) {
      problems.push(
        `shard ${f.shardId}: record ${frontier.seq} (created ${frontier.created_at}) is not ` +
          `applied yet and may be trimmed before the next check (the stream keeps records ` +
          `${retentionMs / 3600_000} h)`,
      );
      cover(atRiskBefore);
    } else if (
      frontier && f.appliedAfterFrontier &&
      Date.parse(frontier.created_at) < now - PASSED_OVER_AFTER_MS
    ) {
      // The mapping went on past it, and no retry of its batch is left: given up, to its
      // on-failure queue (the dead-letter alarm; `npm run stream:replay` delivers it while
      // the stream holds it). A backfill since the record heals the table now. (Past the
      // at-risk line the rule above takes it: records given up behind it, which never
      // become the frontier, need a backfill since that line.)
      problems.push(
        `shard ${f.shardId}: record ${frontier.seq} (created ${frontier.created_at}) was ` +
          `passed over: records after it were applied, and it is older than the mapping's ` +
          `maximum record age (${MAPPING_MAX_RECORD_AGE_MS / 3600_000} h), so the mapping ` +
          `gave its batch up to its on-failure queue`,
      );
      cover(Date.parse(frontier.created_at));
      // Reported once: the backfill it asks for heals the table from the record's time on
      // (or the table stays stale, naming it, until one does). Read past from now, as
      // applied: the frontier stuck on it hid a record given up after it until the first
      // was trimmed, up to a day later (found by a review).
      givenUp.add(f.shardId);
    }
    // Reads of a shard more than the allowed gap apart (runs' budgets spent before it):
    // records may have been trimmed between them unseen, even if this read finds the
    // rest applied. (A closed shard read whole before has no `readBefore`.)
    const readBefore = f.readBefore ? Date.parse(f.readBefore) : now;
    if (now - readBefore > maxIntervalMs) {
      problems.push(
        `shard ${f.shardId}: ${
          f.unread ? "not read" : "read"
        } at this check, last read at ${f.readBefore}, more than ${
          maxIntervalMs / 3600_000
        } h ago: records the stream trimmed ` +
          `meanwhile cannot be vouched for`,
      );
      // What was trimmed between was older than atRiskBefore, as is what may be trimmed
      // before the next run: a backfill since then heals both (not one queued by every run
      // while the shard waits).
      cover(atRiskBefore);
    }
    // (A read that stopped before any record, among a closed shard's empty pages, left
    // records newer than its `through` record's: stream_check.ts counts from that one's.)
    if (f.incomplete && f.incomplete.lastCreatedAt < atRiskBefore) {
      const why = f.incomplete.cause === "budget"
        ? "the run's budget was spent"
        : `${MAX_PAGES_PER_SHARD} pages`;
      problems.push(
        `shard ${f.shardId}: could not be read as far as its first unapplied record in one ` +
          `run (${why}; stopped after ${f.state.through ?? "nothing"})`,
      );
      // What this run could not read and may be trimmed before the next is older than
      // atRiskBefore: a backfill since then heals it (not one queued now, every hour,
      // while the check catches up with a busy shard).
      cover(atRiskBefore);
    }
  }
  // A stream nothing delivers: a record has waited past the lag line, the last run found it
  // waiting too, and no record of the stream has been applied since that run (the
  // webhook's notes, `waiting.appliedSince`). A mapping that delivers would have applied later
  // records within its maximum record age, the waiting one given up to its on-failure
  // queue; so the mapping is missing, disabled or failing on every batch, and its
  // iterator-age alarm, fed by a mapping that polls, sees nothing of it. A mapping is made
  // for one stream ARN and never follows a new one ("to change the stream itself, you
  // must create a new mapping": the API reference of UpdateEventSourceMapping,
  // https://docs.aws.amazon.com/lambda/latest/dg/API_UpdateEventSourceMapping.html, as it
  // read; Terraform replaces a mapping whose `event_source_arn` changes), so a replaced
  // stream waits for `terraform apply`. With records waiting after it, a backfill since
  // the lag line heals what waited until then: while nothing delivers the stream, one
  // whenever the last is more than 2 h old. With none after it (a quiet table, or a record
  // the mapping gave up to its on-failure queue), one backfill since the record heals it.
  if (waiting && !waiting.appliedSince) {
    const { record } = waiting;
    problems.push(
      `record ${record.seq} of shard ${record.shardId} (created ${iso(record.createdAt)}) ` +
        `was waiting at the last check too, and no record of the stream has been applied ` +
        `since: nothing delivers this stream (is the Lambda's event source mapping made ` +
        `for it, and enabled? A mapping never follows a new stream: after a stream is ` +
        `replaced, terraform apply makes one for it. On a quiet table, the mapping may have ` +
        `given that record up to its on-failure queue: see the dead-letter alarm)`,
    );
    cover(record.more ? lagLine : record.createdAt);
  }
  for (const g of gone) {
    if (g.applied) continue;
    problems.push(
      `shard ${g.shardId}: gone from the stream with record ${g.frontier.seq} (created ${
        iso(g.frontier.createdAt)
      }) never applied`,
    );
    cover(g.frontier.createdAt);
  }
  const stateOf = (f: ShardFinding): ShardState =>
    givenUp.has(f.shardId) ? { ...f.state, givenUp: true } : f.state;
  const shards = Object.fromEntries(findings.map((f) => [f.shardId, stateOf(f)]));
  if (problems.length === 0) return { shards };
  return {
    shards,
    problem: `${table}: lost-record check of ${streamArn}: ${problems.join("; ")}`,
    coversUntil,
  };
}
