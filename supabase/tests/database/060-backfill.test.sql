-- The backfill's control panel in SQL: queueing, leases, checkpoints, take-over after
-- a lapsed lease, completion, failure, and stale tables.
set client_min_messages = warning;
begin;
select plan(33);

delete from sync.table_state;
select tests.forget_backfill_jobs();

select throws_ok(
  $$select sync.start_backfill('no-such-table')$$, '22023', null,
  'an unknown table is refused, naming the known ones'
);

-- Queue a job of 3 segments without waking the worker.
select lives_ok(
  $$select sync.start_backfill('firespring-backdoor-segments-dev', 3, false)$$,
  'a backfill is queued'
);
select results_eq(
  $$select status, total_segments from sync.backfill_jobs$$,
  $$values ('pending'::text, 3)$$,
  'the job waits'
);
select is((select count(*)::int from sync.backfill_segments where status = 'pending'), 3,
  'one segment per Scan segment');
select ok(sync.backfill_work_pending(), 'work is pending');

-- Two workers claim different segments.
select results_eq(
  $$select segment, total_segments, target_table, region from sync.claim_segment('w1')$$,
  $$values (0, 3, 'firespring_segments'::text, 'us-east-1'::text)$$,
  'the first worker gets segment 0 with what it needs to scan it'
);
select results_eq(
  $$select segment from sync.claim_segment('w2')$$, $$values (1)$$,
  'the second worker gets segment 1'
);
select is((select status from sync.backfill_jobs), 'running', 'the job runs');

-- A page: rows and checkpoint go together.
select lives_ok(
  $$select sync.checkpoint_segment((select id from sync.backfill_jobs), 0, 'w1',
      '{"segment_id": {"S": "seg-9"}}', 100, 90, false)$$,
  'the lease holder checkpoints a page'
);
select results_eq(
  $$select items_scanned, rows_written, pages, exclusive_start_key from sync.backfill_segments where segment = 0$$,
  $$values (100::bigint, 90::bigint, 1, '{"segment_id": {"S": "seg-9"}}'::jsonb)$$,
  'the checkpoint keeps the Scan''s LastEvaluatedKey and the counts'
);
select throws_ok(
  $$select sync.checkpoint_segment((select id from sync.backfill_jobs), 0, 'w2', null, 1, 1, false)$$,
  'SY001', null, 'a worker without the lease cannot checkpoint (its page rolls back)'
);

-- w1 dies: its lease lapses, and a new worker takes over from the checkpoint.
update sync.backfill_segments set lease_expires_at = now() - interval '1 second' where segment = 0;
select results_eq(
  $$select segment, exclusive_start_key from sync.claim_segment('w3')$$,
  $$values (0, '{"segment_id": {"S": "seg-9"}}'::jsonb)$$,
  'a lapsed lease is taken over from the last checkpoint'
);
select throws_ok(
  $$select sync.checkpoint_segment((select id from sync.backfill_jobs), 0, 'w1', null, 1, 1, false)$$,
  'SY001', null, 'the old worker, should it wake, cannot write any more'
);

-- A worker whose budget ran out hands its segment back.
select sync.release_segment((select id from sync.backfill_jobs), 1, 'w2');
select results_eq(
  $$select status, lease_owner from sync.backfill_segments where segment = 1$$,
  $$values ('pending'::text, null::text)$$,
  'a released segment waits for the next worker'
);

-- Finishing every segment finishes the job.
select sync.checkpoint_segment((select id from sync.backfill_jobs), 0, 'w3', null, 5, 5, true);
select segment from sync.claim_segment('w4');
select segment from sync.claim_segment('w5');
select sync.checkpoint_segment((select id from sync.backfill_jobs), 1, 'w4', null, 7, 7, true);
select is((select status from sync.backfill_jobs), 'running', 'the job runs while a segment is left');
select sync.checkpoint_segment((select id from sync.backfill_jobs), 2, 'w5', null, 8, 8, true);
select results_eq(
  $$select status, segments_done, items_scanned, rows_written from sync.backfill_progress$$,
  $$values ('done'::text, 3::bigint, 120::bigint, 110::bigint)$$,
  'the last segment finishes the job; progress sums every page'
);
select ok(not sync.backfill_work_pending(), 'nothing is pending any more');

-- A missing table fails the job with the cause.
select sync.start_backfill('firespring-backdoor-searches-dev', 1, false);
select segment from sync.claim_segment('w6');
-- A worker that no longer holds the segment (its lease taken over) fails nothing.
select sync.fail_segment((select max(id) from sync.backfill_jobs), 0, 'w1', 'stale worker''s error');
select results_eq(
  $$select j.status, s.status, s.lease_owner from sync.backfill_jobs j
    join sync.backfill_segments s on s.job_id = j.id where j.id = (select max(id) from sync.backfill_jobs)$$,
  $$values ('running'::text, 'running'::text, 'w6'::text)$$,
  'a worker that lost the lease fails neither the segment nor the job'
);
select sync.fail_segment((select max(id) from sync.backfill_jobs), 0, 'w6', 'DynamoDB table firespring-backdoor-searches-dev does not exist in us-east-1');
select results_eq(
  $$select status, error from sync.backfill_jobs where id = (select max(id) from sync.backfill_jobs)$$,
  $$values ('failed'::text, 'segment 0: DynamoDB table firespring-backdoor-searches-dev does not exist in us-east-1'::text)$$,
  'a failed segment fails its job, with the cause'
);
-- A job that is over stays as it ended: a cancelled one is not failed afterwards.
select sync.start_backfill('firespring-backdoor-searches-dev', 1, false);
select segment from sync.claim_segment('w7');
update sync.backfill_jobs set status = 'cancelled', finished_at = now()
where id = (select max(id) from sync.backfill_jobs);
select sync.fail_segment((select max(id) from sync.backfill_jobs), 0, 'w7', 'too late');
select is(
  (select status from sync.backfill_jobs where id = (select max(id) from sync.backfill_jobs)),
  'cancelled', 'a segment failing after its job was cancelled leaves the job cancelled'
);

