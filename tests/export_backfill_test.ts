/**
 * Loading an export backfill (functions-shared/export_load.ts) into the stack's Postgres
 * over a direct connection, as `npm run backfill -- --from-export` does: every item of every data file lands once, stamped with the job's
 * read time (its export time less two minutes; changes made in them win); a loader killed mid-file is taken up from its checkpoint with nothing lost or
 * doubled, and one whose chunk outlasts its lease leaves the file to the loader that took
 * it over, failing nothing; a file that is not what its manifest says fails the job, naming the file.
 *
 * The export time is in 2001, so that the sweep at the job's end (which removes rows
 * older than the export time that the export lacks) touches none of the rows the other
 * tests write meanwhile.
 */

import assert from "node:assert/strict";
import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { processMeter } from "../functions-shared/cpu_meter.ts";
import { ExportDataError } from "../functions-shared/export_items.ts";
import { EXPORT_WINDOW_MS } from "../functions-shared/export_manifest.ts";
import { type ExportFileClaim, loadExportFile } from "../functions-shared/export_file_load.ts";
import { loadExportJob } from "../functions-shared/export_load.ts";
import { connectDb as connectPool } from "../functions-shared/sync_db.ts";
import { gzipItems } from "../local-stack/aws/export_layout.ts";
import { EXPORT_BUCKET } from "../local-stack/config.ts";
import { exportFileOpener, exportS3Client } from "../scripts/export_s3.ts";
import { connectDb, stack } from "./stack_clients.ts";
import { startOldExportBackfill } from "./backfill_fixtures.ts";

const ACTIONS = "firespring-backdoor-actions-dev";
/**
 * Long ago, so that the jobs' sweeps (which remove the rows of the whole table older than
 * the export and not in it) leave the other files' rows of the shared stack alone.
 */
const EXPORT_TIME = new Date("2001-01-01T00:00:00Z");
const cpu = processMeter(() => ({ user: 0, system: 0 }));

/** An export of `count` actions in files of `perFile`, kept in memory as the bucket. */
async function exportOf(
  prefix: string,
  count: number,
  perFile: number,
  itemOf = (n: number): Record<string, unknown> => ({
    action_id: { S: `${prefix}-${n}` },
    action_type: { S: "click" },
    timestamp: { N: "1770379200" },
  }),
) {
  const bucket = new Map<string, Uint8Array<ArrayBuffer>>();
  const files = [];
  for (let first = 0; first < count; first += perFile) {
    const items = Array.from(
      { length: Math.min(perFile, count - first) },
      (_, i) => itemOf(first + i),
    );
    const { bytes, md5 } = await gzipItems(items);
    const key = `x/AWSDynamoDB/${prefix}/data/${first}.json.gz`;
    bucket.set(key, new Uint8Array(bytes));
    files.push({ key, itemCount: items.length, md5 });
  }
  const open = (key: string) => Promise.resolve(new Blob([bucket.get(key)!]).stream());
  return { files, open };
}

async function withJob(
  prefix: string,
  files: { key: string; itemCount: number; md5: string }[],
  test: (
    sql: ReturnType<typeof connectDb>,
    pool: ReturnType<typeof connectPool>,
    job: string,
  ) => Promise<void>,
) {
  const sql = connectDb();
  // The command loads next to the database, over a direct connection (not the pooler).
  const pool = connectPool(stack.DATABASE_URL, 3);
  const arn = `arn:aws:dynamodb:us-east-1:000000000000:table/${ACTIONS}/export/${prefix}`;
  const id = await startOldExportBackfill(sql, ACTIONS, arn, EXPORT_TIME, "exports", files);
  try {
    await test(sql, pool, id);
  } finally {
    await sql`delete from public.firespring_actions where action_id like ${prefix + "-%"}`;
    await sql`delete from sync.backfill_jobs where id = ${id}`;
    await pool.end();
    await sql.end();
  }
}

