/**
 * The one resumable Scan of the backfill and the validator (docs/sync-semantics.md,
 * "Verification"): claim a leased parallel-Scan segment (`sync.claim_segment`), read it
 * page by page from its checkpoint (Segment / TotalSegments / ExclusiveStartKey),
 * consistent (the validator's eventually consistent) and paced, and write each page together with the segment's checkpoint
 * (`sync.checkpoint_segment`) in one transaction. What a page writes is the caller's:
 * the backfill merges rows, the validator stages expected rows. When the budget runs
 * out the segment is given back and the caller hands on; a request killed mid-way loses
 * its lease, and the next claim goes on from the last checkpoint, so no page is written
 * twice or lost.
 *
 * @module
 */

import { realPacing } from "./scan_pacing.ts";
import { isDatabaseUnavailable, lostToAnother } from "./db_errors.ts";
import { type TurnAt, untilTurn, whileHolding } from "./lease_holds.ts";
import { checkpointKey } from "./scan_checkpoint.ts";
import { holdSegmentLease, noteFailedAttempt, releaseSegment } from "./segment_lease.ts";
import { readAndWritePage, type SegmentScan } from "./segment_page.ts";
import {
  checkpointRefused,
  type Claim,
  LEASE_LOST,
  type ScanResult,
  type SegmentScanDeps,
  type SegmentWork,
  type Turn,
} from "./segment_work.ts";

