/**
 * The validator's reads of the source (docs/sync-semantics.md, "Verification"): the
 * parallel Scan on the backfill's leased segments (functions-shared/segment_scan.ts),
 * eventually consistent, each page's expected rows (and unmappable items) compared or
 * staged in Postgres in the transaction that moves the segment's checkpoint. (What the
 * looks' consistent point reads find is staged by validator_look_chunk.ts.)
 *
 * @module
 */

import { encodeJson } from "./dynamo_encoder.ts";
import type { TableSpec } from "./table_registry.ts";
import { expectedPage, type Item } from "./validator_plan.ts";
import { estimatingMeter, STATEMENT_CPU_MS } from "./cpu_meter.ts";
import { IsolatePages } from "./isolate_pages.ts";
import { LedgerTurns, turnOf, turnSettlement } from "./read_turns.ts";
import { laneId, ScanLanes } from "./scan_lanes.ts";
import { scanSegments } from "./segment_scan.ts";
import type { Checkpoint, Claim, ScanPage, ScanResult } from "./segment_work.ts";
import { IN_FLIGHT_CEILING, onMeter, requestCpuMs, type ValidatorDeps } from "./validator_deps.ts";

/**
 * The CPU a page is counted at before this request has measured one: more than the
 * validator's dearest page seen (a cold isolate's first visitors page of 1.3 MB, about
 * 190 ms), so that another run's first page does not take the isolate past the limit.
 */
export const UNMEASURED_PAGE_MS = 250;

/** A table's read budget for a validation when VALIDATOR_MAX_RCU_PER_SECOND is not given. */
const DEFAULT_RCU_PER_SECOND = 250;

/** The JSON of the expected rows of some items (none when all are soft deletes or unmappable). */
function expectedJson(spec: TableSpec, items: Item[]) {
  const { rows, unmappable } = expectedPage(spec, items, new Date());
  return { json: rows.length > 0 ? encodeJson(rows) : undefined, unmappable };
}

/**
 * Scans the run's segments (the backfill's leased Scan, functions-shared/segment_scan.ts),
 * `segmentsAtOnce` of them at once in this request, sharing the table's read budget and
 * the request's CPU budget. Each page goes, in the transaction that moves its segment's
 * checkpoint, either straight into the comparison (a streamed run, i.e. a plain table:
 * `sync.check_checksum_page` compares the page's rows with the target's rows of the same
 * keys and keeps only the divergent keys and the keys seen) or into the staging
 * (`sync.stage_checksum_items`, the collapsed tables); with its item count and unmappable
 * items. Returns what the request did: "no work" once no segment of the run is left to
 * claim (done, or leased by another request), "budget" when the budget ran out first
 * (the segments were given back), "throttled" when a Scan kept failing (its segment was
 * given back; the heartbeat goes on later). `wallLeftMs`, the request's wall budget left:
 * a wait for a read turn ends by then, the segment given back.
 *
 * One request scans a run, several segments at once, rather than one segment in each of
 * several requests: the Edge Runtime sends concurrent requests to the same isolate
 * (supabase/edge-runtime's per_worker policy), where the validator takes a few runs at
 * a time for the CPU limit (run_gate.ts), so a second request of the run would only wait
 * there for a place or share the isolate's CPU with the first.
 */
