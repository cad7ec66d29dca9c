/**
 * Backfills through the import-worker against the stack: every table comes back exactly
 * as the stream had made it; a worker killed mid-segment is taken over from its
 * checkpoint without losing or repeating a page; a backfill interleaved with updates and
 * deletes converges; pg_cron alone drives a job to the end; a stream that lost records
 * marks its table stale and heals it with a backfill of its own.
 */

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import {
  type AttributeValue,
  DeleteItemCommand,
  PutItemCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { byTargetTable, TABLES } from "../functions-shared/table_registry.ts";
import { DENO_BIN, LOCAL_DIR, ROOT } from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";
import { stopDetached } from "../local-stack/processes.ts";
import { POLLER_STATE_FILE } from "../local-stack/stream_positions.ts";
import { batchWrite } from "../demo/load_dynamo.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";

type Item = Record<string, AttributeValue>;
const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number | string): AttributeValue => ({ N: String(n) });

/** Items with keys that start with `p`, for every table (several observations for the collapsed ones). */
function itemsFor(target: string, p: string, n: number): Item[] {
  const list: Item[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${p}${i}`;
    switch (target) {
      case "firespring_actions":
        list.push({
          action_id: S(id),
          action_type: S("click"),
          timestamp: N(1770379200 + i),
          data: { M: { i: N(i) } },
        });
        break;
      case "firespring_visitors":
        for (let k = 0; k < 3; k++) {
          list.push({
            session_id: S(id),
            timestamp: N(1770379200 + k),
            pages_viewed: N(k + i),
            sessions: {
              L: [{ M: { session_id: S(`${id}-${k}`), geolocation: S("Toledo, Ohio, USA") } }],
            },
          });
        }
        break;
      case "firespring_extraction_jobs":
        list.push({ job_id: S(id), updated_at: N(1000), status: S("running") });
        list.push({
          job_id: S(id),
          updated_at: N(2000),
          status: S(i % 5 ? "complete" : "failed"),
          records_extracted: N(i),
        });
        break;
      case "firespring_traffic_sources":
        list.push({ source_id: S(id), name: S("google"), visitors: N(i), period: S("2026-01") });
        break;
      case "firespring_segments":
        list.push({
          segment_id: S(id),
          name: S(`segment ${i}`),
          value: N(`${i}${"9".repeat(30)}`),
        });
        break;
      case "firespring_searches":
        list.push({ search_id: S(id), query: S(`q${i}`), count: N(i), searched_at: N(1770379200) });
        break;
      case "firespring_network_state":
        list.push({
          state_key: S(id),
          value: { M: { up: { BOOL: i % 2 === 0 } } },
          updated_at: N(1770379200),
        });
        break;
      case "mmp_toledo_leads":
        list.push({
          id: S(id),
          name: S(`lead ${i}`),
          _version: N(1),
          _deleted: { BOOL: i % 4 === 0 },
        });
        break;
      case "toledo_dashboard":
        list.push({ pk: S(id), sk: S("metrics"), metrics: { M: { v: N(i) } } });
        break;
    }
  }
  return list;
}

/** The data columns (no sync_* columns) of the rows whose key starts with `p`, per table. */
async function snapshot(sql: postgres.Sql, p: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const spec of TABLES) {
    const key = spec.targetKey[0];
    const rows = await sql.unsafe(
      `select to_jsonb(t) - 'sync_sequence' - 'sync_changed_at' - 'sync_source' - 'synced_at' as r
       from public.${spec.targetTable} t where ${key} like $1 order by ${
        spec.targetKey.join(", ")
      }`,
      [`${p}%`],
    );
    out[spec.targetTable] = rows.map((row) => row.r);
  }
  return out;
}

/** Removes the rows (and what the merge remembers of them) whose key starts with `p`. */
async function forget(sql: postgres.Sql, p: string, targets: string[]): Promise<void> {
  for (const target of targets) {
    const key = byTargetTable(target)!.targetKey[0];
    await sql.unsafe(`delete from public.${target} where ${key} like $1`, [`${p}%`]);
    await sql`delete from sync.observations where target_table = ${target} and row_key ->> ${key} like ${
      p + "%"
    }`;
    await sql`delete from sync.tombstones where target_table = ${target} and row_key ->> ${key} like ${
      p + "%"
    }`;
  }
}

async function waitForJobs(sql: postgres.Sql, ids: string[], timeoutMs = 120_000) {
  return await eventually(`backfill jobs ${ids.join(", ")} to finish`, async () => {
    const rows = await sql`select job_id, status, items_scanned, rows_written, segments_done
                           from sync.backfill_progress where job_id = any(${ids}::bigint[])`;
    return rows.every((r) => r.status === "done" || r.status === "failed") ? rows : undefined;
  }, timeoutMs);
}

async function scanCount(target: string): Promise<number> {
  const spec = byTargetTable(target)!;
  let count = 0;
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamo(spec.region).send(
      new ScanCommand({ TableName: spec.sourceTable, Select: "COUNT", ExclusiveStartKey: start }),
    );
    count += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return count;
}

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
  try {
    await batchWrite(dynamo(spec.region), spec.sourceTable, itemsFor(spec.targetTable, p, 1500));
    await eventually("the stream to deliver the items", async () => {
      const [r] =
        await sql`select count(*)::int as n from firespring_actions where action_id like ${
          p + "%"
        }`;
      return r.n === 1500 ? true : undefined;
    }, 90_000);
    await forget(sql, p, [spec.targetTable]);
    const total = await scanCount(spec.targetTable);

    const [job] = await sql`select sync.start_backfill(${spec.sourceTable}, 1, false) as id`;
    await sql`update sync.backfill_jobs set page_size = 10, lease_seconds = 5 where id = ${job.id}`;
    await sql`select sync.wake_import_worker()`;
    await eventually("the worker to be a few pages in", async () => {
      const [s] =
        await sql`select pages, status from sync.backfill_segments where job_id = ${job.id}`;
      return s.pages >= 3 && s.status === "running" ? true : undefined;
    });
    // This checkout's worker only: another checkout may run a stack of its own.
    await run("pkill", ["-9", "-f", `${ROOT}/supabase/functions/import-worker/index.ts`]);
    const [before] =
      await sql`select pages, items_scanned from sync.backfill_segments where job_id = ${job.id}`;
    assert.ok(
      Number(before.items_scanned) < total,
      "the worker died before the end of the segment",
    );

    // Once the lease lapses, the next worker (here woken by hand) takes the segment over.
    await eventually("the lease to lapse", async () => {
      const [s] = await sql`select lease_expires_at < now() as lapsed from sync.backfill_segments
                            where job_id = ${job.id}`;
      return s.lapsed ? true : undefined;
    }, 15_000);
    await sql`select sync.wake_import_worker()`;
    const [result] = await waitForJobs(sql, [job.id]);
    assert.equal(result.status, "done");
    assert.equal(
      Number(result.items_scanned),
      total,
      "every item counted once: no page lost or repeated",
    );
    const [rows] =
      await sql`select count(*)::int as n from firespring_actions where action_id like ${p + "%"}`;
    assert.equal(rows.n, 1500);
    const log = readFileSync(join(LOCAL_DIR, "logs", "functions.log"), "utf8");
    assert.match(
      log,
      new RegExp(
        `backfill job ${job.id} segment 0/1 .*: claimed \\(resuming from its checkpoint\\)`,
      ),
    );
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
    const [job] = await sql`select sync.start_backfill(${spec.sourceTable}, 2, false) as id`;
    await sql`update sync.backfill_jobs set page_size = 25 where id = ${job.id}`;
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
    await waitForJobs(sql, [job.id]);

    const source = new Map<string, string>();
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await client.send(
        new ScanCommand({ TableName: spec.sourceTable, ExclusiveStartKey: start }),
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

Deno.test("pg_cron alone drives a backfill to the end", async () => {
  const sql = connectDb();
  try {
    const [job] =
      await sql`select sync.start_backfill('toledo-consulting-dashboard-data', 2, false) as id`;
    // pg_cron 1.4 ticks once a minute: this waits up to one tick and the work.
    const [result] = await waitForJobs(sql, [job.id], 100_000);
    assert.equal(result.status, "done");
    assert.equal(Number(result.segments_done), 2);
  } finally {
    await sql.end();
  }
});

Deno.test("a stream that lost records marks its table stale and heals it with a backfill", async () => {
  const sql = connectDb();
  const since = new Date();
  try {
    await stopDetached("stream_poller");
    const file = POLLER_STATE_FILE;
    const state = JSON.parse(readFileSync(file, "utf8")) as Record<string, Record<string, string>>;
    const arn = Object.keys(state).find((a) =>
      a.includes("table/Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE/")
    )!;
    assert.ok(arn, "the poller has read the leads stream");
    // Pretend the poller was away for longer than the stream keeps records.
    for (const shard of Object.keys(state[arn])) state[arn][shard] = "0".repeat(21);
    writeFileSync(file, JSON.stringify(state));
    // Two rows whose items DynamoDB does not hold: one the stream wrote two hours ago
    // (its REMOVE record was among those lost), one it wrote just now (as if the item
    // came after the Scan passed its place, and went again).
    const lead = (id: string, seq: string, at: Date) => ({
      op: "upsert",
      row: { lead_id: id, name: id, lead_data: {} },
      seq,
      changed_at: at.toISOString(),
      source: "stream",
    });
    await sql`select sync.merge_changes('mmp_toledo_leads', ${
      JSON.stringify([
        lead("lost-remove", "1", new Date(Date.now() - 2 * 3600_000)),
        lead("streamed-now", "2", new Date()),
      ])
    }::text::jsonb)`;
    await run(DENO_BIN, ["run", "-A", "local-stack/stack.ts", "up"], { cwd: ROOT });

    const healed = await eventually("the table to be marked stale and healed", async () => {
      const [s] = await sql`
        select s.stale_reason, j.status, j.requested_at
        from sync.table_state s join sync.backfill_jobs j on j.id = s.backfill_job_id
        where s.target_table = 'mmp_toledo_leads' and j.requested_at >= ${since}`;
      return s?.status === "done" ? s : undefined;
    }, 60_000);
    assert.match(healed.stale_reason, /passed the stream's retention unread/);
    const [status] =
      await sql`select stale from sync.status where target_table = 'mmp_toledo_leads'`;
    assert.equal(status.stale, false, "the finished backfill clears the mark");
    const kept = await sql`select lead_id from public.mmp_toledo_leads
                           where lead_id in ('lost-remove', 'streamed-now')`;
    assert.deepEqual(
      kept.map((r) => r.lead_id),
      ["streamed-now"],
      "the row whose delete was lost is gone",
    );
    const [tomb] = await sql`select count(*)::int as n from sync.tombstones
      where target_table = 'mmp_toledo_leads' and row_key = '{"lead_id": "lost-remove"}'`;
    assert.equal(tomb.n, 1, "its removal left a tombstone");
    await sql`delete from public.mmp_toledo_leads where lead_id = 'streamed-now'`;
  } finally {
    await sql.end();
  }
});
