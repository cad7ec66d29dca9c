/**
 * The import-worker's work: claim a backfill segment, scan it page by page
 * (Segment / TotalSegments / ExclusiveStartKey), map every item through the table
 * registry, and write each page through `sync.merge_changes` together with the segment's
 * checkpoint, in one statement (backfill_page.ts). It watches its own budget: the Edge Runtime counts CPU per
 * isolate, boot and every request included (1 s soft: the isolate is retired; 2 s hard:
 * it is killed; local-stack/supabase/edge_limits.ts), so the budget is the isolate's CPU
 * as its {@link CpuMeter} reads it (plus the CPU the isolate's pages in flight will still
 * use), and this request's wall time. When the budget runs
 * out it gives the segment back and calls the worker again, so a new request goes on
 * from the checkpoint. While segments wait and fewer than `maxConcurrent` run, each worker that
 * claims one wakes another, so a job's segments are scanned in parallel. Every read takes
 * its turn in the job's read ledger (`sync.backfill_read_turn`, booked with the claim and
 * with each page's statement), so the table's read budget is shared by whichever of its
 * segments are in flight, in whichever isolate. The Scan, its
 * leases and checkpoints are functions-shared/segment_scan.ts, shared with the validator.
 *
 * @module
 */

import type postgres from "postgres";
import type { DynamoClient } from "./dynamo_http.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import type { PacingDeps } from "./scan_pacing.ts";
import { ScanLanes } from "./scan_lanes.ts";
import { scanSegments } from "./segment_scan.ts";
import type { Claim, ScanResult } from "./segment_work.ts";
import { commitPage } from "./backfill_page.ts";
import { PagesInFlight } from "./pages_in_flight.ts";
import { inMeterTerms, requestCpuBudget } from "./cpu_meter.ts";
import { LedgerTurns } from "./read_turns.ts";
import { sweepDue } from "./backfill_sweep.ts";
import { laneId } from "./scan_lanes.ts";

export { LEASE_LOST } from "./segment_work.ts";
export { PagesInFlight } from "./pages_in_flight.ts";
export type { Claim } from "./segment_work.ts";

/**
 * The isolate's CPU that its pages may reach at most: the hosted runtime kills an isolate
 * at 2 s of CPU ("Maximum CPU Time: 2s", https://supabase.com/docs/guides/functions/limits;
 * local-stack/supabase/edge_limits.ts, hard limit), less 300 ms for what the estimate
 * of a page's CPU misses. A page starts only if the pages in flight and it stay below.
 */
export const CPU_PAGE_CEILING_MS = 1_700;

/** What the worker needs. */
export interface WorkerDeps {
  sql: postgres.Sql;
  dynamo: (region: string) => DynamoClient;
  /** Starts another run of the import-worker (an HTTP call to itself). */
  wake: () => Promise<void>;
  /**
   * Hands the run's work on once it stopped for its budget. Default: `wake`. The
   * import-worker defers it until the run has given back its place in the isolate
   * (run_gate.ts): a request that landed on this isolate while the place was held would
   * be turned away, and nothing would go on until pg_cron's next tick.
   */
  handOn?: () => Promise<void>;
  /** The isolate's CPU so far (functions-shared/cpu_meter.ts). */
  cpu: CpuMeter;
  /** Hand on once the isolate has used this much CPU, boot included: the CPU budget. */
  cpuBudgetMs: number;
  /** Stop after this much wall time. */
  wallBudgetMs: number;
  maxConcurrent: number;
  /**
   * Segments one run scans at once (IMPORT_WORKER_SEGMENTS_PER_RUN): a paced segment
   * mostly waits for its turn, so a run keeps several in flight. Default 1.
   */
  segmentsPerRun?: number;
  /**
   * The isolate's pages in flight, shared by its runs (one per isolate, made at cold
   * start): the budget counts what they will still cost. Default: the run's own.
   */
  inFlight?: PagesInFlight;
  /**
   * A table's read budget for a backfill, in read units per second, shared by the job's
   * segments through its read ledger (read_turns.ts; the setting
   * IMPORT_WORKER_MAX_RCU_PER_SECOND).
   */
  maxRcuPerSecond: number;
  /** Clock and randomness of the pacing and retries (tests replace them). */
  pacing?: PacingDeps;
  log?: (line: string) => void;
}

