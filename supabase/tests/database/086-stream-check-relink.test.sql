-- A stale table follows its newest healer (sync.record_stream_check, supabase/migrations/20261128001300_stream_progress.sql):
-- a later problem's healer, newer than the job the table names, takes the link, the mark
-- and its reason kept; the newer job's end then clears the mark.
set client_min_messages = warning;
begin;
select plan(5);

delete from sync.table_state;
delete from sync.stream_checks;
select tests.forget_backfill_jobs();

-- Stale, naming a job that failed.
create temporary table failed as
  select sync.mark_stale('firespring_segments', 'lost a record') as id;
update sync.backfill_jobs set status = 'failed', finished_at = now() where id = (select id from failed);
-- An operator's backfill, not started yet (it covers any time).
create temporary table later as
  select sync.start_backfill('firespring-backdoor-segments-dev', 1, false) as id;
select is(sync.record_stream_check('firespring_segments', 'arn:s', '{}', 'lost another record',
            now() - interval '1 hour'),
  null, 'the pending backfill heals the new problem: nothing more is queued');
select results_eq(
  $$select backfill_job_id, stale_reason from sync.table_state where target_table = 'firespring_segments'$$,
  $$select (select id from later), 'lost a record'::text$$,
  'the stale table is linked to the newer job, its first reason kept');

-- An older job does not take the link back.
select sync.record_stream_check('firespring_segments', 'arn:s', '{}', 'yet another', now() - interval '2 hours');
select is((select backfill_job_id from sync.table_state where target_table = 'firespring_segments'),
  (select id from later), 'the link stays on the newest healer');

-- The newer job's end clears the mark.
update sync.backfill_jobs set status = 'running', started_at = now() where id = (select id from later);
update sync.backfill_segments set status = 'running', lease_owner = 'w', lease_expires_at = now() + interval '1 minute'
where job_id = (select id from later);
select lives_ok($$select sync.checkpoint_segment((select id from later), 0, 'w', null, 0, 0, true)$$,
  'the newer job''s last page');
select is((select stale_since from sync.table_state where target_table = 'firespring_segments'), null,
  'its end clears the mark the failed job had left');

select * from finish();
rollback;
