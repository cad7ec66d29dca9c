/**
 * Retention end to end (README, "Retention"; 20261128001000_retention.sql): after heavy
 * churn through sync.merge_changes, with the retention periods set small (tombstones and
 * observations at their floor of 24 hours) and the bookkeeping aged past them, one
 * `select sync.purge_expired()` and one `sync.purge_superseded` of the visitors leave exactly what the
 * rows still need (no tombstone, the held observation of each collapsed row, the open
 * dead letters, the webhook-ids of the replay window) and changes no row of any mirror
 * table. Also: the local pg_net worker deletes expired responses as pg_net does.
 */

import assert from "node:assert/strict";
import type postgres from "postgres";
import { connectDb } from "./stack_clients.ts";
import { deleteExpiredResponses } from "../local-stack/supabase/pg_net_worker.ts";

const MIRRORS = [
  "firespring_actions",
  "firespring_visitors",
  "firespring_extraction_jobs",
  "firespring_traffic_sources",
  "firespring_segments",
  "firespring_searches",
  "firespring_network_state",
  "mmp_toledo_leads",
  "toledo_dashboard",
];

/** Each mirror table's row count and a digest of every row, in a fixed order. */
async function mirrorState(sql: postgres.Sql): Promise<Record<string, string>> {
  const state: Record<string, string> = {};
  for (const table of MIRRORS) {
    const [r] = await sql`
      select count(*) || ' ' || coalesce(md5(string_agg(to_jsonb(t)::text, ',' order by to_jsonb(t)::text)), '')
        as state
      from ${sql(table)} t`;
    state[table] = r.state;
  }
  return state;
}

/** Applies `changes` to `table` through the one merge, 1,000 at a time. */
async function merge(sql: postgres.Sql, table: string, changes: unknown[]): Promise<void> {
  for (let i = 0; i < changes.length; i += 1000) {
    await sql`select * from sync.merge_changes(${table}, ${
      JSON.stringify(changes.slice(i, i + 1000))
    }::text::jsonb)`;
  }
}

// (backfill_job_retention keeps a day at least: the jobs a stale table's check looks for.)
const SMALL = [
  "dead_letter_retention",
  "cron_history_retention",
  "checksum_run_retention",
];