/** What one run did. */
export type RunResult = ScanResult;

/**
 * Wakes another run while segments wait and fewer than `maxConcurrent` are in flight.
 *
 * The statement carries a parameter on purpose: postgres.js sends a statement without
 * one in a single message and then lets the next statement wait on the same connection
 * behind it (pipelining); with parameters it first asks Postgres for their types (Parse,
 * Describe, Flush) and sends the values when the answer comes. A statement with
 * parameters pipelined behind one without lost its answer in the transaction pooler:
 * PgBouncer hands the server connection back to its pool at the first statement's end
 * (ReadyForQuery), so the second one's ParseComplete and ParameterDescription reach no
 * client ("got packet '1' from server when not linked" in its log) and the worker waits
 * for ever, holding its segment's lease (60 s). Every statement of the worker has a
 * parameter, so none is pipelined behind another.
 */
async function wakeAnotherIfUseful(deps: WorkerDeps): Promise<void> {
  const [state] = await deps.sql`
    select sync.backfill_work_pending()
           and (select count(*)::int from sync.backfill_segments s
                join sync.backfill_jobs j on j.id = s.job_id
                where j.checksum_run_id is null and j.export_arn is null and s.status = 'running'
                  and s.lease_expires_at > now()) < ${deps.maxConcurrent} as wake`;
  if (state.wake) await deps.wake();
}

/** How long a backfill's end waits, no chunk run, before a run's start moves it on. */
export const SWEEP_IDLE_SECONDS = 60;

/**
 * Runs until no segment waits or the budget is spent: `segmentsPerRun` lanes, each
 * claiming and scanning one segment at a time. The first lane to find the budget spent
 * stops the others (their pacing waits end; each gives its segment back at its next
 * page), and the run hands on once, after every lane gave its segment back, so that the
 * woken run finds them all waiting.
 */
