/**
 * The lost-record check's reading of a stream (docs/sync-semantics.md, "Lost stream
 * records"): does a table's DynamoDB stream still hold every record the webhook has not
 * applied yet?
 *
 * DynamoDB Streams keeps a record 24 hours; older records are "subject to removal
 * (trimming)" at any moment
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html,
 * TrimmedDataAccessException). Lambda's event source mapping reads each shard in order; when
 * it is disabled or failing for longer than that, the records it had not delivered are
 * trimmed and never reach the webhook. The webhook notes every record it commits
 * (functions-shared/stream_progress.ts); this check reads each shard (GetShardIterator,
 * GetRecords) and finds its **frontier**, the first record not noted. Everything before
 * it was applied (a shard is delivered in order), everything from it on is still to come.
 * What the findings mean for the table is functions-shared/stream_verdict.ts.
 *
 * Reads are incremental: per shard, the run keeps how far it has seen every record
 * applied (`through`) and the frontier, and the next run reads on from there.
 *
 * @module
 */

import { compareDecimal } from "./dynamo_numbers.ts";
import {
  type AppliedLookup,
  type ReadBudget,
  RESUME_WITHIN_MS,
  type ShardFinding,
  type ShardState,
  type StreamReader,
} from "./stream_shard.ts";

/**
 * Pages read per shard per run at most (1,000 records each), besides the look past an
 * old frontier ({@link PAGES_PAST_AN_OLD_FRONTIER}).
 */
export const MAX_PAGES_PER_SHARD = 50;
/** Empty pages in a row taken as the end of an open shard (AWS may return a few). */
const EMPTY_PAGES_AT_END = 3;
/**
 * The same, read from a shard's oldest record before any record came: "If there are no
 * stream records available in the portion of the shard that the iterator points to,
 * GetRecords returns an empty list. Note that it might take multiple calls to get to a
 * portion of the shard that contains stream records"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html).
 * Its first records lie behind what the stream trimmed, and a run that stopped short
 * would start there again the next hour, and the next, never reaching them. An idle
 * shard costs these reads once an hour.
 */
const EMPTY_PAGES_BEFORE_RECORDS = 10;

/** A time as ISO 8601 text, as the check stores and names it. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** How {@link checkShard} reads. */
export interface ShardReadOptions {
  /** Pages read at most: {@link MAX_PAGES_PER_SHARD}. */
  maxPages?: number;
  /** The shard has an ending sequence number (DescribeStream). */
  closed?: boolean;
  /** Its ending sequence number, when closed: a shard applied through it is done. */
  endingSeq?: string;
  budget?: ReadBudget;
  /**
   * A frontier made before this (epoch ms) is old enough for the mapping to have given it
   * up (stream_verdict.ts, "passed over"): the read looks up to
   * {@link PAGES_PAST_AN_OLD_FRONTIER} pages past it for a record applied after it.
   */
  passedOverBefore?: number;
  /** The run's time (epoch ms), for the iterator a read keeps ({@link ShardState.resume}). */
  now?: number;
}

/**
 * Pages read past a frontier old enough to have been given up, looking for a record
 * applied after it: a run of records the mapping discarded together (an outage longer
 * than its maximum record age) fills pages of its own.
 */
export const PAGES_PAST_AN_OLD_FRONTIER = 10;

/**
 * Reads one shard from where the previous run left it; finds its frontier. A `closed`
 * shard is read until GetRecords gives no next iterator (or the page cap), however many
 * empty pages come first; an open one until a few empty pages in a row.
 *
 * A spent budget leaves the shard `unread` when it is spent before the shard's first
 * read, and stops the read before its next page once a record was seen (`incomplete`):
 * before that, empty pages are few and bounded, and a read stopped among them would have
 * nothing to keep for the next run.
 */
export async function checkShard(
  shardId: string,
  previous: ShardState | undefined,
  reader: StreamReader,
  applied: AppliedLookup,
  options: ShardReadOptions = {},
): Promise<ShardFinding> {
  try {
    return await readShard(shardId, previous, reader, applied, options);
  } catch (error) {
    // Named by its shard (GetRecords' own errors name no stream and no shard); AWS's
    // name and the database's code kept, for what the caller tells apart.
    const e = error as Error & { code?: string };
    throw Object.assign(new Error(`shard ${shardId}: ${e.message}`, { cause: error }), {
      name: e.name,
      code: e.code,
    });
  }
}

