/**
 * How a Scan segment keeps its lease while it waits (functions-shared/segment_scan.ts):
 * for its read's turn (the job's read ledger books turns seconds apart), and for room
 * among its isolate's pages in flight. A wait past the lease lets another worker take the
 * segment over and read the same page again.
 *
 * @module
 */

import type { PacingDeps } from "./scan_pacing.ts";

/** A turn on the pacing clock: when it comes, and the read units it booked. */
export type TurnAt = { at: number; units: number };

/**
 * How long a segment waits for its turn between holds of its lease: under the shortest
 * lease a job may have (5 s, `sync.backfill_jobs.lease_seconds`). A read budget low
 * against the pages in flight makes turns tens of seconds apart; a wait past the lease
 * let another worker take the segment over and book a turn further back still, so that
 * at a budget low enough no page after the first ever committed.
 */
export const HOLD_EVERY_MS = 4_000;

/**
 * Waits for `turn`, holding the segment's lease (`hold`) every {@link HOLD_EVERY_MS} of
 * a longer wait: "turn" once it came; "taken" when a hold finds the lease another's;
 * "deadline" when `deadline` (on the pacing clock) comes first, the turn still ahead.
 */
export async function untilTurn(
  turn: TurnAt,
  pacing: PacingDeps,
  hold: () => Promise<boolean>,
  deadline: number,
): Promise<"turn" | "taken" | "deadline"> {
  for (;;) {
    const delay = turn.at - pacing.now();
    if (delay <= 0) return "turn";
    const left = deadline - pacing.now();
    if (left < delay && left <= HOLD_EVERY_MS) {
      if (left > 0) await pacing.sleep(left);
      return "deadline";
    }
    if (delay <= HOLD_EVERY_MS) {
      await pacing.sleep(delay);
      return "turn";
    }
    await pacing.sleep(HOLD_EVERY_MS);
    if (!await hold()) return "taken";
  }
}

/**
 * Waits for `wait`, holding the segment's lease (`hold`) every `everyMs` (by default
 * {@link HOLD_EVERY_MS}) meanwhile: "done" once it ended, "taken" when a hold finds the
 * lease another's.
 */
export async function whileHolding(
  wait: Promise<unknown>,
  hold: () => Promise<boolean>,
  everyMs = HOLD_EVERY_MS,
): Promise<"done" | "taken"> {
  let over = false;
  const ended = wait.then(() => {
    over = true;
  });
  for (;;) {
    // A timer of its own, cleared when the wait ends first (none is left behind).
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<void>((resolve) => timer = setTimeout(resolve, everyMs));
    await Promise.race([ended, tick]);
    clearTimeout(timer);
    if (over) return "done";
    if (!await hold()) return "taken";
  }
}
