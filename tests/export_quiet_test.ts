/**
 * An export backfill whose data file goes quiet part-way (S3_FAULTS `quiet_reads`,
 * `quiet_ms`: local-stack/aws/s3_faults.ts), loaded as `npm run backfill -- --from-export`
 * loads it (functions-shared/export_load.ts over scripts/export_s3.ts's reads), with its
 * waits shortened through its dependencies (1 s for the resume, scripts/s3_resumed_body.ts's
 * RESUME_QUIET_MS, 30 s in the command; 1.5 s for the give-up,
 * functions-shared/export_bytes.ts's READ_QUIET_MS, 60 s): the first read of the file stops
 * at its middle byte, and after 1 s without a byte the read resumes from that byte; the
 * resume is quiet too, so after 1.5 s without a byte the read is given up and the file read
 * again from its checkpoint, whole. Every item lands exactly once.
 *
 * The S3 stand-in is restarted with the fault (`stack:up`), and with its old value after.
 * The export time is in 2001, so that the job's sweep touches no other file's rows.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { processMeter } from "../functions-shared/cpu_meter.ts";
import { loadExportJob } from "../functions-shared/export_load.ts";
import { connectDb as connectPool } from "../functions-shared/sync_db.ts";
import { gzipItems } from "../local-stack/aws/export_layout.ts";
import { EXPORT_BUCKET } from "../local-stack/config.ts";
import { exportFileOpener, exportS3Client } from "../scripts/export_s3.ts";
import { currentS3Faults, setS3Faults } from "./stack_faults.ts";
import { connectDb, stack } from "./stack_clients.ts";
import { startOldExportBackfill } from "./backfill_fixtures.ts";

const ACTIONS = "firespring-backdoor-actions-dev";
const EXPORT_TIME = new Date("2001-01-01T00:00:00Z");
// The file's first read and its resume go quiet for longer than the reads wait.
/** The waits of the test's loader: a resume after 1 s quiet, the read given up after 1.5 s. */
const RESUME_QUIET_MS = 1_000;
const READ_QUIET_MS = 1_500;
/** The first two reads of the file go quiet for longer than both. */
const QUIET = "quiet_reads=2,quiet_ms=10000";
const cpu = processMeter(() => ({ user: 0, system: 0 }));

Deno.test("an export data file that goes quiet part-way is resumed, then read again, and loads every item once", async () => {
  const previous = currentS3Faults();
  await setS3Faults(QUIET);
  const prefix = `quiet-${crypto.randomUUID().slice(0, 8)}`;
  const n = 40;
  const items = Array.from({ length: n }, (_, i) => ({
    action_id: { S: `${prefix}-${i}` },
    action_type: { S: "click" },
    timestamp: { N: "1770379200" },
  }));
  const { bytes, md5 } = await gzipItems(items);
  const key = `x/AWSDynamoDB/${prefix}/data/0.json.gz`;
  const env = (name: string) => (stack as unknown as Record<string, string>)[name];
  const s3 = exportS3Client(env);
  const sql = connectDb();
  const pool = connectPool(stack.DATABASE_URL, 3);
  let job: string | undefined;
  try {
    await s3.send(
      new PutObjectCommand({ Bucket: EXPORT_BUCKET, Key: key, Body: new Uint8Array(bytes) }),
    );
    const arn = `arn:aws:dynamodb:us-east-1:000000000000:table/${ACTIONS}/export/${prefix}`;
    const files = [{ key, itemCount: n, md5 }];
    job = await startOldExportBackfill(sql, ACTIONS, arn, EXPORT_TIME, EXPORT_BUCKET, files);
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    await loadExportJob(job!, 1, "loader", {
      sql: pool,
      open: exportFileOpener(s3, EXPORT_BUCKET, { log, quietMs: RESUME_QUIET_MS }),
      readQuietMs: READ_QUIET_MS,
      readAt: EXPORT_TIME,
      cpu,
      sleep: () => Promise.resolve(),
      log,
    });
    const text = lines.join("\n");
    // The resume after RESUME_QUIET_MS, from the middle byte on.
    assert.match(
      text,
      new RegExp(
        `s3://${EXPORT_BUCKET}/${key}: [^\\n]*; reading on from byte ${
          Math.floor(bytes.byteLength / 2)
        } of ${bytes.byteLength} \\(resume 1 of \\d\\)`,
      ),
    );
    // The read given up after READ_QUIET_MS, and the file read again.
    assert.match(text, new RegExp(`no byte from S3 for ${READ_QUIET_MS / 1000} s`));

    const [done] = await sql`
      select j.status, (select sum(items_scanned) from sync.backfill_segments
                        where job_id = j.id)::int as items
      from sync.backfill_jobs j where j.id = ${job!}`;
    assert.deepEqual([done.status, done.items], ["done", n]);
    const rows = await sql`select action_id, sync_changed_at from public.firespring_actions
                           where action_id like ${prefix + "-%"}`;
    assert.equal(rows.length, n, "every item exactly once as a row");
    assert.deepEqual(
      new Set(rows.map((r) => r.action_id)),
      new Set(items.map((i) => i.action_id.S)),
    );
  } finally {
    await sql`delete from public.firespring_actions where action_id like ${prefix + "-%"}`;
    if (job) await sql`delete from sync.backfill_jobs where id = ${job}`;
    await s3.send(new DeleteObjectCommand({ Bucket: EXPORT_BUCKET, Key: key })).catch(() => {});
    s3.destroy();
    await pool.end();
    await sql.end();
    await setS3Faults(previous);
  }
});