-- A stream lost records: stale, with a backfill queued, until that backfill finishes.
select sync.mark_stale('mmp_toledo_leads', 'records of shard-1 after 42 passed the stream''s retention unread');
select results_eq(
  $$select stale, stale_reason from sync.status where target_table = 'mmp_toledo_leads'$$,
  $$values (true, 'records of shard-1 after 42 passed the stream''s retention unread'::text)$$,
  'sync.status shows the table stale, with the reason'
);
select results_eq(
  $$select j.source_table, j.status from sync.table_state s join sync.backfill_jobs j on j.id = s.backfill_job_id
    where s.target_table = 'mmp_toledo_leads'$$,
  $$values ('Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE'::text, 'pending'::text)$$,
  'a backfill of that table is queued'
);
do $$
declare
  job bigint := (select backfill_job_id from sync.table_state where target_table = 'mmp_toledo_leads');
  seg int;
begin
  loop
    select segment into seg from sync.claim_segment('healer');
    exit when seg is null;
    perform sync.checkpoint_segment(job, seg, 'healer', null, 1, 1, true);
  end loop;
end
$$;
select results_eq(
  $$select stale, stale_reason from sync.status where target_table = 'mmp_toledo_leads'$$,
  $$values (false, null::text)$$,
  'the finished backfill clears it'
);

-- Without the Vault secrets, waking the worker warns and sends nothing.
delete from vault.secrets where name in ('project_url', 'service_role_key');
select is(sync.wake_import_worker(), null, 'without Vault secrets no request is sent');
select is(
  (select count(*)::int from cron.job where jobname = 'sync-import-worker'
     and command = 'select sync.wake_import_worker() where sync.backfill_work_pending()'),
  1, 'a pg_cron job wakes the worker while work waits'
);

-- With them, the call names the function, carries the key's wake key for the hour (never
-- the key: pg_net's queue is readable by every role on hosted Supabase,
-- 20261128004500_wake_keys.sql), and runs in the region set. The same literal is checked
-- against functions-shared/service_auth.ts.
select is(sync.wake_key('sb_secret_test', 493000),
  'sync_wake_493000_d5d439e506b2e0adb6ce5e94097c63e1d570f8969897d83a4a40a12e001b1c42',
  'a wake key is the hour and the SHA-256 of the hour and the key');
select isnt(sync.wake_key('sb_secret_test', 493001), sync.wake_key('sb_secret_test', 493000),
  'each hour has its own');
select is(sync.wake_hour(), floor(extract(epoch from clock_timestamp()) / 3600)::bigint,
  'the hour is Unix time in whole hours');
select vault.create_secret('https://ref.example.co/', 'project_url');
select vault.create_secret('sb_secret_test', 'service_role_key');
select vault.create_secret('us-east-1', 'functions_region');
create temporary table hour_before as select sync.wake_hour() as hour;
create temporary table woke as select sync.wake_import_worker() as id;
create temporary table called as
  select url, headers ->> 'Authorization' as auth, headers ->> 'x-region' as region,
         substring(headers ->> 'Authorization' from '^Bearer sync_wake_(\d+)_')::bigint as hour
    from net.http_request_queue join woke using (id);
select results_eq(
  $$select url, auth, region from called$$,
  $$select 'https://ref.example.co/functions/v1/import-worker?forceFunctionRegion=us-east-1',
           'Bearer ' || sync.wake_key('sb_secret_test', hour), 'us-east-1' from called$$,
  'the worker is called with the wake key of the key in Vault, pinned to the database''s region'
);
select ok((select hour from called) between (select hour from hour_before) and sync.wake_hour(),
  'for the hour it was queued in');
select is((select count(*)::int from net.http_request_queue where headers::text like '%sb_secret_test%'), 0,
  'no queued request holds the service key');
-- Each call starts a trace of its own (W3C traceparent), so the chain of hand-ons it
-- starts has its own budget of calls between functions, not the function's shared one.
select matches((select headers ->> 'traceparent' from net.http_request_queue join woke using (id)),
  '^00-[0-9a-f]{32}-[0-9a-f]{16}-01$', 'the call carries a W3C trace of its own');
create temporary table woke_again as select sync.wake_import_worker() as id;
select isnt((select headers ->> 'traceparent' from net.http_request_queue join woke_again using (id)),
  (select headers ->> 'traceparent' from net.http_request_queue join woke using (id)),
  'a trace per call');

select * from finish();
rollback;
