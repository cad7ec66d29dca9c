/**
 * A claimed segment's lease as its worker keeps it (segment_scan.ts, segment_page.ts):
 * held while the segment waits or retries, given back for another worker, and a failed
 * attempt counted while the segment is still this worker's.
 *
 * @module
 */

import { STATEMENT_CPU_MS } from "./cpu_meter.ts";
import type { Claim, SegmentScanDeps } from "./segment_work.ts";

/** Holds `claim`'s lease as a checkpoint would; false when it is no longer `worker`'s. */
export async function holdSegmentLease(
  deps: SegmentScanDeps,
  worker: string,
  claim: Claim,
): Promise<boolean> {
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

/** Gives `claim` back from its last checkpoint, for another worker. */
export async function releaseSegment(
  deps: SegmentScanDeps,
  worker: string,
  claim: Claim,
): Promise<void> {
  await deps.sql`select sync.release_segment(${claim.job_id}, ${claim.segment}, ${worker})`;
}

/**
 * Records a failed attempt on the segment, still held, with its cause; true when it was
 * the last a backfill's segment may have, and its job failed (sync.note_failed_attempt).
 */
export async function noteFailedAttempt(
  deps: SegmentScanDeps,
  worker: string,
  claim: Claim,
  cause: string,
): Promise<boolean> {
  const [row] = await deps.sql<{ failed: boolean }[]>`
    select sync.note_failed_attempt(${claim.job_id}, ${claim.segment}, ${worker}, ${cause})
           as failed`;
  return row?.failed === true;
}
