/**
 * What the validator's tests share: an in-memory stand-in for the validation runs'
 * SQL (20261128001100_validator_segments.sql) — runs and their phases, their Scan's
 * leased segments and checkpoints, the compare's slices, the rechecks, the run lease
 * and the end of a run — playing each statement the validator sends (a run's start and
 * lease here, its Scan's in validator_scan_fakes.ts, the compare's and later ones in
 * validator_compare_fakes.ts).
 *
 * @module
 */

import type { ValidatorDeps } from "./validator_deps.ts";
import type { Divergence } from "./validator_compare.ts";
import type { RowKey } from "./validator_plan.ts";
import { byTargetTable } from "./table_registry.ts";
import {
  fakeClock,
  fakeDynamo,
  fakeSql,
  type SentCommand,
  type Statement,
} from "./testing_fakes.ts";
import { answerScan } from "./validator_scan_fakes.ts";
import { answerCompare } from "./validator_compare_fakes.ts";

/** When the fake compare saw the divergences (the run's compared_at). */
export const SEEN = new Date("2026-02-01T12:00:00Z");

/** One validation run as the fake holds it. */
export interface FakeRun {
  id: number;
  target: string;
  status: "queued" | "running" | "done" | "failed";
  phase: string;
  repair: boolean;
  segments: { status: "pending" | "running" | "done"; key: unknown; owner?: string }[];
  jobError?: string;
  sourceItems: number;
  unmappable: unknown[];
  missing: unknown[];
  unexpected: unknown[];
  different: unknown[];
  slices: number;
  looks: number;
  /** The look under way: its keys (null between looks) and how many were read again. */
  recheckKeys: unknown[] | null;
  recheckRead: number;
  /** The look's reads' bounds (recheck_read_from, recheck_read_before), ISO or infinity. */
  recheckReadFrom?: string | null;
  recheckReadBefore?: string | null;
  /** How many of its divergent keys its repair read again and applied (repair_read). */
  repairRead: number;
  match?: boolean;
  error?: string;
  leaseOwner?: string;
  repaired: boolean;
  revalidation?: number;
  /** The backfill a repair of too many keys queued (sync.heal_table). */
  healingJob?: number;
  /** Expected rows staged (sync.stage_checksum_items) or, streamed, compared page by page. */
  staged: number;
  /** Whether pages are compared as they come (a plain table; sync.check_checksum_page). */
  streamed: boolean;
}

/** The fake's options: what the compare finds per run and look, and faults. */
export interface RunsOptions {
  /**
   * Divergences of run `run` at look `look` (0: the compare; 1..3 the rechecks), at the
   * look's `compare`th compare with the target (0, then 1.. as the stream catches up).
   */
  divergent?: (run: number, look: number, compare: number) => Divergence[];
  /** Slices of keys the compare takes (statements of `sync.compare_checksum_range`). */
  slices?: number;
  /** Whether the run lease is lost at the next hold (another request took over). */
  loseRunLease?: () => boolean;
  /** Throws this from every statement (the database is down). */
  fail?: Error;
  /** Fails the statements it answers an error for (the database lost mid-way). */
  failWhen?: (statement: Statement) => Error | undefined;
  /**
   * The read ledger's turns ({wait_ms, units}), handed out in order to the claims and the
   * pages' statements that book one (none once they run out: read at once).
   */
  turns?: { wait_ms: number; units: number }[];
  /** Awaited before each statement is answered (a slow statement, to order events). */
  beforeAnswer?: (s: Statement) => Promise<void>;
  /**
   * The keys `sync.keys_changed_since` finds changed since `since` (an ISO instant)
   * among `keys`; none by default. A collapsed table's are asked with the run's id
   * (`sync.collapsed_keys_changed_since`).
   */
  movedOn?: (keys: RowKey[], since: string, run?: number) => RowKey[];
}

/** What the fake's statements answer from: its runs and helpers (validator_*_fakes.ts). */
export interface FakeRunsState {
  runs: Map<number, FakeRun>;
  /** The runs started with a request key (sync_checksums.request_key). */
  runsByKey: Map<string, FakeRun>;
  /** The tables marked stale (sync.heal_table), with the reason. */
  staleMarks: { table: string; reason: string }[];
  options: RunsOptions;
  /** Slices of keys the compare takes. */
  slices: number;
  /** The read ledger's turns left. */
  turns: { wait_ms: number; units: number }[];
  /** Compares with the target in each run's look under way. */
  compares: Map<number, number>;
  runOf: (value: unknown) => FakeRun;
  /** Sets the run's divergent lists from `divergent`. */
  byKind: (run: FakeRun, divergent: Divergence[]) => void;
  /** Refuses (SY001) a worker that no longer holds the run's lease. */
  hold: (run: FakeRun, worker: unknown) => void;
  /** When the compare saw the divergences: {@link SEEN}. */
  seen: Date;
}

