/**
 * A worker's side of its scan job's read ledger (`sync.backfill_read_turn`,
 * supabase/migrations/20261128001800_backfill_turns.sql), for the backfill and the
 * validator alike: a segment's first read is booked in the statement that claims it,
 * each page's statement settles what its read cost and books the next read, and a turn
 * not used goes back to the job with its segment. So a table's read budget is used by
 * whichever of the job's segments are in flight, in whichever request or isolate, rather
 * than each segment pacing itself to a fixed share of it, which left the budget unused
 * while fewer segments were in flight (a validation's last segment read alone at a
 * quarter of it).
 *
 * @module
 */

import type postgres from "postgres";
import type { Checkpoint, Claim, ReadTurns, Turn } from "./segment_work.ts";

/** A turn to read at once, at no units (what a claim without a booked turn gets). */
const NOW: Turn = { waitMs: 0, units: 0 };

/** The turn `sync.backfill_read_turn` booked ({wait_ms, units}); none when not asked. */
export function turnOf(value: unknown): Turn | undefined {
  const turn = value as { wait_ms?: unknown; units?: unknown } | null | undefined;
  if (turn?.wait_ms == null || turn.units == null) return undefined;
  return { waitMs: Number(turn.wait_ms), units: Number(turn.units) };
}

/** What a page's statement passes `sync.backfill_read_turn` after the job and the rate. */
export function turnSettlement(checkpoint: Checkpoint): {
  spent: number;
  booked: number;
  next: boolean;
  catchUp: boolean;
  whole: boolean;
} {
  return {
    spent: checkpoint.spentUnits ?? 0,
    booked: checkpoint.bookedUnits ?? 0,
    next: !checkpoint.done,
    catchUp: checkpoint.retried !== true,
    whole: checkpoint.whole !== false,
  };
}

/** The job's read ledger, as one worker (a request) reads by it. */
export class LedgerTurns implements ReadTurns {
  #first = new WeakMap<Claim, Turn>();

  /** `rate`: the table's read budget, read units a second. */
  constructor(
    readonly sql: postgres.Sql,
    readonly worker: string,
    readonly rate: number,
  ) {}

  /**
   * Claims a segment (`sync.claim_segment`: of a Scan backfill, or with `run` of that
   * validation run's Scan) and books its first read in the same statement, one round
   * trip; undefined when none is left.
   */
  async claim(run: number | null = null): Promise<Claim | undefined> {
    const [row] = await this.sql<(Claim & { turn: unknown })[]>`
      select c.*, sync.backfill_read_turn(c.job_id, ${this.rate}, null, 0, true) as turn
      from sync.claim_segment(${this.worker}, ${run}) c`;
    if (!row) return undefined;
    const { turn, ...claim } = row;
    this.#first.set(claim, turnOf(turn) ?? NOW);
    return claim;
  }

  /** The first read's turn of a segment {@link claim}ed. */
  first(claim: Claim): Promise<Turn> {
    return Promise.resolve(this.#first.get(claim) ?? NOW);
  }

  /**
   * Settles a read whose page's statement (which settles it) was refused, with the read's
   * flags as that statement would have passed them; `spent` null: a turn given back unused.
   */
  async settle(
    claim: Claim,
    spent: number | null,
    booked: number,
    read: { retried?: boolean; whole?: boolean } = {},
  ): Promise<void> {
    await this.sql`select sync.backfill_read_turn(${claim.job_id}, ${this.rate},
                            ${spent}, ${booked}, false, ${read.retried !== true},
                            ${read.whole !== false})`;
  }

  /**
   * Gives the segment back and its turn, unused, to the job, in one statement; given up
   * at the table's capacity (`throttled`), the job catches nothing up.
   */
  async release(claim: Claim, turn: Turn, options: { throttled?: boolean } = {}): Promise<void> {
    await this.sql`select sync.release_segment(${claim.job_id}, ${claim.segment}, ${this.worker}),
                          sync.backfill_read_turn(${claim.job_id}, ${this.rate},
                            null, ${turn.units}, false, ${options.throttled !== true})`;
  }
}