Deno.test("a killed loader's file is taken up from its checkpoint; every item lands once, at the export time", async () => {
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const { files, open } = await exportOf(prefix, 25, 15);
  await withJob(prefix, files, async (sql, pool, job) => {
    // The first loader writes one page of the first file, then dies.
    const [file] = await sql<
      ExportFileClaim[]
    >`select * from sync.claim_export_file(${job}, 'doomed')`;
    const killed = new Error("killed");
    await assert.rejects(
      loadExportFile(job, "doomed", file, {
        sql: pool,
        open,
        readAt: EXPORT_TIME,
        cpu,
        chunkPages: 1,
        onPage: () => {
          throw killed;
        },
      }),
      killed,
    );
    const [segment] =
      await sql`select exclusive_start_key, items_scanned from sync.backfill_segments
                                where job_id = ${job} and segment = 0`;
    assert.deepEqual([segment.exclusive_start_key, Number(segment.items_scanned)], [
      { line: 4 },
      4,
    ]);
    // Two workers load the rest; the dead loader's file waits for its lease to run out.
    let waits = 0;
    await loadExportJob(job, 2, "loader", {
      sql: pool,
      open,
      readAt: EXPORT_TIME,
      cpu,
      sleep: async () => {
        if (waits++ === 0) {
          await sql`update sync.backfill_segments set lease_expires_at = now() - interval '1 second'
                    where job_id = ${job} and lease_owner = 'doomed'`;
        }
      },
    });
    assert.ok(waits >= 1, "a worker waited for the dead loader's lease");

    const rows = await sql`select action_id, sync_changed_at from public.firespring_actions
                           where action_id like ${prefix + "-%"}`;
    assert.equal(rows.length, 25);
    assert.ok(rows.every((r) => r.sync_changed_at.getTime() === EXPORT_TIME.getTime()));
    const [done] =
      await sql`select status, rows_removed, (select sum(items_scanned) from sync.backfill_segments
                               where job_id = ${job})::int as items
                             from sync.backfill_jobs where id = ${job}`;
    assert.deepEqual([done.status, Number(done.rows_removed), done.items], ["done", 0, 25]);
  });
});

Deno.test("a chunk that does not start at its file's checkpoint is refused (a lost asynchronous commit)", async () => {
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const { files, open } = await exportOf(prefix, 12, 12);
  await withJob(prefix, files, async (sql, pool, job) => {
    const [file] = await sql<ExportFileClaim[]>`
      select * from sync.claim_export_file(${job}, 'w')`;
    const deps = { sql: pool, open, readAt: EXPORT_TIME, cpu, chunkPages: 1 };
    // The first chunk (lines 0-3) commits; the worker stops there.
    const stop = new Error("stop");
    await assert.rejects(
      loadExportFile(job, "w", file, {
        ...deps,
        onPage: () => {
          throw stop;
        },
      }),
      stop,
    );
    // That commit, made without waiting for its WAL, is lost in a crash: the checkpoint
    // is back at line 0, while the worker goes on from line 4.
    await sql`update sync.backfill_segments set exclusive_start_key = null
              where job_id = ${job} and segment = 0`;
    await assert.rejects(
      loadExportFile(job, "w", { ...file, next_line: 4 }, deps),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "SY001", error.message);
        assert.match(error.message, /its checkpoint is at line 0, not 4 where this write starts/);
        return true;
      },
    );
    const [segment] = await sql`select exclusive_start_key from sync.backfill_segments
                                where job_id = ${job} and segment = 0`;
    assert.equal(segment.exclusive_start_key, null, "nothing was written past the lost lines");
  });
});

/**
 * A loader whose first chunk stalls (its transaction open, COPY waiting) while its lease
 * runs out and another loader loads the whole job; then the stall ends with `ending`:
 * the file's bytes (its checkpoint is then refused, SY001) or an error of its own (a
 * timeout, say). Either way it leaves the file, failing nothing, and the job ends done.
 */
