/**
 * The validator fake's (validator_fakes.ts) answers to a run's Scan: its leased
 * segments claimed, checkpointed, held, given back and failed, its pages staged or
 * compared as they come, and the read ledger's turns.
 *
 * @module
 */

import { byTargetTable } from "./table_registry.ts";
import type { Statement } from "./testing_fakes.ts";
import type { FakeRunsState } from "./validator_fakes.ts";

/** The answer to `s` if it is one of the Scan's statements; else undefined. */
export function answerScan(s: Statement, state: FakeRunsState): unknown[] | undefined {
  const { runOf, turns } = state;
  const t = s.text;
  const v = s.values;
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
  return undefined;
}
