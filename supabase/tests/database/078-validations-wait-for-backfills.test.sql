-- A validation compares only once its table's backfill has ended
-- (20261128003000_validations_wait_for_backfills.sql): a collapsed table's run scans
-- meanwhile and its later steps wait; a run compared page by page waits before its Scan;
-- the heartbeat and the reaper leave a waiting run alone; the backfill's end wakes it.
set client_min_messages = warning;
begin;
select plan(14);

delete from public.sync_checksums;
delete from sync.backfill_jobs;
-- No function is called here: pg_net's queue shows what would be.
delete from net.http_request_queue;

create temporary table runs as
select sync.start_validation('firespring_visitors', false, 2, 10) as visitors,
       sync.start_validation('firespring_segments', false, 2, 10) as segments;
create temporary table jobs as
select sync.start_backfill('firespring-backdoor-visitors-dev', 2, false) as visitors,
       sync.start_backfill('firespring-backdoor-segments-dev', 2, false) as segments;

select is(sync.claim_validation((select visitors from runs), 'w1'), 'scan',
  'a collapsed table''s run scans while its table''s backfill runs');
select is(sync.claim_validation((select segments from runs), 'w1'), null,
  'a run compared page by page does not scan while its table''s backfill runs');
select ok(sync.validation_waits_for_backfill((select segments from runs)), 'it waits for the backfill');

update public.sync_checksums set phase = 'compare' where id = (select visitors from runs);
select is(sync.claim_validation((select visitors from runs), 'w1'), null,
  'the collapsed run''s compare waits for the backfill');
select ok(sync.validation_waits_for_backfill((select visitors from runs)), 'it waits too');

-- A validation's own Scan job is no backfill to wait for.
select is(
  (select count(*)::int from sync.backfill_jobs j
   where j.checksum_run_id is not null and j.status = 'pending'), 2,
  'the runs'' own Scan jobs are pending');
select ok(not sync.validation_waits_for_backfill(
    (select sync.start_validation('firespring_actions', false, 2, 10))),
  'a run of a table without a backfill does not wait (its own Scan job aside)');

delete from net.http_request_queue;
select is(sync.wake_validations(), 1,
  'the heartbeat calls only the run that does not wait (the actions'', whose segments are pending)');

update public.sync_checksums set progress_at = now() - interval '1 day',
                                 started_at = now() - interval '1 day'
where id in ((select visitors from runs), (select segments from runs));
select is(sync.reap_stalled_validations(), 0, 'the reaper leaves waiting runs alone, however long they wait');

-- The visitors' backfill ends: their run is called, its progress marked.
delete from net.http_request_queue;
update sync.backfill_jobs set status = 'done' where id = (select visitors from jobs);
select is(
  (select array_agg((convert_from(body, 'utf8')::jsonb ->> 'runId')::bigint) from net.http_request_queue),
  array[(select visitors from runs)],
  'the backfill''s end calls the validator for the run that waited, and only it'
);
select ok((select progress_at = now() from public.sync_checksums where id = (select visitors from runs)),
  'and marks its progress, so the reaper counts from now');
select is(sync.claim_validation((select visitors from runs), 'w1'), 'compare', 'the run compares now');

update sync.backfill_jobs set status = 'cancelled' where id = (select segments from jobs);
select is(sync.claim_validation((select segments from runs), 'w1'), 'scan',
  'a cancelled backfill ends the wait too');
select ok(not sync.validation_waits_for_backfill((select segments from runs)), 'nothing waits any more');

select * from finish();
rollback;
