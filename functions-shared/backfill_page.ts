/**
 * How the import-worker writes a page (functions-shared/backfill_worker.ts): the page's
 * items mapped once, in one pass, and written with the segment's checkpoint in ONE
 * statement, one round trip:
 *
 * ```sql
 * select sync.checkpoint_segment(job, segment, worker, next_key, items,
 *          (select applied from sync.merge_changes(target, changes)), done, read_at)
 * ```
 *
 * A single statement is its own transaction, so the rows and the checkpoint commit
 * together or not at all (docs/sync-semantics.md, "Backfills"): a lost lease (SY001,
 * raised by the checkpoint after the merge ran) rolls the page's rows back. The merge's
 * lock on its table is held for that one statement only, not across the round trips of
 * BEGIN, SAVEPOINT, merge, RELEASE, checkpoint and COMMIT.
 *
 * A page with an item that does not map, or one that Postgres refuses as a whole (a data
 * error, SQLSTATE class 22, 23 or 54), takes the careful path instead: one transaction
 * in which `applyChanges` (sync_db.ts) dead-letters what cannot be applied, isolating a
 * refused change in savepoints, then the checkpoint. Either way the page and its
 * checkpoint commit together and nothing is lost.
 *
 * What mapping the page cost, by the isolate's meter, goes back with its rows
 * (`mappedMs`): the worker sizes pages by it (pages_in_flight.ts).
 *
 * @module
 */

import type postgres from "postgres";
import { toWire } from "./change_wire.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import { type DeadLetter, mapScannedItem, type TableChange } from "./record_mapping.ts";
import { turnOf, turnSettlement } from "./read_turns.ts";
import type { Checkpoint, Claim, Committed, ScanPage } from "./segment_work.ts";
import { applyChanges } from "./sync_db.ts";
import { isDataError } from "./db_errors.ts";
import { logDeadLetters } from "./dead_letter_writer.ts";
import { bySourceTable } from "./table_registry.ts";

/** What writing a page needs besides the pool. */
export interface PageDeps {
  cpu: CpuMeter;
  log?: (line: string) => void;
  /**
   * The table's read budget (read units a second) when the worker reads by the job's
   * turns: the page's statement then settles its read and books the segment's next one
   * (`sync.backfill_read_turn`). Without it, no turn is booked.
   */
  rate?: number;
  /**
   * A Scan's page: its merge waits at most 30 s for the table's merge lock
   * (`sync.wait_for_merge_lock`, taken once before any savepoint), which an export's
   * chunk may hold for minutes, then fails with 55P03 (a statement that lost to another:
   * given back, not counted), naming the lock. The careful path, after the one
   * statement failed on a value, waits only what is left of the 30 s (at least 1 s). Not
   * an export's own careful pages: its sibling loaders hold the lock chunk after chunk,
   * and they queue for it.
   */
  lockWaitLimited?: boolean;
  /** A monotonic clock in milliseconds, for the lock's wait. Default: `performance.now`. */
  now?: () => number;
}

/** The longest a page waits for its table's merge lock, in all (`sync.wait_for_merge_lock`). */
export const LOCK_WAIT_MS = 30_000;

/** The least the careful path waits for the lock, whatever the one statement took. */
const CAREFUL_LOCK_WAIT_MIN_MS = 1_000;

/**
 * A lock timeout met waiting `waitMs` for the table's merge lock, named; any other error
 * as it is.
 */
function namedLockWait(error: unknown, table: string, waitMs: number): unknown {
  const e = error as { code?: string; where?: string };
  if (e?.code !== "55P03" || !String(e.where ?? "").includes("wait_for_merge_lock")) return error;
  return Object.assign(
    new Error(
      `the merge lock of ${table} was held by another transaction for ${
        Number((waitMs / 1000).toFixed(1))
      } s (an export's ` +
        "chunk or a retention purge of the table): the page is given back and read again later",
      { cause: error },
    ),
    { code: "55P03" },
  );
}

/**
 * A page mapped in one pass and, when every item maps, encoded once for the merge: one
 * step on the isolate's CPU meter, whose reading it went up by is the page's `mappedMs`
 * (a synchronous step: no other page's work is in it).
 */
function mapPage(cpu: CpuMeter, claim: Claim, page: ScanPage) {
  const spec = bySourceTable(claim.source_table)!;
  const before = cpu.usedMs();
  const mapped = cpu.measure(() => {
    const changes: TableChange[] = [];
    const deadLetters: DeadLetter[] = [];
    for (const item of page.items) {
      const mapped = mapScannedItem(spec, item, page.readAt);
      if (mapped.ok) changes.push(mapped.value);
      else deadLetters.push(mapped.deadLetter);
    }
    const json = deadLetters.length === 0 && changes.length > 0
      ? encodeJson(changes.map((c) => toWire(c.change)))
      : null;
    return { changes, deadLetters, json };
  });
  return { ...mapped, mappedMs: cpu.usedMs() - before };
}

/** What a page's statement needs to book the segment's next read (read turns). */
interface TurnArgs extends ReturnType<typeof turnSettlement> {
  /** The table's read budget, read units a second. */
  rate: number;
}

/** The turn's arguments of a page, when the worker reads by turns. */
function turnArgs(rate: number | undefined, checkpoint: Checkpoint): TurnArgs | undefined {
  if (rate === undefined) return undefined;
  return { rate, ...turnSettlement(checkpoint) };
}

/**
 * The one-statement path: the merge's rows, the checkpoint and the segment's next turn,
 * one round trip. The turn comes after the checkpoint in the select list (evaluated in
 * order), so the ledger's row is locked only from then until the statement commits.
 */
