/**
 * One page of a segment's Scan (segment_scan.ts): read at most so many items from the
 * segment's checkpoint, at the turn its job's read budget gave it, with the Scan's backoff
 * (the lease held before each retry), stamped on DynamoDB's clock, and written with the
 * segment's next checkpoint in one transaction by the caller's `commitPage`.
 *
 * @module
 */

import { ScanCommand } from "./dynamo_commands.ts";
import { type PacingDeps, ScanGaveUp, withBackoff } from "./scan_pacing.ts";
import type { TurnAt } from "./lease_holds.ts";
import { pageStamp } from "./read_stamp.ts";
import { mayHaveCommitted } from "./db_errors.ts";
import { checkpointText } from "./scan_checkpoint.ts";
import { holdSegmentLease, noteFailedAttempt } from "./segment_lease.ts";
import {
  type Checkpoint,
  checkpointRefused,
  type Claim,
  type Item,
  type ScanResult,
  type SegmentScanDeps,
  type SegmentWork,
  type Turn,
} from "./segment_work.ts";

/** A worker's Scan of its claimed segments: what each of its pages reads and adds to. */
export interface SegmentScan {
  deps: SegmentScanDeps;
  /** The worker's name, its leases' owner. */
  worker: string;
  work: SegmentWork;
  /** What the Scan did so far; each page adds to it. */
  result: ScanResult;
  log: (line: string) => void;
}

/**
 * Reads one page of at most `next.items` items from `next.startKey`, at `next.turn`, and
 * writes it with its checkpoint; the key after it, or how it ended.
 */
export async function readAndWritePage(
  scan: SegmentScan,
  claim: Claim,
  where: string,
  pacing: PacingDeps,
  next: { startKey: Item | undefined; turn: TurnAt; items: number },
): Promise<"done" | "gave up" | { nextKey: Item; nextTurn?: Turn }> {
  const { deps, worker, work, result, log } = scan;
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
              if (!await holdSegmentLease(deps, worker, claim)) leaseLost.abort();
            },
          },
        );
      },
      async (error, waitMs) => {
        retried = true;
        // The rounds of a throttled Scan outlast a lease: it is held before each wait. A
        // hold that finds it lost (another worker's, or its job cancelled or failed) stops
        // the read, as before the client's own retries: a review found the rounds read on,
        // a throttled table read twice. A hold that fails (the database) leaves it to the
        // page's checkpoint to say.
        if (!await holdSegmentLease(deps, worker, claim).catch(() => true)) {
          leaseLost.abort();
          throw error;
        }
        log(
          `${where}: ${error.name}: ${error.message} after the client's retries; trying ` +
            `again in ${waitMs} ms`,
        );
      },
      pacing,
    );
  } catch (error) {
    if (leaseLost.signal.aborted) {
      // Its turn, unused (a read that failed spent nothing), goes back to the job.
      await work.turns.settle?.(claim, null, turn.units)?.catch(() => {});
      log(
        `${where}: its lease was taken over, or its job ended, while its read was retried; ` +
          "left to its holder",
      );
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
      if (await noteFailedAttempt(deps, worker, claim, `${where}: ${error.message}`)) {
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
    // Any other failure (the caller counts it and gives the segment back): its turn,
    // unused, goes back to the job too, or the job's other segments read a page's units
    // behind its budget for each such failure (found by a review).
    await work.turns.settle?.(claim, null, turn.units)?.catch(() => {});
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
    // The read happened whatever became of its page: the ledger counts what it spent,
    // whatever refused the page (its checkpoint, a timeout, a lock wait lost), unless
    // the page's statement, which settles it, may have committed with only its answer
    // lost (counted twice, the job would read slower than its budget).
    if (checkpointRefused(error) || !mayHaveCommitted(error)) {
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