/** Scans claimed segments until none is left or the budget is spent. */
export async function scanSegments(
  deps: SegmentScanDeps,
  worker: string,
  work: SegmentWork,
): Promise<ScanResult> {
  const log = deps.log ?? (() => {});
  const result: ScanResult = {
    segmentsFinished: 0,
    pages: 0,
    items: 0,
    rows: 0,
    stoppedBy: "no work",
    resumed: 0,
  };
  const scan: SegmentScan = { deps, worker, work, result, log };
  while (true) {
    const claim = await work.claim();
    if (!claim) return result;
    try {
      await work.wakeAnother();
      const outcome = await scanSegment(claim);
      if (outcome === "budget" || outcome === "gave up") return result;
    } catch (error) {
      const where = work.describe(claim);
      if ((error as { code?: string }).code === LEASE_LOST) {
        log(`${where}: lease lost to another worker; its page was not written`);
        continue;
      }
      if (checkpointRefused(error)) {
        // The job was cancelled or failed meanwhile: nothing of the page was written, and
        // no claim gives out the job's segments any more (the message names them).
        log(`${(error as Error).message}`);
        continue;
      }
      // Counted and given back at once if the database lets us (else the lease lapses,
      // which the next claim counts); the next worker goes on from the last checkpoint.
      // Attempts that keep failing fail the job (sync.segment_gives_up: 5 in a row over
      // more than 10 minutes), naming why. Not counted: the database or its pooler
      // unavailable, a statement that lost to another (a deadlock, a serialization or a
      // lock timeout), which pass by themselves; a statement timeout is counted, as a page
      // too big for it would time out every time.
      const cause = causeOf(error);
      const counted = !isDatabaseUnavailable(error) && !lostToAnother(error);
      if (
        counted &&
        await noteFailedAttempt(deps, worker, claim, `${where}: ${cause}`).catch(() => false)
      ) {
        log(`${where}: ${cause}; its job failed: every attempt in a row ended so`);
      } else {
        await releaseSegment(deps, worker, claim).catch(() => {});
        log(`${where}: ${cause}; released for another worker`);
      }
      throw error;
    }
  }

  async function scanSegment(claim: Claim): Promise<"done" | "budget" | "gave up"> {
    const where = work.describe(claim);
    let startKey = checkpointKey(claim.exclusive_start_key);
    const pacing = deps.pacing ?? realPacing;
    // A turn the ledger did not give (a claim or a page's statement that booked none,
    // which `commitPage` must not do but for a segment's last page) starts at once, at no
    // units booked; readAndWritePage logs it.
    const at = (t: Turn | undefined): TurnAt => ({
      at: pacing.now() + (t?.waitMs ?? 0),
      units: t?.units ?? 0,
    });
    let turn = at(await work.turns.first(claim));
    // A claim, a resume and a hand-on are routine (sync.backfill_progress shows them, and
    // the callers count them); a hosted function keeps 100 log events per 10 s
    // (local-stack/supabase/log_limits.ts): a line each passed it in every backfill of
    // `npm start`. A segment taken over from a worker that died is worth its line.
    if (claim.taken_over) {
      log(
        `${where}: taken over: its lease ran out (its worker was stopped or killed mid-page); ${
          startKey ? "resuming from its checkpoint" : "starting from its beginning"
        }`,
      );
    } else if (startKey) {
      result.resumed++;
    }
    while (true) {
      // The budget (and with it the page's size) is checked once the pacing lets the page
      // start: a paced segment holds no CPU while it waits, and a stop asked meanwhile
      // ends the wait.
      // The wait ends by the request's wall-clock deadline, whenever the turn comes: a
      // request asleep past it is killed at the platform's wall-clock limit, its lease left
      // to lapse and its turn unused.
      const deadline = work.wallLeftMs ? pacing.now() + Math.max(0, work.wallLeftMs()) : Infinity;
      const wait = untilTurn(turn, pacing, () => holdSegmentLease(deps, worker, claim), deadline);
      const held = await (work.stopping ? Promise.race([wait, work.stopping]) : wait);
      if (held === "taken") {
        // Taken over while it waited (the lease lapsed): the segment is another's now, and
        // the turn it booked, unused, goes back to the job (else the job's reads stay one
        // page's units ahead of what they spent).
        log(`${where}: its lease was taken over while it waited for its turn; left to its holder`);
        await work.turns.settle?.(claim, null, turn.units)?.catch(() => {});
        return "done";
      }
      let items = 0;
      while (held !== "deadline") {
        if (work.room) {
          // Another page in flight may take long (its own retries): the lease is held meanwhile.
          const room = work.stopping
            ? Promise.race([work.room(claim), work.stopping])
            : work.room(claim);
          if (await whileHolding(room, () => holdSegmentLease(deps, worker, claim)) === "taken") {
            log(`${where}: its lease was taken over while it waited for room; left to its holder`);
            await work.turns.settle?.(claim, null, turn.units)?.catch(() => {});
            return "done";
          }
        }
        const asked = work.pageItems(claim);
        // The room this wait found went to a page of another run that the same page's end
        // woke: wait for room again.
        if (asked === "wait" && work.room) continue;
        items = asked === "wait" ? 0 : asked;
        break;
      }
      if (items === 0) {
        // The turn not taken goes back to the job's other segments with the segment.
        await work.turns.release(claim, { waitMs: 0, units: turn.units });
        await work.handOn();
        result.stoppedBy = "budget";
        const ahead = deps.cpu.aheadMs();
        const lead = ahead > 0 ? `, estimated ${ahead.toFixed(0)} ms ahead of the real` : "";
        result.handedOn = held === "deadline"
          ? `${where}: its turn comes after the request's wall-clock budget`
          : `${where}: budget spent (isolate CPU ${deps.cpu.usedMs().toFixed(0)} ms${lead})`;
        return "budget";
      }
      try {
        const outcome = await readAndWritePage(scan, claim, where, pacing, {
          startKey,
          turn,
          items,
        });
        if (outcome === "done" || outcome === "gave up") return outcome;
        startKey = outcome.nextKey;
        turn = at(outcome.nextTurn);
      } finally {
        work.pageEnded?.(claim, items);
      }
    }
  }
}

/** An error's cause as a log line and the segment's error give it: AWS's name, then why. */
function causeOf(error: unknown): string {
  const { name, message } = error as { name?: string; message?: string };
  const text = message ?? String(error);
  return name && name !== "Error" && !text.startsWith(name) ? `${name}: ${text}` : text;
}
