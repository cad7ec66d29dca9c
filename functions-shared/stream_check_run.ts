/**
 * The `stream-check` Edge Function's work (docs/interfaces.md, "stream-check"): for each
 * registry table, read its stream and compare it with what the webhook applied
 * (functions-shared/stream_check.ts), record the run with `sync.record_stream_check`,
 * which marks the table stale on a problem (queuing the healing backfill), and answer
 * one line per table.
 *
 * Bounded like the other functions: before each table the isolate's CPU (boot included,
 * functions-shared/cpu_meter.ts) and the request's wall time are compared with the
 * budget; tables left over are named in `skipped` and taken first by the next run
 * (hourly; the least recently checked go first). A table not checked for 3 hours is marked
 * stale by its next check, or by its next failure to check. One run per isolate at a time
 * (functions-shared/run_gate.ts).
 *
 * @module
 */

import type postgres from "postgres";
import type { CpuMeter } from "./cpu_meter.ts";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import type { RunGate } from "./run_gate.ts";
import { serviceRoleProblem } from "./service_auth.ts";
import {
  checkShard,
  MAX_PAGES_PER_SHARD,
  type ShardFinding,
  type StreamReader,
} from "./stream_check.ts";
import {
  type CheckTiming,
  DELIVERY_LAG_LIMIT_MS,
  judgeTable,
  MAX_CHECK_INTERVAL_MS,
  STREAM_RETENTION_MS,
  waitingRecord,
} from "./stream_verdict.ts";
import { byTargetTable, TABLES, type TableSpec } from "./table_registry.ts";
import { appliedLookup, previousCheck, streamAppliedSince } from "./stream_check_db.ts";

/** What the check needs; built once, at cold start. */
export interface StreamCheckDeps {
  sql: postgres.Sql;
  serviceKeys: readonly string[];
  /** The table's current stream ARN (DescribeTable), undefined when its stream is off. */
  streamArnOf(spec: TableSpec): Promise<string | undefined>;
  /** A reader of a stream of the table's region. */
  readerOf(spec: TableSpec, streamArn: string): StreamReader;
  cpu: CpuMeter;
  budget: { cpuMs: number; wallMs: number };
  gate: RunGate;
  now?: () => number;
  log?: (line: string) => void;
}

/** One table's line of the answer. */
export interface TableReport {
  table: string;
  streamArn?: string;
  shards?: number;
  problem?: string;
  backfillJobId?: number;
  error?: string;
}

/** Checks one table and records the run; returns its line. */
export async function checkTable(
  spec: TableSpec,
  deps: StreamCheckDeps,
  timing: CheckTiming,
): Promise<TableReport> {
  const { sql } = deps;
  const table = spec.targetTable;
  const previous = await previousCheck(sql, table);
  const streamArn = await deps.streamArnOf(spec);
  let verdict;
  if (!streamArn) {
    verdict = {
      shards: {},
      problem: `${table}: lost-record check: ${spec.sourceTable} has no stream enabled, so ` +
        `its changes are not captured`,
      coversUntil: timing.now,
    };
  } else {
    const reader = deps.readerOf(spec, streamArn);
    const applied = appliedLookup(sql, streamArn);
    const sameStream = previous?.streamArn === streamArn;
    const before = sameStream ? previous!.shards : {};
    const listed = await reader.shards();
    const findings: ShardFinding[] = [];
    for (const shard of listed) {
      findings.push(
        await checkShard(
          shard.id,
          before[shard.id],
          reader,
          applied,
          MAX_PAGES_PER_SHARD,
          shard.closed,
        ),
      );
    }
    const gone = [];
    for (const [shardId, state] of Object.entries(before)) {
      if (listed.some((shard) => shard.id === shardId) || !state.frontier) continue;
      const frontier = {
        seq: state.frontier.seq,
        createdAt: Date.parse(state.frontier.created_at),
      };
      gone.push({ shardId, frontier, applied: (await applied([frontier.seq])).size > 0 });
    }
    // Asked only when a record has waited past the lag line (stream_verdict.ts).
    const record = waitingRecord(streamArn, findings, previous, timing);
    const waiting = record && {
      record,
      appliedSince: await streamAppliedSince(sql, streamArn, record.askSince),
    };
    verdict = judgeTable(table, streamArn, findings, gone, previous, timing, waiting);
  }
  const [row] = await sql`select sync.record_stream_check(
      ${table}, ${streamArn ?? null}, ${JSON.stringify(verdict.shards)}::text::jsonb,
      ${verdict.problem ?? null},
      ${verdict.coversUntil === undefined ? null : new Date(verdict.coversUntil)}) as job`;
  const report: TableReport = {
    table,
    streamArn,
    shards: Object.keys(verdict.shards).length,
  };
  if (verdict.problem) report.problem = verdict.problem;
  if (row.job !== null) report.backfillJobId = Number(row.job);
  return report;
}

/**
 * Records a check that could not run as a problem: the table's stream positions kept as
 * they were, so that the next check that runs goes on from them. Returns the backfill it
 * queued, if any.
 */