Deno.test("after heavy churn purge_expired leaves only what the rows need and changes no row", async () => {
  const sql = connectDb();
  const run = `ret-${crypto.randomUUID().slice(0, 8)}-`;
  const saved = await sql`select key, value from sync.settings where key like '%\\_retention'`;
  // pg_cron's purges paused meanwhile: one of them run between the ageing below and this
  // test's own purge would leave it less to report.
  const PURGES = ["sync-retention", "sync-retention-superseded"];
  await sql`select cron.alter_job(jobid, active := false) from cron.job
            where jobname in ${sql(PURGES)}`;
  try {
    const [running] = await sql`select count(*)::int as n from sync.backfill_jobs
                                where status = 'running'`;
    assert.equal(running.n, 0, "no backfill may run during this test (it keeps tombstones)");

    // Plain table: 6,000 keys inserted, 3,000 updated, 5,500 deleted (tombstones),
    // 200 of those inserted again.
    const seg = (op: string, i: number, seq: number, name = "n") => ({
      op,
      seq: String(seq),
      changed_at: "2026-02-06T10:00:00Z",
      source: "stream",
      row: op === "upsert"
        ? { segment_id: `${run}${i}`, segment_name: name, member_count: i, segment_criteria: {} }
        : { segment_id: `${run}${i}` },
    });
    const ids = [...Array(6000).keys()];
    await merge(sql, "firespring_segments", ids.map((i) => seg("upsert", i, 1)));
    await merge(
      sql,
      "firespring_segments",
      ids.slice(0, 3000).map((i) => seg("upsert", i, 2, "u")),
    );
    await merge(sql, "firespring_segments", ids.slice(500).map((i) => seg("delete", i, 3)));
    await merge(
      sql,
      "firespring_segments",
      ids.slice(500, 700).map((i) => seg("upsert", i, 4, "b")),
    );

    // Collapsed table: 1,500 visitors with 5 observations each (6,000 superseded); the
    // newest observation of 300 removed (the row falls back), the second of 300 others,
    // every observation of 100 more.
    const visit = (op: string, v: number, range: number, seq: number) => ({
      op,
      seq: String(seq),
      changed_at: "2026-02-06T10:00:00Z",
      source: "stream",
      range_key: range,
      rank: 0,
      row: op === "upsert"
        ? { visitor_id: `${run}${v}`, page_views: range, session_data: {} }
        : { visitor_id: `${run}${v}` },
    });
    const visitors = [...Array(1500).keys()];
    await merge(
      sql,
      "firespring_visitors",
      visitors.flatMap((v) => [1, 2, 3, 4, 5].map((r) => visit("upsert", v, r, 10 + r))),
    );
    await merge(sql, "firespring_visitors", [
      ...visitors.slice(0, 300).map((v) => visit("delete", v, 5, 20)),
      ...visitors.slice(300, 600).map((v) => visit("delete", v, 2, 20)),
      ...visitors.slice(600, 700).flatMap((v) =>
        [1, 2, 3, 4, 5].map((r) => visit("delete", v, r, 20))
      ),
    ]);

    // Dead letters: 300 replayed, 50 open; webhook-ids: 3,000 old, 20 within the window;
    // pg_cron history: 2,000 runs of a week ago.
    await sql`insert into sync.dead_letters (target_table, event_id, record, reason, replayed_at, replay_result)
              select 'firespring_actions', ${run} || g, '{}', 'test', case when g <= 300 then now() end,
                     case when g <= 300 then 'applied' end
              from generate_series(1, 350) g`;
    await sql`insert into sync.webhook_deliveries (webhook_id, received_at)
              select ${run} || g, case when g <= 3000 then now() - interval '1 hour' else now() end
              from generate_series(1, 3020) g`;
    // Run ids of our own: hosted, `postgres` may not use pg_cron's sequences (see
    // sql/platform/01-extensions.sql), and negative ids meet no real run.
    await sql`insert into cron.job_run_details (runid, jobid, command, status, start_time, end_time)
              select -1000000 - g, 999998, 'select 1', 'succeeded', now() - interval '8 days',
                     now() - interval '8 days'
              from generate_series(1, 2000) g`;

    // Small periods (tombstones and observations: the least allowed, the stream's 24
    // hours), and everything aged past them (no waiting).
    await sql`update sync.settings set value = '1 second' where key in ${sql(SMALL)}`;
    await sql`update sync.settings set value = '24 hours'
              where key in ('tombstone_retention', 'observation_retention')`;
    const aged = "1 day 1 minute";
    await sql`update sync.tombstones set recorded_at = recorded_at - ${aged}::interval`;
    await sql`update sync.observations set recorded_at = recorded_at - ${aged}::interval,
                                           live_since = live_since - ${aged}::interval`;
    // A collapsed row's synced_at is when it took its held observation.
    await sql`update public.firespring_visitors set synced_at = synced_at - ${aged}::interval`;
    await sql`update public.firespring_extraction_jobs
              set synced_at = synced_at - ${aged}::interval`;
    // (A replayed letter goes once its replay and its last sighting are both past the
    // retention: one seen again since is kept.)
    await sql`update sync.dead_letters set replayed_at = replayed_at - interval '1 minute',
                                           last_seen_at = last_seen_at - interval '1 minute'
              where replayed_at is not null`;

    const before = await mirrorState(sql);
    const [{ open }] = await sql`select count(*)::int as open from sync.dead_letters
                                 where replayed_at is null`;
    const [{ fresh }] = await sql`select count(*)::int as fresh from sync.webhook_deliveries
                                  where received_at >= now() - interval '10 minutes'`;

    const [{ result }] = await sql`select sync.purge_expired() as result`;
    assert.deepEqual(result.incomplete, [], "one run purges everything");
    assert.ok(result.tombstones >= 5500, `tombstones purged: ${result.tombstones}`);
    // The superseded observations, a collapsed table per transaction (pg_cron's turn).
    const [{ superseded }] = await sql`
      select sync.purge_superseded('firespring_visitors') as superseded`;
    assert.equal(superseded.complete, true, JSON.stringify(superseded));
    assert.ok(superseded.superseded_observations >= 5000, JSON.stringify(superseded));
    assert.ok(result.deleted_observations >= 1100, JSON.stringify(result));
    assert.ok(
      result.dead_letters >= 300 && result.webhook_deliveries >= 3000,
      JSON.stringify(result),
    );
    assert.ok(result.cron_history >= 2000, JSON.stringify(result));

    assert.deepEqual(await mirrorState(sql), before, "no row of any mirror table changed");

    const [counts] = await sql`
      select (select count(*)::int from sync.tombstones) as tombstones,
             (select count(*)::int from sync.observations) as observations,
             (select count(*)::int from public.firespring_visitors)
               + (select count(*)::int from public.firespring_extraction_jobs) as collapsed_rows,
             (select count(*)::int from sync.observations where row_key ->> 'visitor_id' like ${
      run + "%"
    }) as my_observations,
             (select count(*)::int from public.firespring_visitors where visitor_id like ${
      run + "%"
    }) as my_visitors,
             (select count(*)::int from public.firespring_segments where segment_id like ${
      run + "%"
    }) as my_segments,
             (select count(*)::int from sync.dead_letters) as dead_letters,
             (select count(*)::int from sync.dead_letters where event_id like ${
      run + "%"
    }) as my_dead_letters,
             (select count(*)::int from sync.webhook_deliveries) as webhook_ids,
             (select count(*)::int from cron.job_run_details where jobid = 999998) as my_cron_runs`;
    assert.deepEqual(counts, {
      tombstones: 0,
      observations: counts.collapsed_rows,
      collapsed_rows: counts.collapsed_rows,
      my_observations: 1400,
      my_visitors: 1400,
      my_segments: 700,
      dead_letters: open,
      my_dead_letters: 50,
      webhook_ids: fresh,
      my_cron_runs: 0,
    });
    const [held] = await sql`
      select count(*)::int as not_held from sync.observations o
      where o.deleted or not exists (
        select from public.firespring_visitors v
        where o.target_table = 'firespring_visitors' and v.visitor_id = o.row_key ->> 'visitor_id'
          and v.sync_range_key = o.range_key
        union all
        select from public.firespring_extraction_jobs j
        where o.target_table = 'firespring_extraction_jobs' and j.job_id = o.row_key ->> 'job_id'
          and j.sync_range_key = o.range_key)`;
    assert.equal(held.not_held, 0, "every observation left is the one a row holds");
    const fallbacks = await sql`select page_views::int as p, count(*)::int as n
                                from public.firespring_visitors where visitor_id like ${run + "%"}
                                group by 1 order by 1`;
    assert.deepEqual(fallbacks.map((r) => [r.p, r.n]), [[4, 300], [5, 1100]]);

    // pg_cron's own command, as its job sends it, runs and finds nothing more.
    const [job] = await sql`select command from cron.job where jobname = 'sync-retention'`;
    const [again] = await sql.unsafe(job.command);
    const second = Object.values(again)[0] as { incomplete: string[]; tombstones: number };
    assert.deepEqual([second.incomplete, second.tombstones], [[], 0], JSON.stringify(second));
  } finally {
    await sql`select cron.alter_job(jobid, active := true) from cron.job
              where jobname in ${sql(PURGES)}`;
    for (const s of saved) {
      await sql`update sync.settings set value = ${s.value} where key = ${s.key}`;
    }
    await sql`delete from public.firespring_segments where segment_id like ${run + "%"}`;
    await sql`delete from sync.tombstones where row_key ->> 'segment_id' like ${run + "%"}`;
    await sql`delete from public.firespring_visitors where visitor_id like ${run + "%"}`;
    await sql`delete from sync.observations where row_key ->> 'visitor_id' like ${run + "%"}`;
    await sql`delete from sync.dead_letters where event_id like ${run + "%"}`;
    await sql`delete from sync.webhook_deliveries where webhook_id like ${run + "%"}`;
    await sql`delete from cron.job_run_details where jobid = 999998`;
    await sql.end();
  }
});

