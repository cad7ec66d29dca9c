-- A start of a validation sent again with its request key (its answer lost after the run
-- committed, and the client's retry) is the run that key started, not a second run
-- (20261128001600_validator_streaming.sql, sync.start_validation); without a key, a table
-- with a run queued or running gets no second one.
set client_min_messages = warning;
begin;
select plan(11);

delete from public.sync_checksums;
select tests.forget_backfill_jobs();

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

-- One run of a table at a time (sync_checksums_one_active_run), whoever starts it.
select throws_ok(
  $$select sync.start_validation('firespring_segments')$$,
  'SY006',
  format('validation run %s of firespring_segments is already running (since %s): follow it ({"runId": %s}) or let it end; a second run would read firespring_segments again at the whole read budget',
         (select id from first),
         (select to_char(started_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
          from public.sync_checksums where id = (select id from first)),
         (select id from first)),
  'without its key, a second start of a table with a run running is refused, naming the run to follow');
update public.sync_checksums set status = 'queued' where id = (select id from first);
select throws_ok($$select sync.start_validation('firespring_segments', false, 8, 1000, true)$$,
  'SY006', null, 'and so is one queued while a run waits for its slot');
select is((select count(*)::int from public.sync_checksums), 1, 'no second run is made');
select sync.end_validation((select id from first), 'failed', 'ended by the test');
select isnt(sync.start_validation('firespring_segments'), (select id from first),
  'once it ended, a start is a run of its own');
select throws_ok(
  $$select sync.start_validation('firespring_segments', false, 4, 100, false, e'a key\n')$$,
  '23514', null, 'a key is printable ASCII without spaces');

select * from finish();
rollback;
