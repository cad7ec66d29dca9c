/**
 * pg_cron alone drives a backfill to the end: the `sync-import-worker` job
 * (docs/interfaces.md) wakes the import-worker while a segment waits, with nobody else
 * calling it. pg_cron 1.4 schedules by the minute, so this waits up to one tick and the
 * work; scripts/run_tests.ts runs it beside other files that start no backfill and call
 * no import-worker (scripts/e2e_plan.ts), so that no other worker drives this job. Then,
 * the job done, the import-worker's keys: the one file that calls it.
 */

import assert from "node:assert/strict";
import { callFunction, connectDb, serviceRoleHeaders, stack } from "./stack_clients.ts";
import { waitForJobs } from "./backfill_fixtures.ts";

Deno.test("pg_cron alone drives a backfill to the end", async () => {
  const sql = connectDb();
  try {
    const [job] =
      await sql`select sync.start_backfill('toledo-consulting-dashboard-data', 2, false) as id`;
    // pg_cron 1.4 ticks once a minute: this waits up to one tick and the work.
    const [result] = await waitForJobs(sql, [job.id], 100_000);
    assert.equal(result.status, "done");
    assert.equal(Number(result.segments_done), 2);
    // What woke it: a run of sync-import-worker after the job was requested and before its
    // first segment was claimed (start_backfill was told not to wake the worker itself). A
    // run that has not failed: pg_cron may not have recorded it as ended yet.
    const [woken] = await sql`
      select j.requested_at, j.started_at,
             (select min(d.start_time) from cron.job_run_details d join cron.job c using (jobid)
              where c.jobname = 'sync-import-worker' and d.status <> 'failed'
                and d.start_time >= j.requested_at) as cron_run
      from sync.backfill_jobs j where j.id = ${job.id}`;
    assert.ok(woken.cron_run, `no run of sync-import-worker since ${woken.requested_at}`);
    assert.ok(
      woken.started_at >= woken.cron_run,
      `the job started at ${woken.started_at.toISOString()}, before sync-import-worker's run at ` +
        `${woken.cron_run.toISOString()}: something else woke the import-worker`,
    );
  } finally {
    await sql.end();
  }
});

// After the test above (a file's tests run in order): a call now wakes no worker for its job.
Deno.test("import-worker accepts a service key (legacy or sb_secret_) and nothing else", async () => {
  const refused = await callFunction("import-worker", { method: "POST", body: "{}" });
  assert.equal(refused.status, 401);
  assert.match((await refused.json()).error, /missing Authorization/);
  const wrongKey = await callFunction("import-worker", {
    method: "POST",
    headers: { authorization: `Bearer ${stack.SUPABASE_ANON_KEY}` },
    body: "{}",
  });
  assert.equal(wrongKey.status, 401);
  await wrongKey.body?.cancel();
  const accepted = await callFunction("import-worker", {
    method: "POST",
    headers: serviceRoleHeaders(),
    body: "{}",
  });
  assert.equal(accepted.status, 202);
  assert.equal((await accepted.json()).accepted, true);
  const secretKey = await callFunction("import-worker", {
    method: "POST",
    headers: { authorization: `Bearer ${stack.SUPABASE_SECRET_KEY}` },
    body: "{}",
  });
  assert.equal(secretKey.status, 202, "the new sb_secret_ key is accepted too");
  await secretKey.body?.cancel();
});