Deno.test("the local pg_net deletes responses older than pg_net.ttl, a batch at a time", async () => {
  const sql = connectDb();
  try {
    // In one transaction, so that the running worker cannot see (and delete) them first.
    await sql.begin(async (tx) => {
      await tx`delete from net._http_response where created < now() - interval '4 hours'`;
      await tx`insert into net._http_response (id, status_code, content, created)
               select -g, 200, 'test', now() - case when g <= 3 then interval '7 hours'
                                                     else interval '5 hours' end
               from generate_series(1, 5) g`;
      const sqlOfTx = tx as unknown as postgres.Sql;
      assert.equal(await deleteExpiredResponses(sqlOfTx, 2), 2, "a batch of 2 of the 3 expired");
      assert.equal(await deleteExpiredResponses(sqlOfTx), 1, "then the last one");
      assert.deepEqual(
        (await tx`select -id as n from net._http_response where id < 0 order by 1`).map((r) => r.n),
        ["4", "5"],
        "responses younger than the default 6 hours stay",
      );
      await tx`set local pg_net.ttl = '4 hours'`;
      assert.equal(await deleteExpiredResponses(sqlOfTx), 2, "pg_net.ttl is honoured");
      await tx`delete from net._http_response where id < 0`;
    });
  } finally {
    await sql.end();
  }
});
