-- A validation run that outlived a crash of the database cannot end with a verdict
-- (20261128004400_validation_restart_guard.sql): each run is marked in an unlogged table
-- when it starts; a crash empties it with the run's staged rows, and sync.end_validation
-- then refuses to end the run as done, naming it and why. Deleting the marks stands in
-- for the crash here (a crash recovery resets every unlogged table to empty).
set client_min_messages = warning;
begin;
select plan(12);

delete from public.sync_checksums;
select tests.forget_backfill_jobs();

create temporary table run as select sync.start_validation('firespring_visitors', false, 2, 10) as id;
select is((select count(*)::int from sync.checksum_run_marks where run_id = (select id from run)), 1,
  'a run is marked when it starts');

-- The crash: the unlogged tables are emptied, the run's row and checkpoints are not.
delete from sync.checksum_run_marks;
select throws_ok(
  format('select sync.end_validation(%s, %L)', (select id from run), 'done'),
  'SY002',
  format('validation run %s of firespring_visitors outlived a restart of the database (a crash or a failover), which emptied the rows it had read (kept unlogged): its verdict cannot be trusted; run the validation again',
         (select id from run)),
  'a run without its mark cannot end as done'
);
select is((select status from public.sync_checksums where id = (select id from run)), 'running',
  'and is left as it was, for the validator to fail');
select lives_ok(
  format('select sync.end_validation(%s, %L, %L)', (select id from run), 'failed', 'restarted'),
  'it can end as failed'
);
select results_eq(
  format('select status, error from public.sync_checksums where id = %s', (select id from run)),
  $$values ('failed', 'restarted')$$,
  'with the reason'
);

create temporary table run2 as select sync.start_validation('firespring_actions', false, 2, 10) as id;
select lives_ok(
  format('select sync.end_validation(%s, %L)', (select id from run2), 'done'),
  'a run with its mark ends as done'
);
select is((select status from public.sync_checksums where id = (select id from run2)), 'done', 'done');
select is((select count(*)::int from sync.checksum_run_marks where run_id = (select id from run2)), 0,
  'its mark goes when it ends');
select lives_ok(
  format('select sync.end_validation(%s, %L)', (select id from run2), 'done'),
  'ending an ended run again changes nothing and refuses nothing'
);

create temporary table run3 as select sync.start_validation('firespring_actions', false, 2, 10) as id;
delete from public.sync_checksums where id = (select id from run3);
select is((select count(*)::int from sync.checksum_run_marks), 0, 'a deleted run''s mark goes with it');

-- A queued run has read nothing: it is marked when it starts, so a crash while it waits
-- costs it nothing.
create temporary table queued as
  select sync.start_validation('firespring_segments', false, 2, 10, true) as id;
select is((select count(*)::int from sync.checksum_run_marks where run_id = (select id from queued)), 0,
  'a queued run is not marked');
update public.sync_checksums set status = 'running' where id = (select id from queued);
select is((select count(*)::int from sync.checksum_run_marks where run_id = (select id from queued)), 1,
  'it is marked when it starts');

select * from finish();
rollback;
