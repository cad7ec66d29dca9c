/**
 * What a resumable segment Scan (segment_scan.ts) and its callers (the backfill, the
 * validator, the export loader) agree on: the claim of a leased segment, the read turns of
 * the job's ledger, a page and its checkpoint, the caller's part of the work, and the
 * checkpoint's refusals (the lease another worker's, the job over).
 *
 * @module
 */

import type postgres from "postgres";
import type { AttributeValue } from "./dynamo_commands.ts";
import type { DynamoClient } from "./dynamo_http.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import type { PacingDeps } from "./scan_pacing.ts";

/** The SQLSTATE sync.checkpoint_segment raises when the worker no longer holds the lease. */
export const LEASE_LOST = "SY001";

/**
 * The SQLSTATE sync.checkpoint_segment raises when the segment's job is no longer
 * running (cancelled, failed, done): the page was not written and the segment stops
 * (supabase/migrations/20261128001800_backfill_turns.sql).
 */
export const JOB_OVER = "SY002";

/**
 * Whether `error` is a checkpoint's refusal: the lease taken over by another worker
 * ({@link LEASE_LOST}) or the job over ({@link JOB_OVER}, raised by
 * `sync.checkpoint_segment`: the merge's own refusals of a caller's mistake share that
 * code, and are errors). The page (or chunk) rolled back with it; the segment is no
 * longer this worker's to write.
 */
export function checkpointRefused(error: unknown): boolean {
  const { code, where } = (error ?? {}) as { code?: unknown; where?: unknown };
  return code === LEASE_LOST ||
    (code === JOB_OVER && String(where ?? "").includes("sync.checkpoint_segment"));
}

/** A DynamoDB item or key, as the Scan returns it. */
export type Item = Record<string, AttributeValue>;

/** A claimed segment, as sync.claim_segment returns it. */
export interface Claim {
  job_id: string;
  segment: number;
  total_segments: number;
  source_table: string;
  target_table: string;
  region: string;
  exclusive_start_key: Item | null;
  page_size: number;
  /**
   * Its lease had run out: the worker that held it was stopped or killed mid-page. Absent
   * or false when it was pending (new, or given back for a budget).
   */
  taken_over?: boolean;
}

/**
 * A read's turn against its table's read budget, as the job's read ledger booked it
 * (`sync.backfill_read_turn`): in how many milliseconds the read may start, and the read
 * units it was booked at (the ledger corrects them by what the read cost).
 */
export interface Turn {
  waitMs: number;
  units: number;
}

/**
 * Turns shared by every request scanning the job (its read ledger in Postgres,
 * functions-shared/read_turns.ts): the table's budget is used by whichever segments are
 * in flight.
 */
export interface ReadTurns {
  /** The first read's turn of a segment just claimed. */
  first: (claim: Claim) => Promise<Turn>;
  /**
   * Gives the segment back (sync.release_segment) and its turn, unused, to the job's other
   * segments, in one statement: the segment is handed on before its read. `throttled`:
   * given up at the table's capacity, so the job catches nothing up.
   */
  release: (claim: Claim, turn: Turn, options?: { throttled?: boolean }) => Promise<void>;
  /**
   * Settles a read whose page was not written (its checkpoint refused: the page's own
   * statement, which settles it, rolled back): what it spent against what was booked;
   * `spent` null for a turn given back unused (no read made: the job's estimate of a
   * page stays as it was). `read`: the read's own flags, as its page's statement would
   * have passed them (`retried`: the job catches nothing up; `whole` false: its cost is
   * not the job's estimate of a page); by default neither.
   */
  settle?: (
    claim: Claim,
    spent: number | null,
    booked: number,
    read?: { retried?: boolean; whole?: boolean },
  ) => Promise<void>;
}

/** A page the Scan read: its items, when it was read, and the checkpoint after it. */
export interface ScanPage {
  items: Item[];
  /** Its stamp: no later than its read, on DynamoDB's clock (read_stamp.ts). */
  readAt: Date;
  nextKey: Item | null;
}

/** What the Scan needs. */
export interface SegmentScanDeps {
  sql: postgres.Sql;
  dynamo: (region: string) => DynamoClient;
  /** The isolate's CPU so far (functions-shared/cpu_meter.ts). */
  cpu: CpuMeter;
  /**
   * Whether the Scan reads consistently (default true). Only the validator turns it off:
   * it re-reads every key that differs consistently before reporting it
   * (validator_compare.ts), so a stale page that differs costs a recheck, never a false
   * report (one that matches a target as stale as itself hides a divergence younger than
   * the read's consistency, until the next run: docs/sync-semantics.md, "Verification");
   * the backfill must read consistently (see the Scan below).
   */
  consistentRead?: boolean;
  /** Clock and randomness of the pacing and retries (tests replace them). */
  pacing?: PacingDeps;
  log?: (line: string) => void;
}

