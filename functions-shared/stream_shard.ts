/**
 * What the lost-record check knows of a stream's shard (stream_check.ts reads it): how it
 * is read (DescribeStream, GetShardIterator, GetRecords), the state a run keeps of it for
 * the next (`sync.stream_checks.shards`), what one read of it found, and how a run's
 * budget counts its pages.
 *
 * @module
 */

/** A stream record as the check needs it. */
export interface HeldRecord {
  seq: string;
  /** ApproximateCreationDateTime, epoch ms. */
  createdAt: number;
}

/** What a run keeps per shard for the next one (`sync.stream_checks.shards`). */
export interface ShardState {
  /** The last record seen applied, all before it applied too. */
  through?: string;
  /**
   * When `through`'s record was created (ISO 8601): what a read that stops before any
   * further record leaves unread is newer than this (stream_verdict.ts weighs it against
   * the stream's 24 hours). Absent in states written before it was kept.
   */
  throughAt?: string;
  /** The first record not applied when the run looked. */
  frontier?: { seq: string; created_at: string };
  /**
   * The frontier was reported passed over (the mapping gave it up to its on-failure
   * queue, stream_verdict.ts), and the table healed from then: the next run reads on past
   * it as if applied, so that a record given up after it is found as soon, not once the
   * first is trimmed, a day on.
   */
  givenUp?: true;
  /** A closed shard read to its end with every record applied: nothing more to read. */
  done?: boolean;
  /**
   * When a run last read this shard (ISO 8601). A shard a run's budget left unread keeps
   * its time; one listed but never read yet has the time of the last run before it was
   * listed, when it did not exist. More than the allowed gap ago, the shard is unwatched
   * (stream_verdict.ts). Absent in states written before it was kept: the run's time.
   */
  readAt?: string;
  /**
   * The last read stopped short of the shard's frontier or end (its page cap, or the
   * run's budget) after getting further than the read before it: a chain of runs reads
   * it on, though a run of the chain read it already (stream_check_run.ts).
   */
  stoppedShort?: boolean;
  /** The last run left it unread (its budget spent first): `readAt` is no read of it. */
  pending?: boolean;
  /**
   * A closed shard's read that stopped among empty pages (its page cap, or the budget):
   * the iterator it stopped at and when it was taken (ISO 8601). `through` cannot say
   * where empty pages end, so a run starting from it would read the same empty pages
   * again, and stop at the same place, run after run; a run within
   * {@link RESUME_WITHIN_MS} (a chain's next) reads on from the iterator instead.
   */
  resume?: { iterator: string; at: string };
}

/**
 * How long a kept iterator is used: less than the 15 minutes an iterator lives ("A shard
 * iterator expires 15 minutes after it is returned to the requester",
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html).
 */
export const RESUME_WITHIN_MS = 14 * 60_000;

/** Where to start reading a shard. */
export type Position = "oldest" | { at: string } | { after: string };

/** A shard as DescribeStream lists it. */
export interface ListedShard {
  id: string;
  /** It has an ending sequence number: no record will come, and its read has an end. */
  closed: boolean;
  /** That ending sequence number (DescribeStream's `SequenceNumberRange`), when closed. */
  endingSeq?: string;
}

/** How the check reads a stream (DescribeStream, GetShardIterator, GetRecords). */
export interface StreamReader {
  /** Every shard of the stream. */
  shards(): Promise<ListedShard[]>;
  /** An iterator, or "trimmed" when the position is older than what the shard holds. */
  iterator(shardId: string, position: Position): Promise<string | "trimmed" | undefined>;
  /**
   * One page; `next` is undefined once a closed shard is read to its end; `bytes`, the
   * records' size as the stream gives it (each record's `SizeBytes`), when known.
   * "trimmed": the iterator's position went past the stream's 24 hours between its
   * GetShardIterator and this GetRecords (AWS answers TrimmedDataAccessException).
   */
  read(
    iterator: string,
  ): Promise<{ records: HeldRecord[]; next?: string; bytes?: number } | "trimmed">;
}

/** Which of these sequence numbers the webhook applied. */
export type AppliedLookup = (seqs: string[]) => Promise<Set<string>>;

/** What reading one shard found. */
export interface ShardFinding {
  shardId: string;
  state: ShardState;
  /** The previous frontier, trimmed (or its shard gone) before it was applied. */
  lost?: HeldRecord;
  /** The oldest record the shard still holds, when the run read it (for messages). */
  oldestHeld?: string;
  /**
   * The run stopped before the frontier or the shard's end: at MAX_PAGES_PER_SHARD
   * ("pages"), or when its budget was spent ("budget"), after reading records up to one
   * created at `lastCreatedAt`. The next run reads on from `state.through`.
   */
  incomplete?: { lastCreatedAt: number; cause: "pages" | "budget" };
  /** The run's budget was spent before this shard was read: `state` is the previous one. */
  unread?: boolean;
  /**
   * Left unread because a read of the table's stream kept being throttled (or failing
   * with a 5xx) in this run: not handed on to another run within the hour, which would
   * only meet the same throttle.
   */
  throttled?: boolean;
  /**
   * When a run read this shard before this one (set by the run, stream_check_run.ts): its
   * state's `readAt`, or the previous run's time for a shard new since or a state written
   * before `readAt` was kept; undefined at a first look, or on another stream.
   */
  readBefore?: string;
  /**
   * A record of a page this run read was applied (one after the frontier included: the
   * mapping gave the frontier's batch up, to its on-failure queue, and went on).
   */
  sawApplied?: boolean;
  /** The frontier's page holds records after it: more than the frontier waits. */
  moreAfterFrontier?: boolean;
  /**
   * A record after the frontier, in its page or the next, was applied: the mapping went
   * on past it (its batch given up, stream_verdict.ts's "passed over").
   */
  appliedAfterFrontier?: boolean;
}

/**
 * How a run's budget reaches into the reads of its shards: each page is counted, and no
 * page is read once the budget is spent (functions-shared/stream_check_run.ts).
 */
export interface ReadBudget {
  /** Counts a page just read: its records, and their bytes when known. */
  page(records: number, bytes: number): void;
  /** Counts a shard's read begun (its GetShardIterator). */
  shard(): void;
  /** Whether the run should read no further page. */
  spent(): boolean;
}
