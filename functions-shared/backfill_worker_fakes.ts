/**
 * What the import-worker's tests share: a fake database that hands out claims and plays
 * the checkpoints, releases and merges of a backfill; a fake DynamoDB that answers Scan
 * page by page; and the worker's dependencies around them.
 *
 * @module
 */

import type { Claim } from "./backfill_worker.ts";
import assert from "node:assert/strict";
import type { WorkerDeps } from "./backfill_worker.ts";
import {
  fakeClock,
  fakeCpuMeter,
  fakeDynamo,
  fakeSql,
  type SentCommand,
  type Statement,
} from "./testing_fakes.ts";

export const SEGMENTS = "firespring-backdoor-segments-dev";
export const WHERE = `backfill job 7 segment 1/4 of ${SEGMENTS}`;

export const claim = (over: Partial<Claim> = {}): Claim => ({
  job_id: "7",
  segment: 1,
  total_segments: 4,
  source_table: SEGMENTS,
  target_table: "firespring_segments",
  region: "us-east-1",
  exclusive_start_key: null,
  page_size: 2,
  ...over,
});

export const item = (id: string, value = "5") => ({
  segment_id: { S: id },
  name: { S: `name ${id}` },
  value: { N: value },
});

export const keyOf = (id: string) => ({ segment_id: { S: id } });

/**
 * A database that hands out `claims` one by one, answers the wake check with
 * `pending`/`running`, merges every change, and runs `checkpoint` for each checkpoint.
 */
export function backfillDb(
  claims: Claim[],
  options: {
    pending?: boolean;
    running?: number;
    checkpoint?: (s: Statement) => unknown[];
    release?: (s: Statement) => unknown[];
    /**
     * The read ledger's turns ({wait_ms, units}), handed out in order to the claims and
     * the pages' statements that book one (none once they run out).
     */
    turns?: { wait_ms: number; units: number }[];
    /** The answer to a hold of a lease during a long wait (default: held). */
    hold?: (s: Statement) => unknown[];
    /** Whether a failed attempt is the segment's last, failing its job (default: no). */
    lastAttempt?: boolean;
    /** Jobs whose end is left to the workers (sync.claim_sweep), in order (default none). */
    sweeps?: string[];
    /** The answer to a careful page's wait for the merge lock (default: taken). */
    lockWait?: (s: Statement) => unknown[];
  } = {},
) {
  const queue = [...claims];
  const turns = [...(options.turns ?? [])];
  const turn = (s: Statement) =>
    s.text.includes("sync.backfill_read_turn") ? turns.shift() ?? null : undefined;
  return fakeSql((s) => {
    if (s.text.includes("sync.merge_changes") && s.text.includes("sync.checkpoint_segment")) {
      // The page and its checkpoint in one statement (backfill_page.ts).
      options.checkpoint?.(s);
      return [{
        applied: (JSON.parse(String(s.values[6])) as unknown[]).length,
        turn: turn(s),
      }];
    }
    if (s.text.includes("sync.claim_segment")) {
      const next = queue.shift();
      return next ? [{ ...next, turn: turn(s) }] : [];
    }
    if (s.text.includes("sync.claim_sweep(")) {
      // Ends left to the workers (backfill_sweep.ts): each a job id (of the segments
      // table), swept in one chunk.
      const job = options.sweeps?.shift() ?? null;
      return [{ job, table: job && SEGMENTS }];
    }
    if (s.text.includes("select status from sync.backfill_jobs")) return [{ status: "done" }];
    if (s.text.includes("sync.sweep_unseen_chunk(")) return [{ over: true }];
    if (s.text.includes("sync.backfill_work_pending")) {
      // The statement compares the segments in flight with its parameter, maxConcurrent.
      return [{ wake: (options.pending ?? false) && (options.running ?? 0) < Number(s.values[0]) }];
    }
    if (s.text.includes("sync.merge_changes")) {
      return [{ applied: (JSON.parse(String(s.values[1])) as unknown[]).length }];
    }
    // A Scan page's wait for its table's merge lock, before its careful merges.
    if (s.text.startsWith("select sync.wait_for_merge_lock(")) {
      return options.lockWait?.(s) ?? [{ wait_for_merge_lock: s.values[0] }];
    }
    if (s.text.includes("insert into sync.dead_letters")) return [];
    // A read settled on its own (read_turns.ts, settle): a turn given back, say.
    if (s.text.startsWith("select sync.backfill_read_turn(")) return [];
    if (s.text.includes("sync.checkpoint_segment")) {
      return options.checkpoint?.(s) ?? [{ turn: turn(s) }];
    }
    if (s.text.includes("sync.release_segment")) return options.release?.(s) ?? [];
    if (s.text.includes("sync.note_failed_attempt")) {
      return [{ failed: options.lastAttempt ?? false }];
    }
    if (s.text.startsWith("update sync.backfill_segments s set lease_expires_at")) {
      return options.hold?.(s) ?? [{ held: 1 }];
    }
    if (s.text.includes("sync.fail_segment")) return [];
    return undefined;
  });
}

/** A DynamoDB whose Scan answers from `pages`, keyed by the JSON of ExclusiveStartKey. */
export function pagedDynamo(
  pages: Record<string, { Items: unknown[]; LastEvaluatedKey?: unknown; units?: number }>,
  before: (command: SentCommand) => void = () => {},
) {
  return fakeDynamo((command) => {
    before(command);
    assert.equal(command.name, "ScanCommand");
    const start = JSON.stringify(command.input.ExclusiveStartKey ?? null);
    const page = pages[start];
    if (!page) throw new Error(`no page starts at ${start}`);
    return {
      Items: page.Items,
      LastEvaluatedKey: page.LastEvaluatedKey,
      ConsumedCapacity: page.units === undefined ? undefined : { CapacityUnits: page.units },
    };
  });
}

export function workerDeps(
  db: ReturnType<typeof backfillDb>,
  dynamo: ReturnType<typeof fakeDynamo>,
  extra: Partial<WorkerDeps> = {},
) {
  const lines: string[] = [];
  const woken = { count: 0 };
  const deps: WorkerDeps = {
    sql: db.sql,
    dynamo: dynamo.dynamo,
    wake: () => {
      woken.count++;
      return Promise.resolve();
    },
    cpu: fakeCpuMeter(),
    cpuBudgetMs: 60_000,
    // Short, so that a regression that loops over pages fails in seconds rather than hangs.
    wallBudgetMs: 2_000,
    maxConcurrent: 4,
    maxRcuPerSecond: 1_000_000,
    pacing: fakeClock(),
    log: (line) => lines.push(line),
    ...extra,
  };
  return { deps, lines, woken };
}

export const twoPages = {
  "null": { Items: [item("a"), item("b")], LastEvaluatedKey: keyOf("b") },
  [JSON.stringify(keyOf("b"))]: { Items: [item("c")] },
};

/**
 * A checkpoint's arguments as sync.checkpoint_segment takes them (job, segment, worker,
 * next key, items, rows, done), from the one statement of a page (backfill_page.ts;
 * rows: the changes it carried, which the fake merge applies all) or from the careful
 * path's own call.
 */
export function checkpointArgs(s: Statement): unknown[] {
  // The read turn's arguments come after the checkpoint's (backfill_page.ts).
  if (!s.text.includes("sync.merge_changes")) return s.values.slice(0, 7);
  const [job, segment, worker, nextKey, items, , json, done] = s.values;
  const rows = json === null ? 0 : (JSON.parse(String(json)) as unknown[]).length;
  return [job, segment, worker, nextKey, items, rows, done];
}
