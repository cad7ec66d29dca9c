/**
 * Loading an export backfill (functions-shared/export_load.ts) into the stack's Postgres
 * over a direct connection, as `npm run backfill -- --from-export` does: every item of every data file lands once, stamped with the export
 * time; a loader killed mid-file is taken up from its checkpoint with nothing lost or
 * doubled; a file that is not what its manifest says fails the job, naming the file.
 *
 * The export time is in 2001, so that the sweep at the job's end (which removes rows
 * older than the export time that the export lacks) touches none of the rows the other
 * tests write meanwhile.
 */

import assert from "node:assert/strict";
import { processMeter } from "../functions-shared/cpu_meter.ts";
import { ExportDataError } from "../functions-shared/export_items.ts";
import {
  type ExportFileClaim,
  loadExportFile,
  loadExportJob,
} from "../functions-shared/export_load.ts";
import { connectDb as connectPool } from "../functions-shared/sync_db.ts";
import { gzipItems } from "../local-stack/aws/export_layout.ts";
import { connectDb, stack } from "./stack_clients.ts";

const ACTIONS = "firespring-backdoor-actions-dev";
const EXPORT_TIME = new Date("2001-01-01T00:00:00Z");
const cpu = processMeter(() => ({ user: 0, system: 0 }));

/** An export of `count` actions in files of `perFile`, kept in memory as the bucket. */
async function exportOf(prefix: string, count: number, perFile: number) {
  const bucket = new Map<string, Uint8Array<ArrayBuffer>>();
  const files = [];
  for (let first = 0; first < count; first += perFile) {
    const items = Array.from({ length: Math.min(perFile, count - first) }, (_, i) => ({
      action_id: { S: `${prefix}-${first + i}` },
      action_type: { S: "click" },
      timestamp: { N: "1770379200" },
    }));
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
  const [{ id }] = await sql`
    select sync.start_export_backfill(${ACTIONS}, ${arn}, ${EXPORT_TIME}, 'exports',
      ${JSON.stringify(files)}::text::jsonb, 4) as id`;
  try {
    await test(sql, pool, String(id));
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
        exportTime: EXPORT_TIME,
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
      exportTime: EXPORT_TIME,
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

Deno.test("a data file whose MD5 is not the manifest's fails the job, naming the file", async () => {
  const prefix = `export-${crypto.randomUUID().slice(0, 8)}`;
  const { files, open } = await exportOf(prefix, 3, 10);
  files[0].md5 = "AAAAAAAAAAAAAAAAAAAAAA==";
  await withJob(prefix, files, async (sql, pool, job) => {
    await assert.rejects(
      loadExportJob(job, 1, "loader", { sql: pool, open, exportTime: EXPORT_TIME, cpu }),
      (error: Error) => error instanceof ExportDataError && error.message.includes(files[0].key),
    );
    const [failed] = await sql`select status, error from sync.backfill_jobs where id = ${job}`;
    assert.equal(failed.status, "failed");
    assert.match(
      failed.error,
      new RegExp(`segment 0: export data file ${files[0].key}: its MD5 is`),
    );
  });
});
