/**
 * What the validator's tests share: an in-memory stand-in for the validation runs'
 * SQL (20261128001100_validator_segments.sql) — runs and their phases, their Scan's
 * leased segments and checkpoints, the compare's slices, the rechecks, the run lease
 * and the end of a run — playing each statement the validator sends.
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
    if (t.includes("sync.claim_segment(")) {
      // The claim books its first read's turn: the worker and the run are the last values.
      const [worker, runId] = v.slice(-2);
      const run = runOf(runId);
      const segment = run.segments.findIndex((g) => g.status === "pending");
      if (segment < 0) return [];
      run.segments[segment].status = "running";
      run.segments[segment].owner = String(worker);
      const spec = byTargetTable(run.target)!;
      return [{
        turn: turns.shift() ?? null,
        job_id: String(run.id),
        segment,
        total_segments: run.segments.length,
        source_table: spec.sourceTable,
        target_table: run.target,
        region: spec.region,
        exclusive_start_key: run.segments[segment].key,
        page_size: 1000,
      }];
    }
    if (t.includes("from sync.backfill_segments s join sync.backfill_jobs")) {
      const run = runOf(v[0]);
      return [{
        pending: run.segments.filter((g) => g.status === "pending").length,
        running: run.segments.filter((g) => g.status === "running").length,
      }];
    }
    if (t.startsWith("select streamed from public.sync_checksums")) {
      return [{ streamed: runOf(v[0]).streamed }];
    }
    if (t.includes("sync.check_checksum_page")) {
      const run = runOf(v[0]);
      if (!run.streamed) throw new Error(`run ${run.id} is not streamed`);
      run.staged += (JSON.parse(String(v[2])) as unknown[]).length;
      return [{ check_checksum_page: 0 }];
    }
    if (t.includes("sync.stage_checksum_items")) {
      runOf(v[0]).staged += (JSON.parse(String(v[2])) as unknown[]).length;
      return [];
    }
    if (t.includes("set source_items = source_items +")) {
      runOf(v[1]).sourceItems += Number(v[0]);
      return [];
    }
    if (t.startsWith("insert into sync.checksum_unmappable")) {
      // Kept aside until the compare ends, then appended to the run's list (as the
      // migration does): the fake appends at once, which nothing reads before then.
      runOf(v[0]).unmappable.push(...JSON.parse(String(v[1])));
      return [];
    }
    if (t.includes("sync.checkpoint_segment(")) {
      const run = runOf(v[0]);
      const segment = run.segments[Number(v[1])];
      if (segment.status !== "running" || segment.owner !== v[2]) {
        throw Object.assign(new Error(`segment ${v[1]}: lease lost`), { code: "SY001" });
      }
      segment.key = v[3] === null ? null : JSON.parse(String(v[3]));
      if (v[6] === true) segment.status = "done";
      if (run.segments.every((g) => g.status === "done")) run.phase = "compare";
      return [];
    }
    if (t.startsWith("update sync.backfill_segments set error")) return [];
    if (t.startsWith("update sync.backfill_segments s set lease_expires_at")) return [{ held: 1 }];
    if (t.includes("sync.release_segment(")) {
      const segment = runOf(v[0]).segments[Number(v[1])];
      if (segment.owner === v[2] && segment.status === "running") segment.status = "pending";
      return [];
    }
    if (t.includes("sync.backfill_read_turn(")) return [{ turn: turns.shift() ?? null }];
    if (t.includes("sync.fail_segment(")) {
      runOf(v[0]).jobError = `segment ${v[1]}: ${v[3]}`;
      return [];
    }
    if (t.startsWith("select error from sync.backfill_jobs")) {
      const error = runOf(v[0]).jobError;
      return error ? [{ error }] : [];
    }
    if (t.includes("sync.compare_checksum_range(")) {
      const run = runOf(v[0]);
      hold(run, v[1]);
      run.slices++;
      if (run.slices < slices) return [{ phase: "compare" }];
      const divergent = options.divergent?.(run.id, 0, 0) ?? [];
      byKind(run, divergent);
      // As the migration: unmappable items are read again too.
      run.phase = divergent.length + run.unmappable.length > 0 ? "recheck" : "report";
      return [{ phase: run.phase }];
    }
    if (t.startsWith("select * from sync.validation_findings(")) {
      const run = runOf(v[0]);
      const first = (list: unknown[]) => list.slice(0, Number(v[1]));
      return [{
        missing: first(run.missing),
        unexpected: first(run.unexpected),
        different: first(run.different),
        unmappable: first(run.unmappable),
        missing_count: run.missing.length,
        unexpected_count: run.unexpected.length,
        different_count: run.different.length,
        unmappable_count: run.unmappable.length,
      }];
    }
    if (t.startsWith("delete from sync.checksum_items")) return [];
    if (t.includes("sync.keys_changed_since(")) {
      const moved = options.movedOn?.(JSON.parse(String(v[1])), String(v[2])) ?? [];
      return moved.map((row_key) => ({ row_key }));
    }
    if (t.includes("sync.collapsed_keys_changed_since(")) {
      const moved = options.movedOn?.(JSON.parse(String(v[2])), String(v[3]), Number(v[0])) ??
        [];
      return moved.map((row_key) => ({ row_key }));
    }
    if (t.includes("from sync.compare_checksum(")) {
      const run = runOf(v[0]);
      const keys = (JSON.parse(String(v[2])) as unknown[]).map((k) => JSON.stringify(k));
      const compare = compares.get(run.id) ?? 0;
      compares.set(run.id, compare + 1);
      const found = (options.divergent?.(run.id, run.looks + 1, compare) ?? [])
        .filter((d) => keys.includes(JSON.stringify(d.key)));
      return found.length === 0
        ? [{ kind: null, row_key: null }]
        : found.map((d) => ({ kind: d.kind, row_key: d.key }));
    }
    if (t.includes("looks = looks + 1")) {
      const run = runOf(v.at(-1));
      run.missing = JSON.parse(String(v[0]));
      run.unexpected = JSON.parse(String(v[1]));
      run.different = JSON.parse(String(v[2]));
      run.looks++;
      compares.delete(run.id);
      run.recheckKeys = null;
      run.recheckRead = 0;
      run.recheckReadFrom = run.recheckReadBefore = null;
      run.phase = run.looks >= Number(v[3]) || Number(v[4]) === 0 ? "report" : "recheck";
      return [{ phase: run.phase }];
    }
    if (t.startsWith("select source_items::int, coalesce(expected_rows")) {
      const run = runOf(v[0]);
      return [{
        source_items: run.sourceItems,
        expected_rows: 2,
        target_rows: 2,
        repair_requested: run.repair,
      }];
    }
    if (t.includes("set checked_at = $1, match = $2")) {
      const run = runOf(v[3]);
      run.match = v[1] === true;
      run.phase = String(v[2]);
      return [];
    }
    if (t.includes("sync.end_validation(")) {
      const run = runOf(v[0]);
      run.status = t.includes("'done'") ? "done" : "failed";
      if (run.status === "done") run.phase = "done";
      else run.error = String(v[1]);
      run.staged = 0;
      run.leaseOwner = undefined;
      return [];
    }
    if (t.startsWith("select compared_at")) {
      return [{ compared_at: SEEN, repair_read: runOf(v[0]).repairRead }];
    }
    if (t.includes("set repair_read = ")) {
      const run = runOf(v[1]);
      if (run.repairRead === Number(v[2])) run.repairRead = Number(v[0]);
      return [];
    }
    if (t.includes("set phase = 'report'")) {
      runOf(v[0]).phase = "report";
      return [];
    }
    if (t.includes("sync.heal_table(")) {
      staleMarks.push({ table: String(v[0]), reason: String(v[1]) });
      return [{ job: "77" }];
    }
    if (t.includes("set healing_backfill_job_id")) {
      runOf(v[1]).healingJob = Number(v[0]);
      return [];
    }
    if (t.includes("set repaired = true, revalidation_run_id")) {
      const run = runOf(v[1]);
      run.repaired = true;
      run.revalidation = Number(v[0]);
      return [];
    }
    if (t.startsWith("select status, error, repaired, revalidation_run_id")) {
      const run = runs.get(Number(v[0]));
      return run
        ? [{
          status: run.status,
          error: run.error ?? null,
          repaired: run.repaired,
          revalidation_run_id: run.revalidation === undefined ? null : String(run.revalidation),
          checked_at: SEEN,
          healing_backfill_job_id: run.healingJob === undefined ? null : String(run.healingJob),
        }]
        : [];
    }
    if (t.startsWith("select match from public.sync_checksums")) {
      return [{ match: runOf(v[0]).match ?? false }];
    }
    if (t.startsWith("select recheck_keys, recheck_read, looks from public.sync_checksums")) {
      const run = runOf(v[0]);
      return [{ recheck_keys: run.recheckKeys, recheck_read: run.recheckRead, looks: run.looks }];
    }
    if (t.includes("set recheck_keys = ")) {
      const run = runOf(v[1]);
      run.recheckKeys = JSON.parse(String(v[0]));
      run.recheckRead = 0;
      run.recheckReadFrom = run.recheckReadBefore = null;
      return [];
    }
    if (t.startsWith("select unmappable, recheck_read from public.sync_checksums")) {
      const run = runOf(v[0]);
      return [{ unmappable: run.unmappable, recheck_read: run.recheckRead }];
    }
    if (t.includes("set progress_at = now(), unmappable =")) {
      const run = runOf(v[4]);
      run.unmappable = JSON.parse(String(v[0]));
      run.recheckRead = Number(v[1]);
      const [from, before] = [v[2] as string | null, v[3] as string | null];
      if (from !== null && (!run.recheckReadFrom || from < run.recheckReadFrom)) {
        run.recheckReadFrom = from;
      }
      if (
        before !== null && run.recheckReadBefore !== "infinity" &&
        (before === "infinity" || !run.recheckReadBefore || before > run.recheckReadBefore)
      ) run.recheckReadBefore = before;
      return [];
    }
    if (t.startsWith("select recheck_read_from, recheck_read_before from public.sync_checksums")) {
      const run = runOf(v[0]);
      const at = (x: string | null | undefined) =>
        x ? new Date(x === "infinity" ? Infinity : Date.parse(x)) : null;
      return [{
        recheck_read_from: at(run.recheckReadFrom),
        recheck_read_before: at(run.recheckReadBefore),
      }];
    }
    if (t.includes("set progress_at = now()")) return [];
    if (t.includes("from sync.observations")) return [];
    if (t.includes("sync.merge_changes")) {
      return [{ applied: (JSON.parse(String(v[1])) as unknown[]).length }];
    }
    return undefined;
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
