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
 * claims one wakes another, so a job's segments are scanned in parallel.
 *
 * @module
 */

import type postgres from "postgres";
import { type AttributeValue, type DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import type { CpuMeter } from "./cpu_meter.ts";
import { mapScannedItem } from "./record_mapping.ts";
import { applyChanges } from "./sync_db.ts";
import { bySourceTable } from "./table_registry.ts";
import {
  type PacingDeps,
  ReadPacer,
  realPacing,
  ScanGaveUp,
  segmentBudget,
  withBackoff,
} from "./scan_pacing.ts";

/** The SQLSTATE sync.checkpoint_segment raises when the worker no longer holds the lease. */
export const LEASE_LOST = "SY001";

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

/** A claimed segment, as sync.claim_segment returns it. */
export interface Claim {
  job_id: string;
  segment: number;
  total_segments: number;
  source_table: string;
  target_table: string;
  region: string;
  exclusive_start_key: Record<string, AttributeValue> | null;
  page_size: number;
}

/** What one run did. */
export interface RunResult {
  segmentsFinished: number;
  pages: number;
  items: number;
  rows: number;
  /** "throttled": a Scan kept failing (throttled or erroring) and its segment was released. */
  stoppedBy: "no work" | "budget" | "throttled";
}

async function wakeAnotherIfUseful(deps: WorkerDeps): Promise<void> {
  const [state] = await deps.sql`
    select sync.backfill_work_pending() as pending,
           (select count(*)::int from sync.backfill_segments
            where status = 'running' and lease_expires_at > now()) as running`;
  if (state.pending && state.running < deps.maxConcurrent) await deps.wake();
}

/** Runs until no segment waits or the budget is spent. */
export async function runWorker(deps: WorkerDeps, worker: string): Promise<RunResult> {
  const log = deps.log ?? (() => {});
  const started = performance.now();
  const result: RunResult = {
    segmentsFinished: 0,
    pages: 0,
    items: 0,
    rows: 0,
    stoppedBy: "no work",
  };
  const overBudget = () =>
    deps.cpu.usedMs() >= deps.cpuBudgetMs || performance.now() - started >= deps.wallBudgetMs;

  while (true) {
    const [claim] = await deps.sql<Claim[]>`select * from sync.claim_segment(${worker})`;
    if (!claim) return result;
    await wakeAnotherIfUseful(deps);
    try {
      const outcome = await scanSegment(claim);
      if (outcome === "budget" || outcome === "gave up") return result;
    } catch (error) {
      const where =
        `backfill job ${claim.job_id} segment ${claim.segment} of ${claim.source_table}`;
      if ((error as { code?: string }).code === LEASE_LOST) {
        log(`${where}: lease lost to another worker; its page was not written`);
        continue;
      }
      // Give the segment back at once if the database lets us (else the lease lapses);
      // the next worker goes on from the last checkpoint.
      await deps.sql`select sync.release_segment(${claim.job_id}, ${claim.segment}, ${worker})`
        .catch(() => {});
      log(`${where}: ${(error as Error).message}; released for another worker`);
      throw error;
    }
  }

  async function scanSegment(claim: Claim): Promise<"done" | "budget" | "gave up"> {
    const spec = bySourceTable(claim.source_table)!;
    const where =
      `backfill job ${claim.job_id} segment ${claim.segment}/${claim.total_segments} of ${claim.source_table}`;
    let startKey = claim.exclusive_start_key ?? undefined;
    const pacing = deps.pacing ?? realPacing;
    const pacer = new ReadPacer(segmentBudget(deps.maxRcuPerSecond, claim.total_segments), pacing);
    log(`${where}: claimed${startKey ? " (resuming from its checkpoint)" : ""}`);
    while (true) {
      if (overBudget()) {
        await deps.sql`select sync.release_segment(${claim.job_id}, ${claim.segment}, ${worker})`;
        await deps.wake();
        result.stoppedBy = "budget";
        log(`${where}: budget spent (isolate CPU ${deps.cpu.usedMs().toFixed(0)} ms), handed on`);
        return "budget";
      }
      await pacer.wait();
      let readAt = new Date();
      let page;
      try {
        page = await withBackoff(
          () => {
            readAt = new Date();
            return deps.dynamo(claim.region).send(
              new ScanCommand({
                TableName: claim.source_table,
                Segment: claim.segment,
                TotalSegments: claim.total_segments,
                ExclusiveStartKey: startKey,
                Limit: claim.page_size,
                // Consistent: the page shows the table as of readAt, which the merge's
                // ordering guard takes as the rows' change time (docs/sync-semantics.md). An
                // eventually consistent page "might not contain the results from other
                // recently completed write operations" (AWS, Scan's ConsistentRead): it could
                // carry an item older than a stream change already merged, or one deleted
                // before readAt, yet stamped readAt, and so overwrite the newer change or
                // pass its tombstone.
                ConsistentRead: true,
                ReturnConsumedCapacity: "TOTAL",
              }),
            );
          },
          (error, waitMs) =>
            log(`${where}: ${error.name} after the SDK's retries; trying again in ${waitMs} ms`),
          pacing,
        );
      } catch (error) {
        if (error instanceof ScanGaveUp) {
          // Give the segment back from its checkpoint; a later worker (pg_cron) goes on.
          await deps.sql`select sync.release_segment(${claim.job_id}, ${claim.segment}, ${worker})`;
          result.stoppedBy = "throttled";
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
      pacer.spent(page.ConsumedCapacity?.CapacityUnits ?? 1);
      const mapped = deps.cpu.measure(() =>
        (page.Items ?? []).map((item) => mapScannedItem(spec, item, readAt))
      );
      const changes = mapped.flatMap((m) => (m.ok ? [m.value] : []));
      const deadLetters = mapped.flatMap((m) => (m.ok ? [] : [m.deadLetter]));
      const nextKey = page.LastEvaluatedKey ?? null;
      // A poison item fails alone (docs/sync-semantics.md, "Bad input"): it is
      // dead-lettered (when it does not map, or when Postgres refuses it) and the page,
      // with its checkpoint, is written without it, so the segment moves on, never loops.
      const { applied, deadLettered } = await deps.sql.begin(async (tx) => {
        const result = await applyChanges(tx, changes, deadLetters);
        await tx`select sync.checkpoint_segment(${claim.job_id}, ${claim.segment}, ${worker},
                   ${nextKey ? JSON.stringify(nextKey) : null}::text::jsonb,
                   ${mapped.length}, ${result.applied}, ${nextKey === null})`;
        return result;
      });
      if (deadLettered > 0) log(`${where}: ${deadLettered} item(s) dead-lettered`);
      result.pages++;
      result.items += mapped.length;
      result.rows += applied;
      if (nextKey === null) {
        result.segmentsFinished++;
        log(`${where}: done`);
        return "done";
      }
      startKey = nextKey;
    }
  }
}
