/**
 * A backfill page and its checkpoint written in one statement (functions-shared/
 * backfill_page.ts), against the stack's Postgres through its pooler, as the
 * import-worker writes them: the rows and the checkpoint commit together; a lost lease
 * leaves neither, and so does a page of a cancelled job; the statement books the
 * segment's next read in the job's read ledger. (A page that Postgres refuses as a whole takes the careful path:
 * functions-shared/backfill_worker_test.ts.)
 */

import assert from "node:assert/strict";
import { commitPage } from "../functions-shared/backfill_page.ts";
import { processMeter } from "../functions-shared/cpu_meter.ts";
import type { Claim } from "../functions-shared/segment_work.ts";
import { connectDb as connectPool } from "../functions-shared/sync_db.ts";
import { connectDb, stack } from "./stack_clients.ts";

const ACTIONS = "firespring-backdoor-actions-dev";
const cpu = processMeter(() => ({ user: 0, system: 0 }));

/** The jobs the tests made, cancelled at the end. */
const jobs: string[] = [];

/**
 * A job of one segment, leased to `worker` by hand (no import-worker takes it). Its pages
 * never say done: a finished job would sweep the table of what its Scan did not see.
 */
async function leasedSegment(sql: ReturnType<typeof connectDb>, worker: string) {
  const [{ id }] = await sql`select sync.start_backfill(${ACTIONS}, 1, false) as id`;
  jobs.push(String(id));
  await sql`update sync.backfill_segments
            set status = 'running', lease_owner = ${worker},
                lease_expires_at = now() + interval '5 minutes', started_at = now()
            where job_id = ${id}`;
  await sql`update sync.backfill_jobs set status = 'running', started_at = now() where id = ${id}`;
  const claim: Claim = {
    job_id: String(id),
    segment: 0,
    total_segments: 1,
    source_table: ACTIONS,
    target_table: "firespring_actions",
    region: "us-east-1",
    exclusive_start_key: null,
    page_size: 100,
  };
  return claim;
}

const action = (id: string) => ({
  action_id: { S: id },
  action_type: { S: "click" },
  timestamp: { N: "1770379200" },
});

async function withSetup(
  test: (
    sql: ReturnType<typeof connectDb>,
    pool: ReturnType<typeof connectPool>,
    p: string,
  ) => Promise<void>,
) {
  const sql = connectDb();
  const pool = connectPool(stack.POOLER_URL, 2);
  const p = `bp-${crypto.randomUUID().slice(0, 8)}-`;
  try {
    await test(sql, pool, p);
  } finally {
    await sql`update sync.backfill_jobs set status = 'cancelled', finished_at = now()
              where id = any(${jobs}::bigint[])`;
    await sql`delete from public.firespring_actions where action_id like ${`${p}%`}`;
    await sql`delete from sync.tombstones where row_key->>'action_id' like ${`${p}%`}`;
    await sql`delete from sync.dead_letters where row_key->>'action_id' like ${`${p}%`}`;
    await pool.end();
    await sql.end();
  }
}