async function recordUnchecked(
  sql: postgres.Sql,
  table: string,
  message: string,
  last: number | undefined,
  now: number,
): Promise<number | undefined> {
  const since = last === undefined
    ? "never checked"
    : `unchecked since ${new Date(last).toISOString()}`;
  // What may be trimmed before the next check is what is older than the at-risk line: a
  // backfill since then heals it (so a check that keeps failing costs a backfill about
  // once a day, not one each time it is found unchecked). A table never checked keeps
  // an unknown stream (''), not null, which would read as "no stream" to the next check.
  const atRiskBefore = now - (STREAM_RETENTION_MS - MAX_CHECK_INTERVAL_MS);
  const [row] = await sql`
    select sync.record_stream_check(${table}, coalesce(s.stream_arn, ''),
             coalesce(s.shards, '{}'::jsonb),
             ${`${message} (${since}: records the stream trimmed meanwhile cannot be vouched for)`},
             ${new Date(atRiskBefore)}) as job
    from (select) as one
    left join sync.stream_checks s on s.target_table = ${table}`;
  return row.job === null ? undefined : Number(row.job);
}

/** Runs the check over `tables` within the budget. */
export async function runStreamCheck(
  tables: readonly TableSpec[],
  deps: StreamCheckDeps,
): Promise<{ checked: TableReport[]; skipped: string[] }> {
  const now = deps.now ?? Date.now;
  const log = deps.log ?? console.log;
  const started = now();
  const checked: TableReport[] = [];
  const skipped: string[] = [];
  // The least recently checked first (never checked before any): a table the budget
  // leaves over, or whose check keeps failing, is not always last.
  // (Unknown when the database cannot say: then the tables go in their order, each
  // reporting its own failure, and none is marked for going unchecked.)
  const lastChecked = await deps.sql<{ target_table: string; checked_at: Date }[]>`
      select target_table, checked_at from sync.stream_checks`
    .then((rows) => new Map(rows.map((r) => [r.target_table, new Date(r.checked_at).getTime()])))
    .catch((error) => {
      log(`stream-check: when each table was last checked could not be read: ${error}`);
      return undefined;
    });
  const order = [...tables].sort((a, b) =>
    (lastChecked?.get(a.targetTable) ?? -Infinity) -
    (lastChecked?.get(b.targetTable) ?? -Infinity)
  );
  for (const spec of order) {
    if (deps.cpu.usedMs() >= deps.budget.cpuMs || now() - started >= deps.budget.wallMs) {
      skipped.push(spec.targetTable);
      continue;
    }
    const timing = {
      now: now(),
      retentionMs: STREAM_RETENTION_MS,
      maxIntervalMs: MAX_CHECK_INTERVAL_MS,
      lagLimitMs: DELIVERY_LAG_LIMIT_MS,
    };
    try {
      const report = await checkTable(spec, deps, timing);
      if (report.problem) log(`stream-check: ${report.problem} (backfill ${report.backfillJobId})`);
      checked.push(report);
    } catch (error) {
      // An AWS or database failure vouches for nothing: the next run tries again. Once a
      // table has gone unchecked for longer than the check tolerates (or was never
      // checked), records may have been trimmed unseen: the failure itself is recorded as
      // the problem, which marks the table stale (it counts as a check, so not every
      // hour, and a backfill of the last 21 h covers it). A failure to record that too is
      // logged and left to the next run.
      const message = `${spec.targetTable}: the lost-record check could not run: ${
        (error as Error).name
      }: ${(error as Error).message}`;
      log(`stream-check: ${message}`);
      const report: TableReport = { table: spec.targetTable, error: message };
      const last = lastChecked?.get(spec.targetTable);
      if (lastChecked && (last === undefined || timing.now - last > MAX_CHECK_INTERVAL_MS)) {
        try {
          report.backfillJobId = await recordUnchecked(
            deps.sql,
            spec.targetTable,
            message,
            last,
            timing.now,
          );
        } catch (again) {
          log(
            `stream-check: ${spec.targetTable}: recording that it went unchecked failed too: ${again}`,
          );
        }
      }
      checked.push(report);
    }
  }
  return { checked, skipped };
}

/** Handles a request: POST with a service key; body `{}` or `{"tables": [...]}`. */
export async function handleStreamCheckRequest(
  req: Request,
  deps: StreamCheckDeps,
): Promise<Response> {
  if (req.method !== "POST") return methodNotAllowed("POST");
  const problem = serviceRoleProblem(req, deps.serviceKeys);
  if (problem) return errorResponse(401, problem);
  let body: unknown = {};
  const text = await req.text();
  if (text.trim() !== "") {
    try {
      body = JSON.parse(text);
    } catch (error) {
      return errorResponse(400, `body is not valid JSON: ${(error as Error).message}`);
    }
  }
  const names = (body as { tables?: unknown })?.tables;
  let tables: readonly TableSpec[] = TABLES;
  if (names !== undefined) {
    if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
      return errorResponse(400, "tables must be a list of target table names");
    }
    const unknown = names.filter((n) => !byTargetTable(n));
    if (unknown.length > 0) {
      return errorResponse(400, `unknown target table(s): ${unknown.join(", ")}`);
    }
    tables = names.map((n) => byTargetTable(n)!);
  }
  const run = deps.gate.admit(() => runStreamCheck(tables, deps));
  if (!run) return errorResponse(429, "a lost-record check is already running in this isolate");
  return json(200, await run);
}