export async function scanForRun(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  worker: string,
  overBudget: () => boolean,
  wallLeftMs?: () => number,
): Promise<ScanResult> {
  const segmentsAtOnce = deps.segmentsAtOnce ?? 4;
  // The pages in flight (scanned, not yet written) each cost up to what a page has cost
  // so far once they arrive (their mapping, the SDK's parsing, the driver's encoding): a
  // page starts only while the budget is not spent and the pages in flight of every
  // request of the isolate (isolate_pages.ts: the isolate takes VALIDATOR_RUNS_PER_ISOLATE
  // runs at once) with it stay within IN_FLIGHT_CEILING of the budget, so the isolate
  // stays well under the hard limit (2 s, docs/interfaces.md, "The local stack") however
  // many segments scan at once. Until the first page has been measured, which may be far
  // dearer on another table (a visitors page is 1.3 MB), one page is in flight at a time,
  // counted as UNMEASURED_PAGE_MS. A segment that finds no room waits for a page in flight
  // (its request's or another's) to end, rather than hand on: the request woken would land
  // on this isolate, not yet retired, and find no room either. A request's first page
  // starts once no other request has pages in flight, whatever its estimate, so that
  // every request reads at least one page unless the isolate's budget is spent.
  const startCpu = deps.cpu?.usedMs() ?? 0;
  let inFlight = 0;
  let pagesDone = 0;
  let pageCpuMs = 0;
  let measured: () => void = () => {};
  const firstMeasured = new Promise<void>((resolve) => (measured = resolve));
  const perPage = () =>
    pagesDone === 0 ? UNMEASURED_PAGE_MS : 1.25 *
      Math.max(pageCpuMs, ((deps.cpu?.usedMs() ?? 0) - startCpu) / pagesDone);
  const isolate = deps.isolatePages ?? new IsolatePages();
  const cpuNow = () => deps.cpu?.usedMs() ?? 0;
  /** The CPU the other requests' pages in flight are expected to cost. */
  const others = () => isolate.expectedMs() - inFlight * perPage();
  /** Whether another page of this request fits under the ceiling with every page in flight. */
  const roomForAPage = () =>
    deps.budget === undefined || (pagesDone === 0 && others() <= 0) ||
    cpuNow() + isolate.expectedMs() + perPage() <
      deps.budget.cpuMs * IN_FLIGHT_CEILING + (deps.cpu?.aheadMs() ?? 0);
  // Once one segment must stop (the request's budget is spent: CPU, wall time or pages;
  // or the isolate has no room for another page in flight, which comes near the CPU
  // budget anyway), the others stop at once (a wait for a turn ends, and each gives its
  // segment back, or its page in flight ends first) and claim no other, and the request
  // hands on now: waiting for each of their next turns to come, up to a page's turn each,
  // no segment of the run read meanwhile. A lane that fails stops the others too.
  const lanes = new ScanLanes();
  /**
   * Waits for room for a page while pages in flight may end and make some, and counts the
   * page in flight as it finds the room (one step: two lanes woken by one page's end
   * cannot both take it). Whether it found room.
   */
  const room = (reserve: () => void) =>
    isolate.reserveWhenRoom(
      roomForAPage,
      () =>
        isolate.expectedMs() > 0 &&
        cpuNow() < requestCpuMs(deps.budget),
      () => lanes.stopped,
      () => {
        inFlight++;
        reserve();
      },
    );
  const [mode] = await deps.sql<{ streamed: boolean }[]>`
    select streamed from public.sync_checksums where id = ${run}`;
  const streamed = mode?.streamed === true;
  const rate = deps.maxRcuPerSecond ?? DEFAULT_RCU_PER_SECOND;
  // The run's Scan reads by its job's read ledger, as the backfill does: the table's
  // budget goes to whichever of its segments are in flight (read_turns.ts).
  const scanDeps = {
    sql: deps.sql,
    dynamo: deps.dynamo,
    cpu: deps.cpu ?? estimatingMeter(() => 0, 1, 0),
    // Eventually consistent: half the read units of a consistent Scan ("50
    // ReadCapacityUnits per second provides 100 eventually consistent ReadCapacityUnits per
    // second", https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/dynamodb/aws.sdk.kotlin.services.dynamodb.model/-provisioned-throughput-description/read-capacity-units.html),
    // so half the time at the table's read budget. Exact all the same: a page "might not
    // contain the results from other recently completed write operations" (ScanRequest's
    // ConsistentRead, same guide), and then the key differs from the target, and every key
    // that differs is read again consistently (point_reads.ts) before it is reported
    // (validator_looks.ts, recheckLook; docs/sync-semantics.md, "Verification").
    consistentRead: deps.consistentScan ?? false,
    pacing: deps.pacing,
    log: deps.log,
  };
  const work = {
    // Another request would land on this isolate's gate (VALIDATOR_RUNS_PER_ISOLATE):
    // a run's segments are scanned here, and by the requests it hands on to.
    wakeAnother: async () => {},
    stopping: lanes.stopping,
    // A wait for a turn ends by the request's wall budget: at a low
    // VALIDATOR_MAX_RCU_PER_SECOND every lane may be waiting, none reading, and a request
    // asleep past the platform's wall-clock limit is killed with its turns unused.
    wallLeftMs,
    describe: (claim: Claim) =>
      `validation run ${run} segment ${claim.segment}/${claim.total_segments} of ${claim.source_table}`,
    // The page is mapped before its transaction, so no connection is held while the
    // isolate computes (the isolate's pool is small, SYNC_DB_POOL_MAX, and its segments
    // share it), then written in one transaction whose statements are sent at once
    // (pipelined): the compare (or staging), the run's count, the segment's checkpoint and
    // its next read's turn (settling what this read cost).
    commitPage: async (
      claim: Claim,
      page: ScanPage,
      checkpoint: Checkpoint,
      mapped: () => void,
    ) => {
      const cpu = deps.cpu;
      const settled = turnSettlement(checkpoint);
      const before = cpu?.usedMs() ?? 0;
      const { json, unmappable } = onMeter(deps, () => expectedJson(spec, page.items));
      // The page's transaction, outside any measured step: charged, as each statement of
      // a wait is (cpu_meter.ts). Without it, a CI run's validator isolate reading pages
      // of 2 items under npm test's load was killed at the 2 s hard limit while its
      // estimate read 1,102 ms.
      cpu?.charge(STATEMENT_CPU_MS);
      pageCpuMs = Math.max(pageCpuMs, (cpu?.usedMs() ?? 0) - before);
      pagesDone++;
      mapped();
      const answers = await deps.sql.begin((tx) => {
        const statements = [];
        if (json && streamed) {
          statements.push(
            tx`select sync.check_checksum_page(${run}, ${spec.targetTable}, ${json}::text::jsonb)`,
          );
        } else if (json) {
          statements.push(
            tx`select sync.stage_checksum_items(${run}, ${spec.targetTable}, ${json}::text::jsonb)`,
          );
        }
        statements.push(
          tx`update public.sync_checksums
             set source_items = source_items + ${page.items.length}, progress_at = now()
             where id = ${run}`,
        );
        // Kept aside, as the divergent keys are, and written to the run's list once, when
        // its compare ends (20261128003300_validation_findings_staged.sql): appended here,
        // the list was written whole again on every page.
        if (unmappable.length > 0) {
          statements.push(
            tx`insert into sync.checksum_unmappable (run_id, item)
               select ${run}, x from jsonb_array_elements(${
              JSON.stringify(unmappable)
            }::text::jsonb) x`,
          );
        }
        statements.push(
          tx`select sync.checkpoint_segment(${claim.job_id}, ${claim.segment}, ${checkpoint.worker},
                     ${checkpoint.nextKey}::text::jsonb, ${checkpoint.items}, ${0}, ${checkpoint.done})`,
          tx`select sync.backfill_read_turn(${claim.job_id}, ${rate}, ${settled.spent},
                     ${settled.booked}, ${settled.next}, ${settled.catchUp}) as turn`,
        );
        // postgres.js sends a query once it is awaited: Promise.all sends them in order
        // without waiting for an answer in between.
        return Promise.all(statements);
      });
      // The other segments start now that the page's cost is measured and settled in the
      // job's read ledger: claimed before, each would be booked at the ledger's first
      // estimate (a consistent 1 MB page), a second apart even on an empty table.
      measured();
      const [booked] = answers.at(-1) as { turn?: unknown }[];
      return { rows: 0, nextTurn: turnOf(booked?.turn) };
    },
  };
  // A lane that fails stops the others; the request then fails (checksum_validator.ts).
  // Each lane holds its segments under an id of its own (scan_lanes.ts, laneId).
  let lanesStarted = 0;
  const lane = (): Promise<ScanResult> => {
    const id = laneId(worker, lanesStarted++, segmentsAtOnce);
    const turns = new LedgerTurns(deps.sql, id, rate);
    // This lane's page counted in flight (by `room`) and not yet mapped: its cost is known
    // once mapped; a page that ends otherwise (given up, failed, or never started: the
    // request stopped) stops counting then.
    let pending = false;
    const settle = () => {
      if (!pending) return;
      pending = false;
      inFlight = Math.max(0, inFlight - 1);
      isolate.pageEnded();
    };
    return scanSegments(scanDeps, id, {
      ...work,
      // No new segment once the request stops: it would only be given back.
      claim: () => lanes.stopped ? Promise.resolve(undefined) : turns.claim(run),
      turns,
      // The segment stops when it found no room, or the request's budget is spent; a page
      // it reads is whole.
      pageItems: (claim) => {
        if (!lanes.stopped && pending && !overBudget()) return claim.page_size;
        settle();
        lanes.stop();
        return 0;
      },
      room: async () => {
        await room(() => (pending = true));
      },
      commitPage: (claim, page, checkpoint) => work.commitPage(claim, page, checkpoint, settle),
      pageEnded: settle,
      // A lane whose turn comes past the wall budget stops the others too: a lane starting
      // later would claim the segment it gave back.
      handOn: () => {
        lanes.stop();
        return Promise.resolve();
      },
    }).catch((error) => {
      lanes.stop();
      throw error;
    });
  };
  const leaveIsolate = isolate.add(() => inFlight * perPage());
  try {
    const first = lanes.add(lane());
    for (let i = 1; i < segmentsAtOnce; i++) {
      // The others start once the first page is measured, or once the first scan stops
      // without one (nothing to scan, or the budget).
      lanes.add(
        Promise.race([firstMeasured, first.then(() => {}, () => {})]).then(lane),
      );
    }
    const { total, failure } = await lanes.settle();
    if (failure) throw failure;
    return total;
  } finally {
    leaveIsolate();
  }
}