/** The arguments of sync.checkpoint_segment after a page, but the rows written. */
export interface Checkpoint {
  worker: string;
  /** The Scan's LastEvaluatedKey as JSON text; null when the segment is done. */
  nextKey: string | null;
  items: number;
  done: boolean;
  /** The read units the page's Scan consumed (its ConsumedCapacity). */
  spentUnits?: number;
  /** The units its read's turn was booked at (0 for a turn booked at none). */
  bookedUnits?: number;
  /**
   * Whether the read was retried (throttled at the table's capacity, or failed): the
   * job's next read then catches nothing up (`sync.backfill_read_turn`'s p_catch_up).
   */
  retried?: boolean;
  /**
   * False for a page read smaller than a whole one (its Limit cut to the isolate's room,
   * pages_in_flight.ts): its cost is settled but is not the job's estimate of a read
   * (`sync.backfill_read_turn`'s p_whole). Default true.
   */
  whole?: boolean;
}

/** What `commitPage` wrote, and the segment's next read's turn (none once it is done). */
export interface Committed {
  rows: number;
  nextTurn?: Turn;
  /** What mapping the page's items cost, in ms of the isolate's CPU meter (the backfill's). */
  mappedMs?: number;
}

/** What the caller decides: which segments, when to stop, what a page writes. */
export interface SegmentWork {
  /** Claims the next segment (sync.claim_segment), or none is left. */
  claim: () => Promise<Claim | undefined>;
  /** Called after each claim: may wake another request while segments wait. */
  wakeAnother: () => Promise<void>;
  /**
   * How many items the claim's next page may read (its Scan's `Limit`, at most the
   * claim's page size), or 0 when the request's budget is spent (the segment is then given
   * back and the request hands on), or "wait" when the room `room` found was taken by
   * another page meanwhile (`room` is then awaited again): asked before each page's Scan,
   * once the pacing lets the page start (a segment waiting for its turn holds no CPU). A
   * page it lets start ends with `pageEnded`.
   */
  pageItems: (claim: Claim) => number | "wait";
  /**
   * Resolves when the isolate has room for another page (its pages in flight may have
   * to end first); awaited before `pageItems`. Optional.
   */
  room?: (claim: Claim) => Promise<void>;
  /**
   * Resolves when the caller wants the scan to stop at once (another segment of the same
   * request, or a page of another run of the isolate, found the budget spent): a pacing
   * wait ends early, the budget is checked, and the segment is given back. Once it has
   * resolved, `pageItems` must answer 0: every later wait ends at once too. Optional.
   */
  stopping?: Promise<void>;
  /**
   * How much of the request's wall-clock budget is left, in ms: a wait for a turn ends by
   * then, and the segment is given back with its turn and handed on. Optional (no limit).
   */
  wallLeftMs?: () => number;
  /**
   * Called once each page that `pageItems` let start is written or failed, with the
   * items it was let read. Optional.
   */
  pageEnded?: (claim: Claim, items: number) => void;
  /**
   * Writes a page, the segment's checkpoint (sync.checkpoint_segment) and the next read's
   * turn (sync.backfill_read_turn) in one atomic step: the backfill's one statement
   * (backfill_page.ts), the validator's one transaction (validator_source.ts).
   */
  commitPage: (claim: Claim, page: ScanPage, checkpoint: Checkpoint) => Promise<Committed>;
  /** Called once a segment was given back for the budget: calls the function again. */
  handOn: () => Promise<void>;
  /** How log lines name a segment, e.g. "backfill job 7 segment 1/4 of <table>". */
  describe: (claim: Claim) => string;
  /** The job's read turns (its read ledger: read_turns.ts), the first and a given back. */
  turns: ReadTurns;
}

/** What one request did. */
export interface ScanResult {
  segmentsFinished: number;
  pages: number;
  items: number;
  rows: number;
  /** "throttled": a Scan kept failing (throttled or erroring) and its segment was released. */
  stoppedBy: "no work" | "budget" | "throttled";
  /** Segments claimed at a checkpoint another request left (routine: not logged). */
  resumed: number;
  /**
   * Stopped by the budget: the segment given back, and why, e.g. "backfill job 7 segment
   * 1/4 of <table>: budget spent (isolate CPU 1204 ms)". The caller says it as it logs
   * its requests (a line per request would pass a hosted function's log limit).
   */
  handedOn?: string;
}