Deno.test("a page's rows and its checkpoint commit in one statement; a lost lease leaves neither", async () => {
  await withSetup(async (sql, pool, p) => {
    const worker = `${p}worker`;
    const claim = await leasedSegment(sql, worker);
    const page = { items: [action(`${p}a`), action(`${p}b`)], readAt: new Date(), nextKey: null };
    const next = JSON.stringify({ action_id: { S: `${p}b` } });

    // Another worker took the lease: the statement fails with SY001, nothing is written.
    await sql`update sync.backfill_segments set lease_owner = 'someone else'
              where job_id = ${claim.job_id}`;
    await assert.rejects(
      commitPage(pool, claim, page, { worker, nextKey: next, items: 2, done: false }, { cpu }),
      (error: { code?: string; message?: string }) => {
        assert.equal(error.code, "SY001");
        assert.match(error.message!, /no longer holds the lease/);
        return true;
      },
    );
    const none = await sql`select action_id from public.firespring_actions
                           where action_id like ${`${p}%`}`;
    assert.equal(none.length, 0, "the merge rolled back with the refused checkpoint");

    // With the lease back, the rows and the checkpoint are there together.
    await sql`update sync.backfill_segments set lease_owner = ${worker}
              where job_id = ${claim.job_id}`;
    const rows = await commitPage(pool, claim, page, {
      worker,
      nextKey: next,
      items: 2,
      done: false,
    }, { cpu });
    assert.equal(rows.rows, 2);
    const written = await sql`select action_id, sync_source from public.firespring_actions
                              where action_id like ${`${p}%`} order by action_id`;
    assert.deepEqual(written.map((r) => [r.action_id, r.sync_source]), [
      [`${p}a`, "backfill"],
      [`${p}b`, "backfill"],
    ]);
    const [segment] = await sql`select exclusive_start_key, items_scanned, rows_written, pages
                                from sync.backfill_segments where job_id = ${claim.job_id}`;
    assert.deepEqual(segment.exclusive_start_key, JSON.parse(next));
    assert.deepEqual(
      [segment.items_scanned, segment.rows_written, segment.pages].map(Number),
      [2, 2, 1],
    );
  });
});

Deno.test("a page of a cancelled job writes nothing and says so, naming the table, job and segment", async () => {
  await withSetup(async (sql, pool, p) => {
    const worker = `${p}worker`;
    const claim = await leasedSegment(sql, worker);
    const page = { items: [action(`${p}a`)], readAt: new Date(), nextKey: null };
    const next = JSON.stringify({ action_id: { S: `${p}a` } });
    // The reset (demo/load_report_data_set.ts, emptyTargets) cancels the job; the lease
    // is left as it was: the checkpoint refuses the page for the job's sake alone.
    await sql`update sync.backfill_jobs set status = 'cancelled', finished_at = now()
              where id = ${claim.job_id}`;
    await assert.rejects(
      commitPage(pool, claim, page, { worker, nextKey: next, items: 1, done: false }, {
        cpu,
        rate: 250,
      }),
      (error: { code?: string; message?: string }) => {
        assert.equal(error.code, "SY002");
        assert.equal(
          error.message,
          `backfill job ${claim.job_id} segment 0 of ${ACTIONS}: the job is cancelled, ` +
            "so this page was not written; the segment stops",
        );
        return true;
      },
    );
    const none = await sql`select action_id from public.firespring_actions
                           where action_id like ${`${p}%`}`;
    assert.equal(none.length, 0, "the merge rolled back with the refused checkpoint");
    const [segment] = await sql`select pages, lease_owner from sync.backfill_segments
                                where job_id = ${claim.job_id}`;
    assert.deepEqual([segment.pages, segment.lease_owner], [0, worker]);
  });
});

Deno.test("a page's statement settles its read in the job's ledger and books the segment's next turn", async () => {
  await withSetup(async (sql, pool, p) => {
    const worker = `${p}worker`;
    const claim = await leasedSegment(sql, worker);
    const page = { items: [action(`${p}a`)], readAt: new Date(), nextKey: null };
    const next = JSON.stringify({ action_id: { S: `${p}a` } });
    const committed = await commitPage(pool, claim, page, {
      worker,
      nextKey: next,
      items: 1,
      done: false,
      spentUnits: 3,
      bookedUnits: 0,
    }, { cpu, rate: 250 });
    assert.equal(committed.rows, 1);
    assert.equal(committed.nextTurn?.units, 3, "booked at what the last page cost");
    assert.ok(committed.nextTurn!.waitMs >= 0);
    const [ledger] = await sql`select units from sync.backfill_read_ledger
                               where job_id = ${claim.job_id}`;
    assert.equal(Number(ledger.units), 3);
  });
});
