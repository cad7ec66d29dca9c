-- A validation does not start while a backfill of its table is under way
-- (20261128003000_validations_wait_for_backfills.sql): a run whose Scan has not begun
-- waits for a live backfill (not for one that shows no life for 15 minutes); a run that
-- has begun goes on; the heartbeat, the reaper and the concurrency count leave a waiting
-- run alone; the backfill's end wakes it.
set client_min_messages = warning;
begin;
select plan(18);

delete from public.sync_checksums;
select tests.forget_backfill_jobs();
-- No function is called here: pg_net's queue shows what would be.
delete from net.http_request_queue;

create temporary table runs as
select sync.start_validation('firespring_visitors', false, 2, 10) as visitors,
       sync.start_validation('firespring_segments', false, 2, 10) as segments;
create temporary table jobs as
select sync.start_backfill('firespring-backdoor-visitors-dev', 2, false) as visitors,
       sync.start_backfill('firespring-backdoor-segments-dev', 2, false) as segments;

select is(sync.claim_validation((select visitors from runs), 'w1'), null,
  'a run waits while a backfill of its table was just queued');
select is(sync.claim_validation((select segments from runs), 'w1'), null,
  'whether its table collapses or not');
select ok(sync.validation_waits_for_backfill((select segments from runs)), 'it waits for the backfill');

-- A validation's own Scan job is no backfill to wait for.
create temporary table actions as select sync.start_validation('firespring_actions', false, 2, 10) as run;
select ok(not sync.validation_waits_for_backfill((select run from actions)),
  'a run of a table without a backfill does not wait (its own Scan job aside)');
select is(sync.wake_validations(), 1,
  'the heartbeat calls only the run that does not wait (the actions'', whose segments are pending)');
update sync.settings set value = '1' where key = 'validation_concurrency';
create temporary table queued as
select sync.start_validation('toledo_dashboard', false, 1, 10, true) as run;
select is(sync.start_queued_validations(), 0,
  'the one slot is the actions run''s: waiting runs take none');
delete from public.sync_checksums where id = (select run from actions);
select is(sync.start_queued_validations(), 1, 'and once it is free, a queued run starts beside the waiting ones');

update public.sync_checksums set progress_at = now() - interval '1 day',
                                 started_at = now() - interval '1 day'
where id in ((select visitors from runs), (select segments from runs));
select is(sync.reap_stalled_validations(), 0, 'the reaper leaves waiting runs alone');

-- A backfill that shows no life for 15 minutes is not waited for.
update sync.backfill_jobs set requested_at = now() - interval '1 hour'
where id = (select segments from jobs);
update sync.backfill_segments set updated_at = now() - interval '1 hour'
where job_id = (select segments from jobs);
select ok(not sync.validation_waits_for_backfill((select segments from runs)),
  'a backfill queued an hour ago that no worker took is not waited for');
update sync.backfill_segments set status = 'running', lease_owner = 'import-worker-x',
                                  lease_expires_at = now() + interval '1 minute'
where job_id = (select segments from jobs) and segment = 0;
select ok(sync.validation_waits_for_backfill((select segments from runs)),
  'one whose segment holds a lease is');

-- A run whose Scan has begun goes on whatever starts meanwhile.
update sync.backfill_segments set status = 'running'
where job_id = (select j.id from sync.backfill_jobs j where j.checksum_run_id = (select segments from runs))
  and segment = 0;
select is(sync.claim_validation((select segments from runs), 'w1'), 'scan',
  'a run whose Scan has begun goes on during a backfill');

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
select is(sync.claim_validation((select visitors from runs), 'w1'), 'scan', 'the run scans now');
select ok(not sync.validation_waits_for_backfill((select visitors from runs)), 'nothing waits any more');

-- A backfill that waited its turn behind an older one of its table
-- (sync.scan_waits_for_older) counts from that one's end, not from its request: the
-- older one's end leaves the run waiting for the newer one, which reads next, and the
-- newer one is not failed as stalled while it waits.
delete from net.http_request_queue;
create temporary table late as
select sync.start_validation('firespring_actions', false, 2, 10) as run,
       sync.start_backfill('firespring-backdoor-actions-dev', 2, false) as older,
       sync.start_backfill('firespring-backdoor-actions-dev', 2, false) as newer;
update sync.backfill_jobs set requested_at = now() - interval '3 days'
where id in ((select older from late), (select newer from late));
update sync.backfill_segments set updated_at = now() - interval '3 days'
where job_id = (select newer from late);
update sync.backfill_segments set status = 'running', lease_owner = 'import-worker-y',
                                  lease_expires_at = now() + interval '1 minute'
where job_id = (select older from late) and segment = 0;
select is(sync.fail_stalled_backfills(), '[]'::jsonb,
  'a backfill waiting three days behind a live older one is not failed as stalled');
update sync.backfill_jobs set status = 'done', finished_at = now() where id = (select older from late);
select is((select count(*)::int from net.http_request_queue), 0,
  'the older backfill''s end calls no validator: the newer one reads next');
select ok(sync.validation_waits_for_backfill((select run from late)),
  'the run waits for the newer one, which counts from the older one''s end');

select * from finish();
rollback;