/** A fake database of validation runs; runs created get ids from 42. */
export function runsDb(options: RunsOptions = {}) {
  const runs = new Map<number, FakeRun>();
  /** The runs started with a request key (sync_checksums.request_key). */
  const runsByKey = new Map<string, FakeRun>();
  /** The tables marked stale (sync.heal_table), with the reason. */
  const staleMarks: { table: string; reason: string }[] = [];
  let nextId = 42;
  const slices = options.slices ?? 8;
  const turns = [...(options.turns ?? [])];
  const newRun = (target: string, repair: boolean, segments: number, id = nextId++) => {
    const run: FakeRun = {
      id,
      target,
      status: "running",
      phase: "scan",
      repair,
      segments: Array.from({ length: segments }, () => ({ status: "pending", key: null })),
      sourceItems: 0,
      unmappable: [],
      missing: [],
      unexpected: [],
      different: [],
      slices: 0,
      looks: 0,
      recheckKeys: null,
      recheckRead: 0,
      repairRead: 0,
      repaired: false,
      staged: 0,
      streamed: byTargetTable(target)?.collapse === undefined,
    };
    runs.set(id, run);
    return run;
  };
  const runOf = (value: unknown) => runs.get(Number(value))!;
  /** Compares with the target in each run's look under way. */
  const compares = new Map<number, number>();
  const byKind = (run: FakeRun, divergent: Divergence[]) => {
    for (const kind of ["missing", "unexpected", "different"] as const) {
      run[kind] = divergent.filter((d) => d.kind === kind).map((d) => d.key);
    }
  };
  const hold = (run: FakeRun, worker: unknown) => {
    if (options.loseRunLease?.() || run.leaseOwner !== worker) {
      throw Object.assign(
        new Error(`validation run ${run.id}: request ${worker} no longer holds it`),
        {
          code: "SY001",
        },
      );
    }
  };
  const state: FakeRunsState = {
    runs,
    runsByKey,
    staleMarks,
    options,
    slices,
    turns,
    compares,
    runOf,
    byKind,
    hold,
    seen: SEEN,
  };
  const answer = (s: Statement): unknown[] | undefined => {
    if (options.fail) throw options.fail;
    const failure = options.failWhen?.(s);
    if (failure) throw failure;
    const t = s.text;
    const v = s.values;
    if (t.includes("sync.start_validation(")) {
      // With a request key (v[5]), the run it started, as sync.start_validation does.
      const key = v[5] === null || v[5] === undefined ? undefined : String(v[5]);
      const earlier = key === undefined ? undefined : runsByKey.get(key);
      if (earlier !== undefined) {
        if (earlier.target !== String(v[0]) || earlier.repair !== (v[1] === true)) {
          throw Object.assign(
            new Error(
              `Idempotency-Key ${key} started validation run ${earlier.id} of ${earlier.target}`,
            ),
            { code: "22023" },
          );
        }
        return [{ id: String(earlier.id) }];
      }
      // One run of a table at a time (sync_checksums_one_active_run), as the database holds.
      const active = [...runs.values()].find((r) =>
        r.target === String(v[0]) && (r.status === "queued" || r.status === "running")
      );
      if (active !== undefined) {
        throw Object.assign(
          new Error(`validation run ${active.id} of ${active.target} is already ${active.status}`),
          { code: "SY006", detail: JSON.stringify({ runId: active.id }) },
        );
      }
      const run = newRun(String(v[0]), v[1] === true, Number(v[2]));
      if (key !== undefined) runsByKey.set(key, run);
      return [{ id: String(run.id) }];
    }
    if (t.startsWith("select id, status from public.sync_checksums")) {
      const run = runs.get(Number(v[0]));
      return run ? [{ id: String(v[0]), status: run.status }] : [];
    }
    if (t.startsWith("select target_table, status from public.sync_checksums")) {
      const run = runs.get(Number(v[0]));
      return run ? [{ target_table: run.target, status: run.status }] : [];
    }
    if (t.includes("sync.claim_validation(")) {
      const run = runOf(v[0]);
      if (run?.status !== "running") return [{ phase: null }];
      if (run.phase === "scan") return [{ phase: "scan" }];
      if (run.leaseOwner !== undefined && run.leaseOwner !== v[1]) return [{ phase: null }];
      run.leaseOwner = String(v[1]);
      return [{ phase: run.phase }];
    }
    if (t.includes("sync.release_validation(")) {
      const run = runOf(v[0]);
      if (run.leaseOwner === v[1]) run.leaseOwner = undefined;
      return [];
    }
    if (t.includes("sync.renew_validation(")) {
      hold(runOf(v[0]), v[1]);
      return [];
    }
    if (t.includes("sync.hold_validation(")) {
      hold(runOf(v[0]), v[1]);
      return [];
    }
    return answerScan(s, state) ?? answerCompare(s, state);
  };
  const before = options.beforeAnswer;
  const db = fakeSql((s) => before ? before(s).then(() => answer(s)) : answer(s));
  return { ...db, runs, runsByKey, newRun, staleMarks };
}

/**
 * A validator's dependencies over `db`: a source whose every point read finds its key
 * (with `value` 1), no settle pause, a fake clock.
 */
export function compareDeps(db: ReturnType<typeof runsDb>): ValidatorDeps {
  const dynamo = fakeDynamo((c: SentCommand) => ({
    Item: { ...(c.input.Key as object), value: { N: "1" } },
  }));
  return { sql: db.sql, dynamo: dynamo.dynamo, settleMs: 0, pacing: fakeClock() };
}

/** A run 7 of `db` over firespring_segments, in its compare, leased to "w1". */
export function comparingRun(db: ReturnType<typeof runsDb>): FakeRun {
  const run = db.newRun("firespring_segments", false, 1, 7);
  run.phase = "compare";
  run.leaseOwner = "w1";
  return run;
}
