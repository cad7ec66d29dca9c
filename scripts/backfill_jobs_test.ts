import assert from "node:assert/strict";
import { BarScreen } from "./bar_screen.ts";
import type postgres from "postgres";
import {
  cutOverProblem,
  followBackfills,
  type Progress,
  progressLine,
  STALL_MS,
  stallNotice,
  startBackfills,
} from "./backfill_jobs.ts";
import { backfillArgs } from "./backfill_args.ts";

const progress = (over: Partial<Progress>): Progress => ({
  job_id: "1",
  target_table: "firespring_actions",
  status: "running",
  segments_done: 1,
  total_segments: 4,
  items_scanned: 500,
  rows_written: 500,
  items_per_second: 100,
  ...over,
});

/** Bars drawn nowhere. */
const quiet = new BarScreen(false, () => {});

Deno.test("a Scan backfill's bar counts segments, its ETA from DynamoDB's item count", () => {
  const line = progressLine(progress({ source: "scan" }), 1000);
  assert.match(
    line,
    /\[#{12}-{12}\]\s+500\/1,000\s+items\s+500 rows\s+100\/s {2}segments 1\/4 {2}ETA 5s$/,
  );
});

Deno.test("an export backfill's bar counts files, its ETA from the export's own item count", () => {
  const line = progressLine(progress({ source: "export", expected_items: 2000 }), undefined);
  assert.match(line, /500\/2,000\s+items .* files 1\/4 {2}ETA 15s$/);
  assert.match(progressLine(progress({ source: "export", status: "done" }), undefined), /done$/);
});

Deno.test("a cancelled job ends the wait, named, and its bar says so rather than an ETA", async () => {
  const row: Progress = {
    job_id: "7",
    target_table: "firespring_actions",
    status: "cancelled",
    items_scanned: 1000,
    rows_written: 1000,
    items_per_second: 50,
    segments_done: 3,
    total_segments: 8,
    source: "scan",
    expected_items: null,
  } as unknown as Progress;
  assert.match(progressLine(row, 5000), /CANCELLED$/);
  const sql = ((strings: TemplateStringsArray) => {
    const text = strings.join("?");
    if (text.includes("sync.backfill_progress")) return Promise.resolve([row]);
    return Promise.resolve([{
      id: "7",
      source_table: "firespring-backdoor-actions-dev",
      status: "cancelled",
      error: null,
    }]);
  }) as unknown as postgres.Sql;
  const log = console.log;
  console.log = () => {};
  try {
    assert.deepEqual(await followBackfills(sql, ["7"], new Map(), undefined, quiet), [
      "backfill job 7 of firespring-backdoor-actions-dev was cancelled; start it again",
    ]);
  } finally {
    console.log = log;
  }
});

Deno.test("a table whose Scan backfills still run is followed, each of them, not backfilled again beside them", async () => {
  const started: unknown[] = [];
  const sql = ((strings: TemplateStringsArray, ...values: unknown[]) => {
    const text = strings.join("?");
    if (text.includes("from sync.backfill_jobs")) {
      // A heal queued job 43 behind the running 41: the table is whole once 43 ends.
      return Promise.resolve(
        values[0] === "firespring-backdoor-actions-dev"
          ? [{ id: "41", status: "running" }, { id: "43", status: "pending" }]
          : [],
      );
    }
    if (text.includes("sync.start_backfill")) {
      started.push(values[0]);
      return Promise.resolve([{ id: "42" }]);
    }
    throw new Error(`unexpected: ${text}`);
  }) as unknown as postgres.Sql;
  const dynamo = () => ({ send: () => Promise.resolve({ Table: { ItemCount: 10 } }) }) as never;
  const log = console.log;
  console.log = () => {};
  try {
    const { jobs } = await startBackfills(
      sql,
      dynamo,
      backfillArgs(["firespring_actions", "firespring_searches"]).tables,
      8,
    );
    assert.deepEqual(jobs, ["41", "43", "42"]);
    assert.deepEqual(started, ["firespring-backdoor-searches-dev"]);
  } finally {
    console.log = log;
  }
});

Deno.test("after the cutover a backfill is refused before anything is read or asked for", async () => {
  const settingIs = (value: string | undefined) =>
    (() => Promise.resolve(value === undefined ? [] : [{ value }])) as unknown as postgres.Sql;
  assert.match(
    (await cutOverProblem(settingIs("cutover")))!,
    /^the sync is cut over \(sync\.settings write_back is cutover\): .*Rolling back/,
  );
  assert.equal(await cutOverProblem(settingIs("on")), undefined);
  assert.equal(await cutOverProblem(settingIs("off")), undefined, "rolling back: merges go in");
  assert.equal(await cutOverProblem(settingIs(undefined)), undefined);
});

Deno.test("jobs are queued before any item count is asked for, and a DynamoDB that does not answer delays none", async () => {
  const events: string[] = [];
  const sql = ((strings: TemplateStringsArray, ...values: unknown[]) => {
    const text = strings.join("?");
    if (text.includes("from sync.backfill_jobs")) return Promise.resolve([]);
    if (text.includes("sync.start_backfill")) {
      events.push(`queued ${values[0]}`);
      return Promise.resolve([{ id: String(events.length) }]);
    }
    throw new Error(`unexpected: ${text}`);
  }) as unknown as postgres.Sql;
  // One region answers; the other never does, until the count's own deadline.
  const dynamo = (region: string) =>
    ({
      send: (_command: unknown, options: { abortSignal: AbortSignal }) => {
        events.push(`count asked in ${region}`);
        return region === "us-east-1"
          ? new Promise((_, reject) =>
            options.abortSignal.addEventListener("abort", () => reject(options.abortSignal.reason))
          )
          : Promise.resolve({ Table: { ItemCount: 10 } });
      },
    }) as never;
  const lines: string[] = [];
  const [actions, searches] = backfillArgs(["firespring_actions", "firespring_searches"]).tables;
  const unanswered = { ...actions, region: "us-east-1" as const };
  const answered = { ...searches, region: "us-east-2" as const };
  const { jobs, expected } = await startBackfills(
    sql,
    dynamo,
    [unanswered, answered],
    8,
    (line) => lines.push(line),
  );
  assert.deepEqual(jobs, ["1", "2"]);
  assert.deepEqual(events.slice(0, 2), [
    "queued firespring-backdoor-actions-dev",
    "queued firespring-backdoor-searches-dev",
  ]);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(expected.get(answered.targetTable), 10);
  assert.equal(expected.get(unanswered.targetTable), undefined, "its bar shows ? meanwhile");
});

Deno.test("a Scan backfill no worker has worked on for 5 minutes is named, with where to look", () => {
  const at = Date.parse("2026-12-04T06:00:00Z");
  const job = {
    job_id: "9",
    target_table: "firespring_actions",
    status: "pending",
    segments_done: 0,
    total_segments: 8,
    items_scanned: 0,
    rows_written: 0,
    items_per_second: null,
    source: "scan",
    last_worked_at: new Date(at - STALL_MS - 60_000),
  };
  assert.equal(
    stallNotice(job, at),
    "backfill job 9 of firespring_actions: no worker has worked on it for 6 minutes (last at " +
      "2026-12-04T05:54:00.000Z); pg_cron's sync-import-worker job calls the import-worker: " +
      'see the README\'s Troubleshooting, "a backfill stays at 0 %" (select * from sync.status: ' +
      "scheduler_problem, function_problem)",
  );
  assert.equal(stallNotice({ ...job, last_worked_at: new Date(at - 60_000) }, at), undefined);
  assert.equal(stallNotice({ ...job, status: "done" }, at), undefined);
  assert.equal(
    stallNotice({ ...job, source: "export" }, at),
    undefined,
    "its loader says what it meets",
  );
});