async function stalledPastItsLease(ending: "bytes" | Error, leaving: RegExp) {
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const { files, open } = await exportOf(prefix, 25, 15);
  await withJob(prefix, files, async (sql, pool, job) => {
    let openGate = () => {};
    const gate = new Promise<void>((resolve) => openGate = resolve);
    let stalled = () => {};
    const inChunk = new Promise<void>((resolve) => stalled = resolve);
    const stalledOpen = async (key: string) => {
      const bytes = await new Response(await open(key)).bytes();
      return new ReadableStream<Uint8Array>({
        async start(controller) {
          stalled();
          await gate;
          if (ending instanceof Error) return controller.error(ending);
          controller.enqueue(bytes);
          controller.close();
        },
      });
    };
    const lines: string[] = [];
    const slow = loadExportJob(job, 1, "slow", {
      sql: pool,
      open: stalledOpen,
      readAt: EXPORT_TIME,
      cpu,
      log: (line) => lines.push(line),
      sleep: () => new Promise((resolve) => setTimeout(resolve, 20)),
    });
    await inChunk;
    // Its lease runs out meanwhile: another loader takes the file over and loads the job.
    await sql`update sync.backfill_segments set lease_expires_at = now() - interval '1 second'
              where job_id = ${job} and lease_owner = 'slow-0'`;
    await loadExportJob(job, 1, "fast", { sql: pool, open, readAt: EXPORT_TIME, cpu });
    openGate();
    await slow; // it leaves the file, failing nothing
    assert.ok(lines.some((l) => leaving.test(l)), lines.join("\n"));
    const [done] = await sql`select status, error,
                               (select sum(items_scanned) from sync.backfill_segments
                                where job_id = ${job})::int as items
                             from sync.backfill_jobs where id = ${job}`;
    assert.deepEqual([done.status, done.error, done.items], ["done", null, 25]);
    const rows = await sql`select action_id, sync_changed_at from public.firespring_actions
                           where action_id like ${prefix + "-%"}`;
    assert.equal(rows.length, 25);
    assert.ok(rows.every((r) => r.sync_changed_at.getTime() === EXPORT_TIME.getTime()));
  });
}

Deno.test("a loader whose chunk outlasts its lease leaves the file to the one that took it over; the job ends done", async () => {
  await stalledPastItsLease("bytes", /slow-0 left file 0 .*no longer holds the lease/);
});

Deno.test("a loader's own error after its lease was taken over fails nothing; the job ends done", async () => {
  const timeout = new Error("the S3 read timed out");
  // Read again from its checkpoint, the file is no longer its worker's: it leaves it, on
  // its next chunk's check (or, read again in vain, on the read's own error).
  await stalledPastItsLease(
    timeout,
    /slow-0 left file 0 .*(the S3 read timed out|worker slow-0 no longer holds it)/,
  );
});

Deno.test("a loader renews its file's lease while a chunk is written: one that outlasts the lease keeps its file", async () => {
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const { files, open } = await exportOf(prefix, 10, 10);
  await withJob(prefix, files, async (sql, pool, job) => {
    // A lease of 5 s (the shortest a job may have), renewed every 1.7 s; the chunk
    // stalls 7 s with its transaction open, as a merge behind the table's lock may.
    await sql`update sync.backfill_jobs set lease_seconds = 5 where id = ${job}`;
    let stalled = () => {};
    const inChunk = new Promise<void>((resolve) => stalled = resolve);
    const slowOpen = async (key: string) => {
      const bytes = await new Response(await open(key)).bytes();
      return new ReadableStream<Uint8Array>({
        async start(controller) {
          stalled();
          await new Promise((resolve) => setTimeout(resolve, 7_000));
          controller.enqueue(bytes);
          controller.close();
        },
      });
    };
    const slow = loadExportJob(job, 1, "slow", {
      sql: pool,
      open: slowOpen,
      readAt: EXPORT_TIME,
      cpu,
    });
    await inChunk;
    // Past the lease, another loader finds the file held, and loads nothing.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    let opened = 0;
    const other = loadExportJob(job, 1, "other", {
      sql: pool,
      open: (key) => {
        opened++;
        return open(key);
      },
      readAt: EXPORT_TIME,
      cpu,
      sleep: () => new Promise((resolve) => setTimeout(resolve, 200)),
    });
    await Promise.all([slow, other]);
    assert.equal(opened, 0, "the file was not taken over");
    const [file] = await sql`select s.status, s.takeovers, j.status as job
                             from sync.backfill_segments s join sync.backfill_jobs j on j.id = s.job_id
                             where s.job_id = ${job}`;
    assert.deepEqual(
      [file.status, file.takeovers, file.job],
      ["done", 0, "done"],
    );
    const [rows] = await sql`select count(*)::int as n from public.firespring_actions
                             where action_id like ${prefix + "-%"}`;
    assert.equal(rows.n, 10);
  });
});

