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

import { ScanCommand } from "./dynamo_commands.ts";
import { STATEMENT_CPU_MS } from "./cpu_meter.ts";
import { type PacingDeps, realPacing, ScanGaveUp, withBackoff } from "./scan_pacing.ts";
import { isDatabaseUnavailable, lostToAnother } from "./db_errors.ts";
import { type TurnAt, untilTurn, whileHolding } from "./lease_holds.ts";
import { pageStamp } from "./read_stamp.ts";
import { checkpointKey, checkpointText } from "./scan_checkpoint.ts";
import {
  type Checkpoint,
  checkpointRefused,
  type Claim,
  type Item,
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
  const release = (claim: Claim) =>
    deps.sql`select sync.release_segment(${claim.job_id}, ${claim.segment}, ${worker})`;
  // Records a failed attempt on the segment, still held, with its cause; true when it was
  // the last a backfill's segment may have, and its job failed (sync.note_failed_attempt).
  const noteFailure = async (claim: Claim, cause: string) => {
    const [row] = await deps.sql<{ failed: boolean }[]>`
      select sync.note_failed_attempt(${claim.job_id}, ${claim.segment}, ${worker}, ${cause})
             as failed`;
    return row?.failed === true;
  };
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
      if (counted && await noteFailure(claim, `${where}: ${cause}`).catch(() => false)) {
        log(`${where}: ${cause}; its job failed: every attempt in a row ended so`);
      } else {
        await release(claim).catch(() => {});
        log(`${where}: ${cause}; released for another worker`);
      }
      throw error;
    }
  }

  /** Holds `claim`'s lease as a checkpoint would; false when it is no longer this worker's. */
  async function holdLease(claim: Claim): Promise<boolean> {
    // Held every few seconds while a segment waits (for its turn, for room, between a
    // read's retries), outside any measured step: charged, or a long wait's holds would
    // add up unseen by an estimating meter (cpu_meter.ts).
    deps.cpu.charge(STATEMENT_CPU_MS);
    const held = await deps.sql`
      update sync.backfill_segments s
      set lease_expires_at = now() + make_interval(secs => j.lease_seconds), updated_at = now()
      from sync.backfill_jobs j
      where s.job_id = ${claim.job_id} and s.segment = ${claim.segment}
        and s.lease_owner = ${worker} and s.status = 'running'
        and j.id = s.job_id and j.status in ('pending', 'running')
      returning 1`;
    return held.length === 1;
  }

  async function scanSegment(claim: Claim): Promise<"done" | "budget" | "gave up"> {
    const where = work.describe(claim);
    let startKey = checkpointKey(claim.exclusive_start_key);
    const pacing = deps.pacing ?? realPacing;
    // A turn the ledger did not give (a claim or a page's statement that booked none,
    // which `commitPage` must not do but for a segment's last page) starts at once, at no
    // units booked; readAndWrite logs it.
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
      const wait = untilTurn(turn, pacing, () => holdLease(claim), deadline);
      const held = await (work.stopping ? Promise.race([wait, work.stopping]) : wait);
      if (held === "taken") {
        // Taken over while it waited (the lease lapsed): the segment is another's now, and
        // the turn it booked, unused, goes back to the job (else the job's reads stay one
        // page's units ahead of what they spent).
        log(`${where}: its lease was taken over while it waited for its turn; left to its holder`);
        await work.turns.settle?.(claim, null, turn.units)?.catch(() => {});
        return "done";
      }
      if (held !== "deadline" && work.room) {
        // Another page in flight may take long (its own retries): the lease is held meanwhile.
        const room = work.stopping
          ? Promise.race([work.room(claim), work.stopping])
          : work.room(claim);
        if (await whileHolding(room, () => holdLease(claim)) === "taken") {
          log(`${where}: its lease was taken over while it waited for room; left to its holder`);
          await work.turns.settle?.(claim, null, turn.units)?.catch(() => {});
          return "done";
        }
      }
      const items = held === "deadline" ? 0 : work.pageItems(claim);
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
        const outcome = await readAndWrite(claim, where, pacing, { startKey, turn, items });
        if (outcome === "done" || outcome === "gave up") return outcome;
        startKey = outcome.nextKey;
        turn = at(outcome.nextTurn);
      } finally {
        work.pageEnded?.(claim, items);
      }
    }
  }

  /**
   * Reads one page of at most `next.items` items from `next.startKey`, at `next.turn`, and
   * writes it with its checkpoint; the key after it, or how it ended.
   */
  async function readAndWrite(
    claim: Claim,
    where: string,
    pacing: PacingDeps,
    next: { startKey: Item | undefined; turn: TurnAt; items: number },
  ): Promise<"done" | "gave up" | { nextKey: Item; nextTurn?: Turn }> {
    const { startKey, turn } = next;
    let sentAt = Date.now();
    let page;
    // Whether the read was retried here or in the SDK (a throttle, a failure): the table
    // may be at its capacity, so the job's next read catches nothing up (read_turns.ts).
    let retried = false;
    const client = deps.dynamo(claim.region);
    // Aborted once a hold between the client's retries finds the lease another's: the
    // segment is that worker's, and reading on would only spend the table's budget twice.
    const leaseLost = new AbortController();
    try {
      page = await withBackoff(
        () => {
          sentAt = Date.now();
          return client.send(
            new ScanCommand({
              TableName: claim.source_table,
              Segment: claim.segment,
              TotalSegments: claim.total_segments,
              ExclusiveStartKey: startKey,
              Limit: next.items,
              // Consistent: the page shows the table as of its read, whose stamp the merge's
              // ordering guard takes as the rows' change time (docs/sync-semantics.md). An
              // eventually consistent page "might not contain the results from other
              // recently completed write operations" (AWS, Scan's ConsistentRead): it could
              // carry an item older than a stream change already merged, or one deleted
              // before the read, yet stamped after it, and so overwrite the newer change or
              // pass its tombstone. The validator alone may read eventually consistently
              // (half the read units): it reads every key that differs again, consistently.
              ConsistentRead: deps.consistentRead ?? true,
              ReturnConsumedCapacity: "TOTAL",
            }),
            // Each of the client's attempts may wait 30 s for a silent connection, five of
            // them longer than the lease: it is held before each retry (a review found a
            // segment taken over, and read twice, while its first worker still retried).
            {
              abortSignal: leaseLost.signal,
              beforeRetry: async () => {
                if (!await holdLease(claim)) leaseLost.abort();
              },
            },
          );
        },
        async (error, waitMs) => {
          retried = true;
          log(
            `${where}: ${error.name}: ${error.message} after the client's retries; trying ` +
              `again in ${waitMs} ms`,
          );
          // The rounds of a throttled Scan outlast a lease: it is held before each wait (a
          // hold that finds it lost, or fails, leaves it to the page's checkpoint to say).
          await holdLease(claim).catch(() => {});
        },
        pacing,
      );
    } catch (error) {
      if (leaseLost.signal.aborted) {
        // Its turn, unused (a read that failed spent nothing), goes back to the job.
        await work.turns.settle?.(claim, null, turn.units)?.catch(() => {});
        log(`${where}: its lease was taken over while its read was retried; left to its holder`);
        return "done";
      }
      if (error instanceof ScanGaveUp) {
        // Counted, with its cause, while the segment is still this worker's (a job whose
        // attempts never get past the throttle fails naming why once it has lasted more
        // than 10 minutes: the applications' peak passes before; a validation run is reaped
        // naming it, sync.reap_stalled_validations); then the segment is given back from
        // its checkpoint, with its turn (a throttled read uses no capacity), and a later
        // worker (pg_cron) goes on.
        result.stoppedBy = "throttled";
        if (await noteFailure(claim, `${where}: ${error.message}`)) {
          log(`${where}: ${error.message}; its job failed: every attempt in a row ended so`);
          return "gave up";
        }
        await work.turns.release(claim, { waitMs: 0, units: turn.units }, { throttled: true });
        log(`${where}: ${error.message}; released for a later worker`);
        return "gave up";
      }
      if ((error as Error).name === "ResourceNotFoundException") {
        await deps.sql`select sync.fail_segment(${claim.job_id}, ${claim.segment}, ${worker},
                           ${`DynamoDB table ${claim.source_table} does not exist in ${claim.region}`})`;
        log(`${where}: the table does not exist; job failed`);
        return "done";
      }
      throw error;
    }
    // Stamped on DynamoDB's clock, no later than the read (read_stamp.ts): this function's
    // clock, however far off, orders nothing.
    const readAt = pageStamp(sentAt, page.$metadata?.clock);
    const spentUnits = page.ConsumedCapacity?.CapacityUnits ?? 1;
    const items = page.Items ?? [];
    const nextKey = page.LastEvaluatedKey ?? null;
    const scanned = { items, readAt, nextKey };
    const checkpoint: Checkpoint = {
      worker,
      nextKey: nextKey ? checkpointText(nextKey) : null,
      items: items.length,
      done: nextKey === null,
      spentUnits,
      bookedUnits: turn.units,
      retried: retried || (page.$metadata?.attempts ?? 1) > 1,
      whole: next.items >= claim.page_size,
    };
    const committed = await work.commitPage(claim, scanned, checkpoint).catch(async (error) => {
      // The read happened whatever became of its page: the ledger counts what it spent.
      if (checkpointRefused(error)) {
        await work.turns.settle?.(claim, spentUnits, turn.units, checkpoint).catch(() => {});
      }
      throw error;
    });
    const rows = committed.rows;
    result.pages++;
    result.items += items.length;
    result.rows += rows;
    if (nextKey === null) {
      result.segmentsFinished++;
      return "done";
    }
    if (!committed.nextTurn) log(`${where}: the page booked no next read's turn; reading on now`);
    return { nextKey, nextTurn: committed.nextTurn };
  }
}

/** An error's cause as a log line and the segment's error give it: AWS's name, then why. */
function causeOf(error: unknown): string {
  const { name, message } = error as { name?: string; message?: string };
  const text = message ?? String(error);
  return name && name !== "Error" && !text.startsWith(name) ? `${name}: ${text}` : text;
}