async function commitAtOnce(
  sql: postgres.Sql,
  claim: Claim,
  page: { json: string | null; readAt: Date },
  checkpoint: Checkpoint,
  turn: TurnArgs | undefined,
  lockWaitLimited: boolean,
): Promise<Committed> {
  const { json, readAt } = page;
  const args = [
    claim.job_id,
    claim.segment,
    checkpoint.worker,
    checkpoint.nextKey,
    checkpoint.items,
  ];
  const turnValues = turn
    ? [turn.rate, turn.spent, turn.booked, turn.next, turn.catchUp, turn.whole]
    : [];
  /** The turn's call, its arguments numbered from `$first`. */
  const turnSql = (first: number) => {
    if (!turn) return "";
    const numbered = turnValues.map((_, i) => `$${first + i}`).join(", ");
    return `, sync.backfill_read_turn($1, ${numbered}) as turn`;
  };
  if (json === null) {
    const [row] = await sql.unsafe(
      `select sync.checkpoint_segment($1, $2, $3, $4::text::jsonb, $5, $6, $7, $8::timestamptz)
              as checkpointed ${turnSql(9)}`,
      [...args, 0, checkpoint.done, readAt.toISOString(), ...turnValues],
    );
    return { rows: 0, nextTurn: turnOf(row?.turn) };
  }
  // The checkpoint takes the merge's count as an argument, so the merge runs first; the
  // CTE, read twice, runs once. The lock's wait, when limited, comes before the merge: the
  // merge's table is the lock's answer (a lateral reference, evaluated first).
  const merge = lockWaitLimited
    ? "(select sync.wait_for_merge_lock($6) as target) l " +
      "cross join lateral sync.merge_changes(l.target, $7::text::jsonb)"
    : "sync.merge_changes($6, $7::text::jsonb)";
  const [row] = await sql.unsafe(
    `with merged as (select applied::int as applied from ${merge})
     select sync.checkpoint_segment($1, $2, $3, $4::text::jsonb, $5,
              (select applied from merged), $8, $9::timestamptz) as checkpointed,
            (select applied from merged) as applied
            ${turnSql(10)}`,
    [...args, claim.target_table, json, checkpoint.done, readAt.toISOString(), ...turnValues],
  );
  return { rows: Number(row.applied), nextTurn: turnOf(row.turn) };
}

/**
 * Writes a page and its checkpoint atomically (see the module's comment); returns the
 * rows (or observations) written and, with `deps.rate`, the segment's next read's turn.
 */
export async function commitPage(
  sql: postgres.Sql,
  claim: Claim,
  page: ScanPage,
  checkpoint: Checkpoint,
  deps: PageDeps,
): Promise<Committed> {
  const { changes, deadLetters, json, mappedMs } = mapPage(deps.cpu, claim, page);
  const turn = turnArgs(deps.rate, checkpoint);
  const limited = deps.lockWaitLimited ?? false;
  const now = deps.now ?? (() => performance.now());
  let lockWaitMs = LOCK_WAIT_MS;
  if (deadLetters.length === 0) {
    const started = now();
    try {
      const encoded = { json, readAt: page.readAt };
      return {
        ...await commitAtOnce(sql, claim, encoded, checkpoint, turn, limited),
        mappedMs,
      };
    } catch (error) {
      // A value Postgres refuses: the careful path isolates it (nothing was written). Its
      // wait for the lock is what the one statement's left (which may have waited most).
      if (!isDataError(error)) throw namedLockWait(error, claim.target_table, lockWaitMs);
      lockWaitMs = Math.max(CAREFUL_LOCK_WAIT_MIN_MS, Math.round(LOCK_WAIT_MS - (now() - started)));
    }
  }
  // A poison item fails alone (docs/sync-semantics.md, "Bad input"): it is dead-lettered
  // (when it does not map, or when Postgres refuses it) and the page, with its
  // checkpoint, is written without it, so the segment moves on, never loops.
  const committed = await sql.begin(async (tx) => {
    if (limited) {
      await tx`select sync.wait_for_merge_lock(${claim.target_table}, ${lockWaitMs})`;
    }
    const { applied, refused } = await applyChanges(tx, changes, deadLetters, {
      cpu: deps.cpu,
    });
    const [row] = turn
      ? await tx`select sync.checkpoint_segment(${claim.job_id}, ${claim.segment},
                   ${checkpoint.worker}, ${checkpoint.nextKey}::text::jsonb, ${checkpoint.items},
                   ${applied}, ${checkpoint.done}, ${page.readAt}::timestamptz) as checkpointed,
                   sync.backfill_read_turn(${claim.job_id}, ${turn.rate}, ${turn.spent},
                     ${turn.booked}, ${turn.next}, ${turn.catchUp}, ${turn.whole}) as turn`
      : await tx`select sync.checkpoint_segment(${claim.job_id}, ${claim.segment},
                   ${checkpoint.worker}, ${checkpoint.nextKey}::text::jsonb, ${checkpoint.items},
                   ${applied}, ${checkpoint.done}, ${page.readAt}::timestamptz) as checkpointed`;
    return { rows: applied, nextTurn: turnOf(row?.turn), refused };
  }).catch((error) => {
    throw namedLockWait(error, claim.target_table, lockWaitMs);
  });
  // Once committed (a lost lease rolls them back): each letter's table, key and cause.
  const letters = [...deadLetters, ...committed.refused.map((r) => r.deadLetter)];
  if (deps.log && letters.length > 0) {
    logDeadLetters(
      letters,
      (l) =>
        `backfill job ${claim.job_id} segment ${claim.segment}/${claim.total_segments} of ${claim.source_table}: dead letter: ${l.reason}`,
      deps.log,
    );
  }
  return { rows: committed.rows, nextTurn: committed.nextTurn, mappedMs };
}