Deno.test("a file whose bytes stop mid-way is read again from its checkpoint; every item lands once", async () => {
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const { files, open } = await exportOf(prefix, 40, 40);
  let opened = 0;
  // The first read breaks part-way through the file, as a connection to S3 can.
  const flaky = async (key: string) => {
    const body = await open(key);
    if (opened++ > 0) return body;
    const bytes = new Uint8Array(await new Response(body).arrayBuffer());
    let pulls = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulls++ === 0) controller.enqueue(bytes.slice(0, Math.floor(bytes.length * 0.6)));
        else controller.error(new Error("connection reset by peer"));
      },
    });
  };
  const lines: string[] = [];
  await withJob(prefix, files, async (sql, pool, job) => {
    await loadExportJob(job, 1, "loader", {
      sql: pool,
      open: flaky,
      readAt: EXPORT_TIME,
      cpu,
      // A chunk per page (of 4 items): some are committed before the break, so the file
      // is read again from a checkpoint past its start.
      chunkPages: 1,
      log: (line) => lines.push(line),
      sleep: () => Promise.resolve(),
    });
    assert.equal(opened, 2);
    const resumed = new RegExp(
      `file ${files[0].key} of ${ACTIONS}: export data file ${
        files[0].key
      }: unreadable after line \\d+: connection reset by peer; reading it again from line (\\d+) in 1000 ms`,
    ).exec(lines.join("\n"));
    assert.ok(resumed, lines.join("\n"));
    // From a checkpoint inside the file: some of it committed, some of it left to read.
    const from = Number(resumed[1]);
    assert.ok(from > 0 && from < 40, `resumed from line ${from}`);
    const [r] = await sql`select count(*)::int as n, count(distinct action_id)::int as keys
                          from public.firespring_actions where action_id like ${prefix + "-%"}`;
    assert.deepEqual([r.n, r.keys], [40, 40]);
    const [ended] = await sql`select status from sync.backfill_jobs where id = ${job}`;
    assert.equal(ended.status, "done");
    // Read again from the checkpoint, not from the start: no item counted twice.
    const [progress] = await sql`select items_scanned from sync.backfill_progress
                                 where job_id = ${job}`;
    assert.equal(Number(progress.items_scanned), 40);
  });
});

Deno.test("credentials S3 refuses stop the loader with its job running and no file failed; the right ones finish it", async () => {
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const { files } = await exportOf(prefix, 25, 15);
  const { open: inMemory } = await exportOf(prefix, 25, 15);
  // The files in the S3 stand-in, which checks each request's signature as S3 does.
  const env = (name: string) => (stack as unknown as Record<string, string>)[name];
  const s3 = exportS3Client(env);
  const wrongSecret = `wrong-${crypto.randomUUID()}`;
  const refused = exportS3Client((name) =>
    name === "S3_SECRET_ACCESS_KEY" ? wrongSecret : env(name)
  );
  for (const file of files) {
    const body = new Uint8Array(await new Response(await inMemory(file.key)).arrayBuffer());
    await s3.send(new PutObjectCommand({ Bucket: EXPORT_BUCKET, Key: file.key, Body: body }));
  }
  try {
    await withJob(prefix, files, async (sql, pool, job) => {
      const load = (client: typeof s3) =>
        loadExportJob(job, 2, "loader", {
          sql: pool,
          open: exportFileOpener(client, EXPORT_BUCKET),
          readAt: EXPORT_TIME,
          cpu,
          sleep: () => Promise.resolve(),
        });
      await assert.rejects(load(refused), (error: Error) => {
        assert.match(
          error.message,
          new RegExp(
            `^export backfill job ${job} of ${ACTIONS}: export data file ` +
              `x/AWSDynamoDB/${prefix}/data/\\d+\\.json\\.gz: The request signature we calculated does not match`,
          ),
        );
        assert.match(error.message, /the job left running: fix the credentials/);
        assert.ok(!error.message.includes(wrongSecret), "no secret in the message");
        return true;
      });
      const [running] = await sql`
        select j.status, count(*) filter (where s.status = 'failed')::int as failed,
               coalesce(sum(s.items_scanned), 0)::int as items
        from sync.backfill_jobs j join sync.backfill_segments s on s.job_id = j.id
        where j.id = ${job} group by j.status`;
      assert.deepEqual([running.status, running.failed, running.items], ["running", 0, 0]);

      await load(s3);
      const [done] = await sql`select status from sync.backfill_jobs where id = ${job}`;
      assert.equal(done.status, "done");
      const [{ rows }] = await sql`select count(*)::int as rows from public.firespring_actions
                                   where action_id like ${prefix + "-%"}`;
      assert.equal(rows, 25);
    });
  } finally {
    for (const file of files) {
      await s3.send(new DeleteObjectCommand({ Bucket: EXPORT_BUCKET, Key: file.key }));
    }
    s3.destroy();
    refused.destroy();
  }
});

