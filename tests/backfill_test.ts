/**
 * Backfills through the import-worker against the stack: every table comes back exactly
 * as the stream had made it; a worker killed mid-segment is taken over from its
 * checkpoint without losing or repeating a page; a backfill interleaved with updates and
 * deletes converges. pg_cron alone driving a job to the end is in tests/cron_test.ts (it
 * shares the stack with other files while it waits for pg_cron's minute); a stream that
 * lost records healing with a backfill is in tests/backfill_heal_test.ts.
 */

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import {
  type AttributeValue,
  DeleteItemCommand,
  PutItemCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import { byTargetTable, TABLES } from "../functions-shared/table_registry.ts";
import { ROOT } from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";
import { batchWrite } from "../demo/load_dynamo.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";
import {
  forget,
  itemsFor,
  N,
  queueBackfill,
  S,
  scanCount,
  snapshot,
  waitForJobs,
  writeThroughTheStream,
} from "./backfill_fixtures.ts";

Deno.test("a backfill of every table gives back exactly the rows the stream made", async () => {
  const sql = connectDb();
  const p = `bf-${crypto.randomUUID().slice(0, 8)}-`;
  try {
    for (const spec of TABLES) {
      await batchWrite(dynamo(spec.region), spec.sourceTable, itemsFor(spec.targetTable, p, 20));
    }
    // The stream delivers everything first; that state is the reference.
    let reference: Record<string, unknown> = {};
    await eventually("the stream to deliver the items", async () => {
      const now = await snapshot(sql, p);
      const complete = TABLES.every((t) =>
        (now[t.targetTable] as unknown[]).length ===
          (t.targetTable === "mmp_toledo_leads" ? 15 : 20)
      );
      const settled = complete && isDeepStrictEqual(now, reference);
      reference = now;
      return settled ? true : undefined;
    }, 60_000);

    await forget(sql, p, TABLES.map((t) => t.targetTable));
    const jobs = [];
    for (const spec of TABLES) {
      const [row] = await sql`select sync.start_backfill(${spec.sourceTable}, 4) as id`;
      jobs.push(row.id);
    }
    const done = await waitForJobs(sql, jobs);
    assert.ok(done.every((j) => j.status === "done"), JSON.stringify(done));
    assert.deepEqual(await snapshot(sql, p), reference);
  } finally {
    await sql.end();
  }
});

Deno.test("a worker killed mid-segment is taken over from its checkpoint: nothing lost or repeated", async () => {
  const sql = connectDb();
  const p = `kill-${crypto.randomUUID().slice(0, 8)}-`;
  const spec = byTargetTable("firespring_actions")!;
  // At least these 1,000 items of its own.
  const n = 1000;
  try {
    await writeThroughTheStream(sql, spec.targetTable, p, itemsFor(spec.targetTable, p, n));
    await forget(sql, p, [spec.targetTable]);
    const total = await scanCount(spec.targetTable);
    // About 300 pages (of 2 items or more), some seconds of Scan, so that the kill (once
    // the first page's checkpoint is written) lands well before the segment's end, which
    // the test asserts. (With 500 items and the kill three pages in, a fast run in CI read
    // the rest of the segment while pkill started; with 40 pages, a poll every 250 ms
    // could see none written, then the segment done, as it did in validator_resume_test.)
    const pageSize = Math.max(2, Math.ceil(total / 300));

    const jobId = await queueBackfill(sql, spec.sourceTable, 1, { pageSize, leaseSeconds: 5 });
    // Woken by hand, and again every 10 s until it runs: a run that finds no read turn of
    // the table free (earlier tests' Scans of it booked theirs, 20261128001800) ends
    // claiming nothing, and pg_cron's heartbeat would only start the next one at its
    // minute (Debian's pg_cron 1.4).
    let woken = 0;
    const inFlight = await eventually(
      "the worker to have checkpointed its first page",
      async () => {
        const [s] =
          await sql`select pages, status from sync.backfill_segments where job_id = ${jobId}`;
        // Done (or failed) before the kill: said at once.
        if (s.status !== "running" && s.status !== "pending") return s;
        if (s.pages >= 1 && s.status === "running") return s;
        if (Date.now() - woken >= 10_000 && s.status === "pending") {
          woken = Date.now();
          await sql`select sync.wake_import_worker()`;
        }
        return undefined;
      },
      150_000,
    );
    assert.equal(
      inFlight.status,
      "running",
      `the segment was ${inFlight.status} after ${inFlight.pages} pages, before the kill`,
    );
    // This checkout's worker isolates only: another checkout may run a stack of its own,
    // and a command that merely names the file (npm test's type check or module
    // resolution of the function) is no isolate. An isolate's command line ends with the
    // gateway's preload, then the function's entry point (local-stack/supabase/isolate_process.ts).
    await run("pkill", [
      "-9",
      "-f",
      `edge_runtime_shim\\.ts ${ROOT}/supabase/functions/import-worker/index\\.ts`,
    ]);
    const [before] = await sql`select pages, items_scanned, lease_owner from sync.backfill_segments
                where job_id = ${jobId}`;
    assert.ok(
      Number(before.items_scanned) < total,
      "the worker died before the end of the segment",
    );

    // Once the lease lapses, the next worker (here woken by hand) takes the segment over.
    // (A run that handed on just before the kill left the segment pending, with no lease,
    // or its hand-on's request, started after the kill, took it over: either way the
    // segment goes on from its checkpoint.)
    await eventually("the lease to lapse", async () => {
      const [s] = await sql`select status <> 'running' or lease_expires_at < now()
                                   or lease_owner is distinct from ${before.lease_owner} as lapsed
                            from sync.backfill_segments where job_id = ${jobId}`;
      return s.lapsed ? true : undefined;
    }, 15_000);
    await sql`select sync.wake_import_worker()`;
    const [result] = await waitForJobs(sql, [jobId]);
    assert.equal(result.status, "done");
    assert.equal(
      Number(result.items_scanned),
      total,
      "every item counted once: no page lost or repeated",
    );
    const [rows] =
      await sql`select count(*)::int as n from firespring_actions where action_id like ${p + "%"}`;
    assert.equal(rows.n, n);
  } finally {
    await sql.end();
  }
});

Deno.test("a backfill interleaved with updates, deletes and inserts converges", async () => {
  const sql = connectDb();
  const p = `mix-${crypto.randomUUID().slice(0, 8)}-`;
  const spec = byTargetTable("firespring_segments")!;
  const client = dynamo(spec.region);
  try {
    await batchWrite(client, spec.sourceTable, itemsFor(spec.targetTable, p, 400));
    const jobId = await queueBackfill(sql, spec.sourceTable, 2, { pageSize: 25 });
    await sql`select sync.wake_import_worker()`;
    for (let i = 0; i < 400; i += 3) {
      if (i % 2 === 0) {
        await client.send(
          new DeleteItemCommand({
            TableName: spec.sourceTable,
            Key: { segment_id: S(`${p}${i}`) },
          }),
        );
      } else {
        await client.send(
          new PutItemCommand({
            TableName: spec.sourceTable,
            Item: { segment_id: S(`${p}${i}`), name: S("updated"), value: N(-i) },
          }),
        );
      }
      if (i % 30 === 0) {
        await client.send(
          new PutItemCommand({
            TableName: spec.sourceTable,
            Item: { segment_id: S(`${p}new-${i}`), name: S("new"), value: N(i) },
          }),
        );
      }
    }
    // The backfill itself did the work (the stream alone would converge the table too).
    const [job] = await waitForJobs(sql, [jobId]);
    assert.equal(job.status, "done", JSON.stringify(job));
    assert.ok(Number(job.rows_written) > 0, `rows written: ${job.rows_written}`);

    const source = new Map<string, string>();
    let start: Record<string, AttributeValue> | undefined;
    do {
      // Consistent: an eventually consistent Scan may miss the last writes (DYNAMODB_FAULTS).
      const page = await client.send(
        new ScanCommand({
          TableName: spec.sourceTable,
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        if (item.segment_id.S!.startsWith(p)) {
          source.set(item.segment_id.S!, `${item.name.S}:${item.value.N}`);
        }
      }
      start = page.LastEvaluatedKey;
    } while (start);
    const target = await eventually("the target to converge", async () => {
      const rows = await sql`select segment_id, segment_name || ':' || member_count as v
                             from firespring_segments where segment_id like ${p + "%"}`;
      const now = new Map(rows.map((r) => [r.segment_id as string, r.v as string]));
      return isDeepStrictEqual(now, source) ? now : undefined;
    }, 60_000).catch(async () => {
      const rows = await sql`select segment_id from firespring_segments where segment_id like ${
        p + "%"
      }`;
      return new Map(rows.map((r) => [r.segment_id as string, "?"]));
    });
    assert.deepEqual([...target.keys()].sort(), [...source.keys()].sort());
    assert.deepEqual(target, source);
  } finally {
    await sql.end();
  }
});
