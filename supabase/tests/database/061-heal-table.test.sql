-- sync.heal_table (20261128004600_heal_table.sql): one healing backfill at a time. Asked
-- again while the table's backfill waits to start, it takes that job; once the job reads,
-- a new one is queued, once.
set client_min_messages = warning;
begin;
select plan(11);

select tests.forget_backfill_jobs();
delete from sync.table_state;

create temporary table first as select sync.heal_table('firespring_visitors', 'one') as job;
-- Two calls at once for the table wait for each other (with no job waiting yet, there is
-- no row to wait on): the call holds the table's heal lock until its transaction ends.
select ok(exists (
  select from pg_locks
  where locktype = 'advisory' and pid = pg_backend_pid() and objsubid = 2
    and classid::bigint = hashtext('sync.heal_table')::bigint & 4294967295
    and objid::bigint = hashtext('firespring_visitors')::bigint & 4294967295),
  'a call holds the table''s heal lock to the end of its transaction');
select is((select count(*)::int from sync.backfill_jobs where checksum_run_id is null), 1,
  'a backfill is queued');
select is(sync.heal_table('firespring_visitors', 'two'), (select job from first),
  'asked again while it waits, the same job');
select is((select count(*)::int from sync.backfill_jobs where checksum_run_id is null), 1,
  'and no other');
select results_eq(
  $$select stale_reason, backfill_job_id from sync.table_state where target_table = 'firespring_visitors'$$,
  $$select 'two'::text, (select job from first)$$,
  'the table is stale, with the newest reason and that job'
);

update sync.backfill_jobs set status = 'running' where id = (select job from first);
create temporary table second as select sync.heal_table('firespring_visitors', 'three') as job;
select isnt((select job from second), (select job from first),
  'a job already reading may have passed the key: a new one');
select is(sync.heal_table('firespring_visitors', 'four'), (select job from second),
  'queued once');

-- One Scan backfill of a table reads at a time (sync.scan_waits_for_older): the first's
-- segments all in flight, the second's wait, unclaimed, and wake nothing.
update sync.backfill_segments
set status = 'running', lease_owner = 'w0', lease_expires_at = now() + interval '1 minute'
where job_id = (select job from first);
select is((select count(*)::int from sync.claim_segment('w1')), 0,
  'a newer backfill of the table is not claimed while an older one reads');
select ok(not sync.backfill_work_pending(), 'nor is it work to wake the worker for');
select is((select status from sync.backfill_jobs where id = (select job from second)), 'pending',
  'it waits, pending, taking the heals asked for meanwhile');
update sync.backfill_jobs set status = 'done', finished_at = now()
where id = (select job from first);
select is((select job_id from sync.claim_segment('w1')), (select job from second),
  'once the older one has ended, the newer one reads');

select * from finish();
rollback;
