/**
 * The import-worker's work: claim a backfill segment, scan it page by page
 * (Segment / TotalSegments / ExclusiveStartKey), map every item through the table
 * registry, and write each page through `sync.merge_changes` in the same transaction as
 * the segment's checkpoint. It watches its own budget: the Edge Runtime counts CPU per
 * isolate, boot and every request included (1 s soft: the isolate is retired; 2 s hard:
 * it is killed; local-stack/supabase/edge_limits.ts), so the budget is the isolate's CPU
 * as its {@link CpuMeter} reads it, plus this request's wall time. When the budget runs
 * out it gives the segment back and calls the worker again, so a new request goes on
 * from the checkpoint. While segments wait and fewer than `maxConcurrent` run, each worker that
 * claims one wakes another, so a job's segments are scanned in parallel. The Scan, its
 * leases and checkpoints are functions-shared/segment_scan.ts, shared with the validator.
 *
 * @module
 */

import type postgres from "postgres";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { CpuMeter } from "./cpu_meter.ts";
import { mapScannedItem } from "./record_mapping.ts";
import { applyChanges } from "./sync_db.ts";
import { bySourceTable } from "./table_registry.ts";
import type { PacingDeps } from "./scan_pacing.ts";
import { type Claim, type ScanResult, scanSegments } from "./segment_scan.ts";

export { LEASE_LOST } from "./segment_scan.ts";
export type { Claim } from "./segment_scan.ts";

/** What the worker needs. */
export interface WorkerDeps {
  sql: postgres.Sql;
  dynamo: (region: string) => DynamoDBClient;
  /** Starts another run of the import-worker (an HTTP call to itself). */
  wake: () => Promise<void>;
  /** The isolate's CPU so far (functions-shared/cpu_meter.ts). */
  cpu: CpuMeter;
  /** Hand on once the isolate has used this much CPU, boot included: the CPU budget. */
  cpuBudgetMs: number;
  /** Stop after this much wall time. */
  wallBudgetMs: number;
  maxConcurrent: number;
  /**
   * A table's read budget for a backfill, in read units per second, shared by the job's
   * segments (functions-shared/scan_pacing.ts; the setting IMPORT_WORKER_MAX_RCU_PER_SECOND).
   */
  maxRcuPerSecond: number;
  /** Clock and randomness of the pacing and retries (tests replace them). */
  pacing?: PacingDeps;
  log?: (line: string) => void;
}

/** What one run did. */
export type RunResult = ScanResult;

async function wakeAnotherIfUseful(deps: WorkerDeps): Promise<void> {
  const [state] = await deps.sql`
    select sync.backfill_work_pending() as pending,
           (select count(*)::int from sync.backfill_segments s
            join sync.backfill_jobs j on j.id = s.job_id
            where j.checksum_run_id is null and s.status = 'running'
              and s.lease_expires_at > now()) as running`;
  if (state.pending && state.running < deps.maxConcurrent) await deps.wake();
}

/** Runs until no segment waits or the budget is spent. */
export function runWorker(deps: WorkerDeps, worker: string): Promise<RunResult> {
  const log = deps.log ?? (() => {});
  const started = performance.now();
  return scanSegments(deps, worker, {
    claim: async () => {
      const [claim] = await deps.sql<Claim[]>`select * from sync.claim_segment(${worker})`;
      return claim;
    },
    wakeAnother: () => wakeAnotherIfUseful(deps),
    overBudget: () =>
      deps.cpu.usedMs() >= deps.cpuBudgetMs || performance.now() - started >= deps.wallBudgetMs,
    handOn: () => deps.wake(),
    describe: (claim) =>
      `backfill job ${claim.job_id} segment ${claim.segment}/${claim.total_segments} of ${claim.source_table}`,
    writePage: async (tx, claim, page) => {
      const spec = bySourceTable(claim.source_table)!;
      const mapped = deps.cpu.measure(() =>
        page.items.map((item) => mapScannedItem(spec, item, page.readAt))
      );
      const changes = mapped.flatMap((m) => (m.ok ? [m.value] : []));
      const deadLetters = mapped.flatMap((m) => (m.ok ? [] : [m.deadLetter]));
      // A poison item fails alone (docs/sync-semantics.md, "Bad input"): it is
      // dead-lettered (when it does not map, or when Postgres refuses it) and the page,
      // with its checkpoint, is written without it, so the segment moves on, never loops.
      const { applied, deadLettered } = await applyChanges(tx, changes, deadLetters);
      if (deadLettered > 0) {
        log(
          `backfill job ${claim.job_id} segment ${claim.segment}/${claim.total_segments} of ${claim.source_table}: ${deadLettered} item(s) dead-lettered`,
        );
      }
      return applied;
    },
  });
}