Deno.test("a data file whose MD5 is not the manifest's fails the job, naming the file", async () => {
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const { files, open } = await exportOf(prefix, 3, 10);
  files[0].md5 = "AAAAAAAAAAAAAAAAAAAAAA==";
  await withJob(prefix, files, async (sql, pool, job) => {
    await assert.rejects(
      loadExportJob(job, 1, "loader", { sql: pool, open, readAt: EXPORT_TIME, cpu }),
      (error: Error) =>
        error.cause instanceof ExportDataError &&
        error.message.startsWith(
          `export backfill job ${job} of ${ACTIONS}: export data file ${files[0].key}: its MD5 is`,
        ),
    );
    const [failed] = await sql`select status, error from sync.backfill_jobs where id = ${job}`;
    assert.equal(failed.status, "failed");
    assert.match(
      failed.error,
      new RegExp(`segment 0: export data file ${files[0].key}: its MD5 is`),
    );
  });
});

Deno.test("a chunk's unmappable item and the change Postgres refuses are dead-lettered alone; a stream change after the export time wins", async () => {
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const refused = `${prefix}-refused`;
  const { files, open } = await exportOf(prefix, 12, 6, (n) => ({
    // Line 5 of the second (last) file does not map (U+0000, which Postgres cannot store,
    // in a column); line 3 of the first is refused by Postgres (the constraint below),
    // after the mapping let it through (its file is then written page by page, the second
    // in chunks).
    action_id: { S: `${prefix}-${n}` },
    ...(n === 10 ? { session_id: { S: "s\u0000" } } : {}),
    action_type: { S: n === 2 ? refused : n === 5 ? "export" : "click" },
    timestamp: { N: "1770379200" },
  }));
  await withJob(prefix, files, async (sql, pool, job) => {
    // The unmappable item's row, older than the export: the job's end, which runs in the
    // last chunk's statement, must find its dead letter and spare it.
    await sql`insert into public.firespring_actions (action_id, action_type, action_data,
                                                     sync_changed_at, sync_source)
              values (${prefix + "-10"}, 'before', '{}', '2000-06-01T00:00:00Z', 'backfill')`;
    // A stream change of a key the export holds, an hour after the export time.
    await sql`select sync.merge_changes('firespring_actions', ${
      JSON.stringify([{
        op: "upsert",
        seq: "1",
        changed_at: "2001-01-01T01:00:00Z",
        source: "stream",
        row: { action_id: `${prefix}-5`, action_type: "stream", action_data: {} },
      }])
    }::text::jsonb)`;
    const constraint = `refuse_${prefix.replaceAll("-", "_")}`;
    await sql.unsafe(
      `alter table public.firespring_actions add constraint ${constraint}
         check (action_type is distinct from '${refused}') not valid`,
    );
    try {
      // One worker: the files in order, the unmappable item's file last.
      await loadExportJob(job, 1, "loader", { sql: pool, open, readAt: EXPORT_TIME, cpu });
    } finally {
      await sql.unsafe(`alter table public.firespring_actions drop constraint ${constraint}`);
    }
    const rows = await sql`select action_id, action_type from public.firespring_actions
                           where action_id like ${prefix + "-%"} order by action_id`;
    assert.equal(rows.length, 11, "every item but the two dead letters, and the row kept");
    assert.equal(
      rows.find((r) => r.action_id === `${prefix}-10`)?.action_type,
      "before",
      "the unmappable item's row, spared by its dead letter at the job's end",
    );
    assert.equal(rows.find((r) => r.action_id === `${prefix}-5`)?.action_type, "stream");
    const [pgLetter] = await sql`select target_table, row_key, reason from sync.dead_letters
                                 where row_key = ${sql.json({ action_id: `${prefix}-2` })}`;
    assert.equal(
      pgLetter?.target_table,
      "firespring_actions",
      "the refused change is a dead letter",
    );
    assert.match(pgLetter.reason, new RegExp(constraint));
    const [mapLetter] = await sql`select reason from sync.dead_letters
                                  where row_key = ${sql.json({ action_id: `${prefix}-10` })}
                                    and position_at = ${EXPORT_TIME}`;
    assert.ok(mapLetter, "the unmappable item is a dead letter, under its key");
    assert.match(mapLetter.reason, /attribute session_id: the string contains U\+0000/);
    const [done] = await sql`select status, (select sum(items_scanned) from sync.backfill_segments
                               where job_id = ${job})::int as items
                             from sync.backfill_jobs where id = ${job}`;
    assert.deepEqual([done.status, done.items], ["done", 12]);
    await sql`delete from sync.dead_letters
              where row_key in (${sql.json({ action_id: `${prefix}-2` })},
                                ${sql.json({ action_id: `${prefix}-10` })})`;
  });
});

