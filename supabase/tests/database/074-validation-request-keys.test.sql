-- A start of a validation sent again with its request key (its answer lost after the run
-- committed, and the client's retry) is the run that key started, not a second run
-- (20261128001600_validator_streaming.sql, sync.start_validation).
set client_min_messages = warning;
begin;
select plan(8);

delete from public.sync_checksums;
delete from sync.backfill_jobs;

create temporary table first as
select sync.start_validation('firespring_segments', false, 4, 100, false, 'req-7f3a') as id;
select is(sync.start_validation('firespring_segments', false, 4, 100, false, 'req-7f3a'),
  (select id from first), 'the same key is the same run');
select is((select count(*)::int from public.sync_checksums), 1, 'and no second run is made');
select is((select count(*)::int from sync.backfill_jobs), 1, 'nor a second Scan');
select is((select request_key from public.sync_checksums), 'req-7f3a', 'the run keeps its key');

select throws_ok(
  $$select sync.start_validation('firespring_actions', false, 4, 100, false, 'req-7f3a')$$,
  '22023',
  format('Idempotency-Key req-7f3a started validation run %s of firespring_segments (without repair), not a validation of firespring_actions (without repair): send a new key for another validation',
         (select id from first)),
  'the key of another table''s run is refused, naming its run');
select throws_ok(
  $$select sync.start_validation('firespring_segments', true, 4, 100, false, 'req-7f3a')$$,
  '22023', null, 'and so is the key of a run without repair for a repair');

select isnt(sync.start_validation('firespring_segments'), (select id from first),
  'without a key, each start is a run of its own');
select throws_ok(
  $$select sync.start_validation('firespring_segments', false, 4, 100, false, e'a key\n')$$,
  '23514', null, 'a key is printable ASCII without spaces');

select * from finish();
rollback;