export async function runWorker(deps: WorkerDeps, worker: string): Promise<RunResult> {
  const log = deps.log ?? (() => {});
  const started = performance.now();
  const inFlight = deps.inFlight ?? new PagesInFlight();
  const lanes = Math.max(1, deps.segmentsPerRun ?? 1);
  const lanesOfRun = new ScanLanes();
  let wokeAnother = false;
  // The CPU left under the hard limit's ceiling once the pages in flight are counted (the
  // ceiling in the meter's terms: as far up as it is known to run ahead, cpu_meter.ts),
  // and whether a whole page of the claim's table fits in it.
  const roomMs = () =>
    inMeterTerms(deps.cpu, CPU_PAGE_CEILING_MS) - deps.cpu.usedMs() - inFlight.expectedMs();
  const roomForAPage = (claim: Claim) => roomMs() > inFlight.wholePageMs(claim.source_table);
  const budgetMs = requestCpuBudget(deps.cpu, deps.cpuBudgetMs, CPU_PAGE_CEILING_MS);
  const retired = () =>
    lanesOfRun.stopped || deps.cpu.usedMs() >= budgetMs ||
    performance.now() - started >= deps.wallBudgetMs;
  // While the isolate has no room for another page but is not spent, wait for a page in
  // flight to end instead of handing on: a run woken now would land on this same isolate
  // (not yet retired), find no room either, and hand on again and again.
  const room = async (claim: Claim) => {
    while (!retired() && !roomForAPage(claim) && inFlight.count > 0) await inFlight.oneEnded();
  };
  // A whole page when it fits; else, with no page in flight, a page sized to the room
  // (pages_in_flight.ts); else, with pages in flight, a wait for room again: runs that one
  // page's end woke all found its room, and the first to get here took it (handing on
  // instead, the others' successors would land here and find no room either); else none:
  // the budget is spent. The room is checked and taken in one step.
  const pageItems = (claim: Claim): number | "wait" => {
    const items = retired() ? 0 : inFlight.pageItems(claim.source_table, claim.page_size, roomMs());
    if (items > 0) {
      inFlight.begin(deps.cpu.usedMs());
      return items;
    }
    if (!retired() && inFlight.count > 0) return "wait";
    lanesOfRun.stop();
    return 0;
  };
  const lane = (i: number) => {
    // Each lane holds its segments under an id of its own: a lane whose lease lapsed
    // during a slow page must not pass the checkpoint of a lane of the same run that
    // took the segment over (their checkpoints would both commit, the later one behind).
    const id = laneId(worker, i, lanes);
    const turns = new LedgerTurns(deps.sql, id, deps.maxRcuPerSecond);
    // The lane's page written last, until it ends (a lane reads one page at a time).
    let lastMapped: { items: number; ms: number } | undefined;
    return scanSegments(deps, id, {
      claim: () => lanesOfRun.stopped ? Promise.resolve(undefined) : turns.claim(),
      turns,
      // One wake check per run: its other lanes' claims need none.
      wakeAnother: async () => {
        if (wokeAnother) return;
        wokeAnother = true;
        await wakeAnotherIfUseful(deps);
      },
      pageItems,
      room,
      wallLeftMs: () => deps.wallBudgetMs - (performance.now() - started),
      stopping: lanesOfRun.stopping,
      // What the page mapped tells the isolate what an item of its table costs (how a
      // page too big to fit is sized), and a page sized to the room counts as its share.
      pageEnded: (claim, limit) => {
        inFlight.end(deps.cpu.usedMs(), {
          table: claim.source_table,
          limit,
          pageSize: claim.page_size,
          mapped: lastMapped,
        });
        lastMapped = undefined;
      },
      // The run hands on once, below, when every lane has given its segment back. A lane
      // whose turn comes past the wall budget stops the others (they would claim the
      // segment it gave back, only to give it back too).
      handOn: () => {
        lanesOfRun.stop();
        return Promise.resolve();
      },
      describe: (claim) =>
        `backfill job ${claim.job_id} segment ${claim.segment}/${claim.total_segments} of ${claim.source_table}`,
      commitPage: async (claim, page, checkpoint) => {
        const committed = await commitPage(deps.sql, claim, page, checkpoint, {
          cpu: deps.cpu,
          log,
          rate: deps.maxRcuPerSecond,
          lockWaitLimited: true,
        });
        if (committed.mappedMs !== undefined) {
          lastMapped = { items: page.items.length, ms: committed.mappedMs };
        }
        return committed;
      },
    });
  };
  // The run's lanes stop together, and with every run of the isolate whose budget a page
  // of any of them passes (PagesInFlight.onCpuPast; a run that came after the isolate
  // passed the budget has a higher one, cpu_meter.ts): then `retired()` holds, so a lane
  // whose wait for a turn ends gives its segment back.
  const cancel = inFlight.onCpuPast(budgetMs, () => lanesOfRun.stop());
  // A backfill's end left to the workers that no chunk moved on for a minute moves on by
  // one chunk at a run's start, not only once no segment is left to claim: a small
  // table's end behind a long Scan of another (the visitors at 100x, most of an hour) kept
  // its job running, its table stale and its validations waiting all that time (found by
  // a review of the backfill). Not sooner: a chunk at every run's start delayed the runs'
  // Scans (the bench's small tables took 9 s instead of 4). A chunk that fails is counted
  // by sweepDue and does not keep this run from its Scans.
  let chunkAsked = false;
  await sweepDue(
    deps.sql,
    worker,
    () => {
      const spent = chunkAsked || retired();
      chunkAsked = true;
      return spent;
    },
    log,
    SWEEP_IDLE_SECONDS,
  ).catch((error) => log(`a backfill's end could not move on: ${(error as Error).message}`));
  for (let i = 0; i < lanes; i++) lanesOfRun.add(lane(i));
  const { total, failure } = await lanesOfRun.settle();
  cancel();
  // No segment left to claim: the ends of backfills left to the workers, chunk by chunk
  // (backfill_sweep.ts), within the run's budget.
  if (!failure && total.stoppedBy === "no work" && !lanesOfRun.stopped) {
    if (await sweepDue(deps.sql, worker, retired, log) === "budget") total.stoppedBy = "budget";
  }
  // Stopped from outside, a run's lane may have been between segments, claiming none:
  // the segments left still need a request.
  if (total.stoppedBy === "budget" || lanesOfRun.stopped) await (deps.handOn ?? deps.wake)();
  if (failure) throw failure;
  return total;
}