async function readShard(
  shardId: string,
  previous: ShardState | undefined,
  reader: StreamReader,
  applied: AppliedLookup,
  options: ShardReadOptions,
): Promise<ShardFinding> {
  const { maxPages = MAX_PAGES_PER_SHARD, closed = false, budget } = options;
  if (previous?.done) return { shardId, state: previous };
  // Applied through its last record: nothing is left to read, however many empty pages
  // the read would meet first (a run's read stopped among them would never get further,
  // and the shard read as unread run after run). Numbers, not text: they differ in length.
  if (
    closed && options.endingSeq && previous?.through && !previous.frontier &&
    atOrPast(previous.through, options.endingSeq)
  ) {
    return { shardId, state: { ...previous, done: true } };
  }
  if (budget?.spent()) return { shardId, state: previous ?? {}, unread: true };
  budget?.shard();
  const finding: ShardFinding = {
    shardId,
    state: {
      through: previous?.through,
      ...(previous?.throughAt ? { throughAt: previous.throughAt } : {}),
    },
  };
  let iterator: string | "trimmed" | undefined;
  // Whether the read goes on from the last read's kept iterator (its first page may find
  // it expired: the read starts again from `through`).
  let resumed = false;
  // A frontier reported given up is passed as an applied record is: what comes after it
  // is watched as closely (stream_verdict.ts, "passed over").
  const frontier = previous?.givenUp ? undefined : previous?.frontier;
  if (previous?.givenUp && previous.frontier) {
    finding.state.through = previous.frontier.seq;
    finding.state.throughAt = previous.frontier.created_at;
    iterator = await reader.iterator(shardId, { after: previous.frontier.seq });
  } else if (frontier) {
    iterator = await reader.iterator(shardId, { at: frontier.seq });
    if (iterator === "trimmed" && !(await applied([frontier.seq])).has(frontier.seq)) {
      finding.lost = { seq: frontier.seq, createdAt: Date.parse(frontier.created_at) };
    }
  } else if (resumable(previous, closed, options.now)) {
    // Where the last read stopped among empty pages: past them, not before them again.
    iterator = previous!.resume!.iterator;
    resumed = true;
  } else if (previous?.through) {
    iterator = await reader.iterator(shardId, { after: previous.through });
  }
  let fromOldest = false;
  // `given`, or the shard's oldest record when there is none or it is trimmed.
  const orOldest = async (given: string | "trimmed" | undefined) => {
    if (given !== undefined && given !== "trimmed") return given;
    fromOldest = true;
    return await reader.iterator(shardId, "oldest");
  };
  iterator = await orOldest(iterator);
  // Whether the next read is the first at the frontier, and whether a read was trimmed
  // under it already (once is the 24 hours passing between the iterator and its read;
  // twice in a row is not, and fails the shard's check as any read error does).
  let atFrontier = frontier !== undefined && !fromOldest;
  let trimmedOnce = false;
  let empty = 0;
  // The last page read was empty (an open shard counts them in `empty`).
  let amongEmpty = false;
  // When the last record read was created: before any this read, the `through` record's
  // (every record after it is newer), or, not known (a state written before it was kept),
  // none, the oldest time there is.
  let lastSeenAt = finding.state.throughAt ? Date.parse(finding.state.throughAt) : 0;
  let seen = false;
  for (let page = 0; iterator !== undefined && iterator !== "trimmed"; page++) {
    if (page >= maxPages || (seen && budget?.spent())) {
      finding.incomplete = {
        lastCreatedAt: lastSeenAt,
        cause: page >= maxPages ? "pages" : "budget",
      };
      // Among a closed shard's empty pages: the next run goes on from here.
      if (closed && amongEmpty && options.now !== undefined) {
        finding.state.resume = { iterator, at: iso(options.now) };
      }
      return finding;
    }
    let answer;
    try {
      answer = await reader.read(iterator);
    } catch (error) {
      if (!resumed || (error as Error).name !== "ExpiredIteratorException") throw error;
      // Kept too long after all (a slow run): from the last record applied, as before,
      // this page not counted.
      resumed = false;
      budget?.shard();
      iterator = await orOldest(
        previous?.through ? await reader.iterator(shardId, { after: previous.through }) : undefined,
      );
      page--;
      continue;
    }
    resumed = false;
    if (answer === "trimmed") {
      if (trimmedOnce) {
        throw Object.assign(new Error("GetRecords: trimmed twice in a row"), {
          name: "TrimmedDataAccessException",
        });
      }
      trimmedOnce = true;
      // Trimmed at the frontier: gone unapplied, as when its iterator was refused (above).
      if (atFrontier && frontier && !(await applied([frontier.seq])).has(frontier.seq)) {
        finding.lost = { seq: frontier.seq, createdAt: Date.parse(frontier.created_at) };
      }
      atFrontier = false;
      iterator = await reader.iterator(shardId, "oldest");
      fromOldest = true;
      continue;
    }
    atFrontier = false;
    // A page read: a later trim is a new one (the iterator's 24 hours passing again on an
    // old shard read near its trim point), not a second in a row.
    trimmedOnce = false;
    const { records, next, bytes = 0 } = answer;
    budget?.page(records.length, bytes);
    if (fromOldest && !seen && records[0]) finding.oldestHeld = records[0].seq;
    amongEmpty = records.length === 0;
    if (records.length === 0) {
      if (!next) finding.state.done = true;
      const enough = fromOldest && !seen ? EMPTY_PAGES_BEFORE_RECORDS : EMPTY_PAGES_AT_END;
      if (!next || (!closed && ++empty >= enough)) return finding;
      iterator = next;
      continue;
    }
    seen = true;
    empty = 0;
    const done = await applied(records.map((r) => r.seq));
    if (done.size > 0) finding.sawApplied = true;
    for (const [index, record] of records.entries()) {
      lastSeenAt = record.createdAt;
      if (!done.has(record.seq)) {
        finding.state.frontier = { seq: record.seq, created_at: iso(record.createdAt) };
        finding.moreAfterFrontier = record !== records[records.length - 1];
        if (records.slice(index + 1).some((r) => done.has(r.seq))) {
          finding.appliedAfterFrontier = true;
        }
        // Last on its page: the next page says whether more waits behind it (and whether
        // the mapping went on past it), rather than a page boundary. Old enough to have been
        // given up, and nothing applied after it on its page: a few pages more say whether
        // the mapping went on past a run of records it discarded.
        const old = options.passedOverBefore !== undefined &&
          record.createdAt < options.passedOverBefore && !finding.appliedAfterFrontier;
        if ((!finding.moreAfterFrontier || old) && next && !budget?.spent()) {
          const pages = old ? PAGES_PAST_AN_OLD_FRONTIER : 1;
          await lookPastFrontier(finding, reader, next, applied, budget, pages);
        }
        return finding;
      }
      finding.state.through = record.seq;
      finding.state.throughAt = iso(record.createdAt);
    }
    if (!next) finding.state.done = true;
    iterator = next;
  }
  return finding;
}

