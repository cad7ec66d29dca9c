import assert from "node:assert/strict";
import { isSharedPooler, parseDbUrl } from "../functions-shared/db_url.ts";
import type postgres from "postgres";
import {
  cutOverProblem,
  exportClientToken,
  exportFileSlots,
  exportLoaderName,
  exportPoolSize,
  followBackfills,
  POOLER_CONNECTIONS,
  type Progress,
  progressLine,
  startBackfills,
} from "./backfill.ts";
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
    assert.deepEqual(await followBackfills(sql, ["7"], new Map()), [
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

Deno.test("an export's ClientToken is the same for a rerun within the hour, so it joins the export asked for", () => {
  const [actions, searches] = backfillArgs(["firespring_actions", "firespring_searches"]).tables;
  const target = { bucket: "exports", prefix: "" };
  const at = (iso: string) => new Date(iso);
  const token = exportClientToken(actions, target, at("2026-11-29T22:05:00Z"));
  assert.match(token, /^backfill-[0-9a-f]{48}$/);
  assert.ok(token.length <= 64, "within DynamoDB's 64 characters");
  assert.equal(exportClientToken(actions, target, at("2026-11-29T22:59:59Z")), token);
  assert.notEqual(exportClientToken(actions, target, at("2026-11-29T23:00:00Z")), token);
  assert.notEqual(exportClientToken(searches, target, at("2026-11-29T22:05:00Z")), token);
  assert.notEqual(
    exportClientToken(actions, { bucket: "exports", prefix: "p/" }, at("2026-11-29T22:05:00Z")),
    token,
  );
});

Deno.test("two loaders never share a lease owner, not even with the same pid on two hosts", () => {
  const a = exportLoaderName("host-a", 7, "0f3c9a1e-aaaa");
  const b = exportLoaderName("host-b", 7, "0f3c9a1e-aaaa");
  const again = exportLoaderName("host-a", 7, "5d2e7b40-bbbb");
  assert.equal(a, "export-loader-host-a-7-0f3c9a1e");
  assert.notEqual(a, b, "two containers, each with pid 7");
  assert.notEqual(a, again, "the same host and pid, a later run");
});

Deno.test("the export loaders share a connection a worker, at most 16, and 3 through a shared pooler", () => {
  assert.equal(exportPoolSize(4, 1), 4);
  assert.equal(exportPoolSize(2, 7), 14);
  assert.equal(exportPoolSize(4, 9), 16, "--all at 4 workers asked for 36");
  assert.equal(exportPoolSize(4, 9, true), POOLER_CONNECTIONS - 1, "the bars take the fourth");
  assert.equal(exportFileSlots(16), 15, "one connection kept for claims and renewals");
  assert.equal(exportFileSlots(1), 1);
  for (
    const url of [
      "postgresql://postgres.ref:pw@aws-0-us-east-1.pooler.supabase.com:5432/postgres",
      "postgresql://postgres.ref:pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres",
      "postgresql://postgres:pw@db.ref.supabase.co:6543/postgres",
      "postgresql://postgres:postgres@127.0.0.1:6543/postgres?pgbouncer=true",
    ]
  ) assert.ok(isSharedPooler(parseDbUrl(url)), url);
  assert.ok(
    !isSharedPooler(parseDbUrl("postgresql://postgres:pw@db.ref.supabase.co:5432/postgres")),
  );
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