Deno.test("changes made in the two minutes before the export's time win over its items, which may be older", async () => {
  // AWS: an export's items may be as they were up to two minutes before its export time
  // (functions-shared/export_manifest.ts, EXPORT_WINDOW_MS), so its rows are stamped two
  // minutes before it: the job's read time, EXPORT_TIME here. Changes a minute before the
  // export's time (a minute after its read time) that the export missed: an update (it holds
  // the older image), a delete (it still holds the item), a creation (it lacks the item).
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const halfway = new Date(EXPORT_TIME.getTime() + EXPORT_WINDOW_MS / 2).toISOString();
  const { files, open } = await exportOf(prefix, 3, 3, (n) => ({
    action_id: { S: `${prefix}-${n}` },
    action_type: { S: "exported" },
    timestamp: { N: "1770379200" },
  }));
  await withJob(prefix, files, async (sql, pool, job) => {
    await sql`insert into public.firespring_actions (action_id, action_type, action_data,
                                                     sync_changed_at, sync_source)
              values (${prefix + "-1"}, 'before', '{}', '2000-06-01T00:00:00Z', 'backfill')`;
    const change = (op: string, id: string, type: string) => ({
      op,
      seq: "1",
      changed_at: halfway,
      source: "stream",
      row: { action_id: `${prefix}-${id}`, action_type: type, action_data: {} },
    });
    await sql`select sync.merge_changes('firespring_actions', ${
      JSON.stringify([
        change("upsert", "0", "updated"),
        change("delete", "1", "before"),
        change("upsert", "new", "created"),
      ])
    }::text::jsonb)`;
    await loadExportJob(job, 1, "loader", { sql: pool, open, readAt: EXPORT_TIME, cpu });
    const rows = await sql`select action_id, action_type from public.firespring_actions
                           where action_id like ${prefix + "-%"} order by action_id`;
    assert.deepEqual(rows.map((r) => [r.action_id, r.action_type]), [
      [`${prefix}-0`, "updated"],
      [`${prefix}-2`, "exported"],
      [`${prefix}-new`, "created"],
    ]);
    const [done] = await sql`select status from sync.backfill_jobs where id = ${job}`;
    assert.equal(done.status, "done");
    await sql`delete from sync.tombstones where target_table = 'firespring_actions'
              and row_key = ${sql.json({ action_id: `${prefix}-1` })}`;
  });
});