/**
 * Reads up to `pages` pages past a frontier, until one holds a record applied: records
 * there wait behind it (`moreAfterFrontier`), and one of them applied means the mapping
 * went on past it (`appliedAfterFrontier`; `sawApplied` too when on the first page). An
 * empty or trimmed page, or a spent budget, ends the look.
 */
async function lookPastFrontier(
  finding: ShardFinding,
  reader: StreamReader,
  from: string,
  applied: AppliedLookup,
  budget: ReadBudget | undefined,
  pages: number,
): Promise<void> {
  let iterator: string | undefined = from;
  for (let page = 0; page < pages && iterator; page++) {
    if (page > 0 && budget?.spent()) return;
    const answer = await reader.read(iterator);
    if (answer === "trimmed") return;
    budget?.page(answer.records.length, answer.bytes ?? 0);
    if (answer.records.length === 0) return;
    finding.moreAfterFrontier = true;
    if ((await applied(answer.records.map((r) => r.seq))).size > 0) {
      // The undelivered rule weighs the frontier's page and the next, as ever: a record
      // applied pages on, long ago, says nothing of whether the stream is delivered now.
      if (page === 0) finding.sawApplied = true;
      finding.appliedAfterFrontier = true;
      return;
    }
    iterator = answer.next;
  }
}

/**
 * Whether a read goes on from the iterator the last one kept: a closed shard's, with no
 * frontier to read at, taken less than {@link RESUME_WITHIN_MS} ago.
 */
function resumable(previous: ShardState | undefined, closed: boolean, now?: number): boolean {
  const resume = previous?.resume;
  return resume !== undefined && closed && now !== undefined &&
    now - Date.parse(resume.at) < RESUME_WITHIN_MS;
}

/** Whether sequence number `seq` is `end` or after it (false when either is not a number). */
function atOrPast(seq: string, end: string): boolean {
  if (!/^\d+$/.test(seq) || !/^\d+$/.test(end)) return false;
  return compareDecimal(seq, end) >= 0;
}
