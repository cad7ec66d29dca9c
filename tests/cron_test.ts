/**
 * pg_cron alone drives a backfill to the end: the `sync-import-worker` job
 * (docs/interfaces.md) wakes the import-worker while a segment waits, with nobody else
 * calling it. pg_cron 1.4 schedules by the minute, so this waits up to one tick and the
 * work; scripts/run_tests.ts runs it beside other files that start no backfill
 * (scripts/e2e_plan.ts), so that no other worker drives this job meanwhile.
 */

import assert from "node:assert/strict";
import { connectDb } from "./stack_clients.ts";
import { waitForJobs } from "./backfill_fixtures.ts";

Deno.test("pg_cron alone drives a backfill to the end", async () => {
  const sql = connectDb();
  try {
    const [job] =
      await sql`select sync.start_backfill('toledo-consulting-dashboard-data', 2, false) as id`;
    const [created] = await sql`select requested_at from sync.backfill_jobs where id = ${job.id}`;
    // pg_cron 1.4 ticks once a minute: this waits up to one tick and the work.
    const [result] = await waitForJobs(sql, [job.id], 100_000);
    assert.equal(result.status, "done");
    assert.equal(Number(result.segments_done), 2);
    // The schedule that woke it: a run of sync-import-worker since the job was created.
    const runs = await sql`select d.status from cron.job_run_details d
                           join cron.job j using (jobid)
                           where j.jobname = 'sync-import-worker'
                             and d.start_time >= ${created.requested_at}`;
    assert.ok(runs.length > 0, "sync-import-worker ran since the job was created");
    assert.ok(runs.every((r) => r.status === "succeeded"), JSON.stringify(runs));
  } finally {
    await sql.end();
  }
});
