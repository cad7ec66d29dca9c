-- The lost-record check's SQL (20261128001300_stream_progress.sql): the webhook's notes of
-- the stream records it committed, which of a shard's records are applied, and a check's
-- record, which marks the table stale (queuing the healing backfill) on a problem.
set client_min_messages = warning;
begin;
select tests.set_aside_validation_runs();
select plan(48);

delete from sync.stream_checks;
delete from sync.stream_batches_applied;
delete from sync.table_state;
select tests.forget_backfill_jobs();

-- Notes: one row per stream of a batch, its sequence numbers sorted, as numbers. (Only
-- this test's streams are read: the stack's background tests may deliver meanwhile.)
select is(
  sync.note_stream_records('{"arn:s1": ["000000000000000000008", "7"], "arn:s2": ["7"]}'),
  3, 'a batch''s records are noted, each stream''s in a row');
select is(
  sync.note_stream_records('{"arn:s1": ["8"]}'),
  1, 'a record delivered again is noted again (found either way)');
select results_eq(
  $$select stream_arn, span, sequence_numbers from sync.stream_batches_applied
    where stream_arn like 'arn:s_' order by id$$,
  $$values ('arn:s1'::text, numrange(7, 8, '[]'), array[7, 8]::numeric[]),
           ('arn:s2', numrange(7, 7, '[]'), array[7]::numeric[]),
           ('arn:s1', numrange(8, 8, '[]'), array[8]::numeric[])$$,
  'sequence numbers as numbers, sorted, with their span');
select is(sync.note_stream_records('{}'), 0, 'nothing to note notes nothing');
select throws_ok(
  $$select sync.note_stream_records('{"arn:s1": ["8x"]}')$$,
  '22P02', null, 'a sequence number that is not a number is refused');

-- Which records of a shard the webhook applied: compared as numbers, in the order asked.
select is(
  sync.stream_records_applied_of('arn:s1', array['9', '8', '000000000000000000007']),
  array['8', '000000000000000000007'],
  'the applied subset, in the order asked');
select is(
  sync.stream_records_applied_of('arn:other', array['7']), '{}'::text[],
  'another stream''s records are its own');
select is(
  sync.stream_records_applied_of('arn:s1', array['6', '9']), '{}'::text[],
  'numbers inside no batch are not applied');
select is(sync.stream_records_applied_of('arn:s1', '{}'), '{}'::text[], 'nothing asked, nothing found');

-- A run that found nothing: recorded, nothing marked.
select is(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{"shard-1": {"through": "8"}}', null, null),
  null, 'no problem, no backfill');
select results_eq(
  $$select stream_arn, shards, problem from sync.stream_checks$$,
  $$values ('arn:s1'::text, '{"shard-1": {"through": "8"}}'::jsonb, null::text)$$,
  'the run and its shard positions are kept');
select is((select stale from sync.status where target_table = 'firespring_segments'), false,
  'the table is not stale');

-- A validation run scans on a job of its own (20261128001100_validator_segments.sql), but
-- writes nothing: it heals no lost record.
select sync.start_validation('firespring_segments');
select isnt(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}',
    'firespring_segments: shard shard-1: record 9 was trimmed', now() - interval '25 hours'),
  null, 'a validation run queued since the lost record is no healing backfill');
delete from sync.table_state;
select tests.forget_backfill_jobs();
delete from public.sync_checksums where target_table = 'firespring_segments';

-- A run that found a lost record: the table is stale, with the reason, and healing queued.
select isnt(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}',
    'firespring_segments: shard shard-1: record 9 was trimmed', now() - interval '25 hours'),
  null, 'a problem queues a backfill');
select results_eq(
  $$select stale, stale_reason from sync.status where target_table = 'firespring_segments'$$,
  $$values (true, 'firespring_segments: shard shard-1: record 9 was trimmed'::text)$$,
  'sync.status shows it stale, with the check''s reason');
select results_eq(
  $$select c.problem, j.status from sync.stream_checks c join sync.backfill_jobs j on j.id = c.backfill_job_id$$,
  $$values ('firespring_segments: shard shard-1: record 9 was trimmed'::text, 'pending'::text)$$,
  'the check names the backfill it queued');

-- The same problem again while that backfill waits: it heals it already, none is added.
select is(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'still lost', now() - interval '25 hours'),
  null, 'a pending backfill queued since the lost record covers it');
select is((select count(*)::int from sync.backfill_jobs), 1, 'one backfill only');
-- A problem covered from now (no stream, a stream nothing delivers) while that backfill
-- still waits to start: it will read the table as it is then, so none is added, however
-- long ago it was queued (one an hour piled up).
update sync.backfill_jobs set requested_at = now() - interval '1 hour';
select is(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'no stream', now()),
  null, 'a backfill queued an hour ago that has not started covers a problem of now');
select is((select count(*)::int from sync.backfill_jobs), 1, 'still one backfill');
-- Once that backfill is done, it still covers what was made before it started.
update sync.backfill_jobs set status = 'done', started_at = now() - interval '1 minute',
  finished_at = now();
select is(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'still lost', now() - interval '21 hours'),
  null, 'a finished backfill queued since the records covers them too');
-- A problem about records newer than that backfill's start needs one of its own.
select isnt(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'unwatched', now() + interval '1 second'),
  null, 'a problem the pending backfill does not cover queues another');

-- A backfill covers from its first read on DynamoDB's clock (its earliest page's stamp),
-- not from its start on this database's: with the database's clock 30 s ahead, a job
-- whose pages were read before a lost record heals nothing.
delete from sync.table_state;
select tests.forget_backfill_jobs();
select sync.start_backfill('firespring-backdoor-segments-dev');
update sync.backfill_jobs set status = 'done', started_at = now() - interval '30 seconds',
  finished_at = now();
update sync.backfill_segments set earliest_read_at = now() - interval '55 seconds'
where segment = 0;
update sync.backfill_segments set earliest_read_at = now() - interval '5 seconds'
where segment > 0;
select isnt(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'lost after its first read',
    now() - interval '40 seconds'),
  null, 'a backfill whose first read came before the lost record does not heal it, whatever its start');
select is(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'lost before its reads',
    now() - interval '70 seconds'),
  null, 'one whose reads all came after it does');
-- Before its first page is stamped, its start less a minute for the clocks' skew.
delete from sync.table_state;
select tests.forget_backfill_jobs();
select sync.start_backfill('firespring-backdoor-segments-dev');
update sync.backfill_jobs set status = 'running', started_at = now() - interval '30 seconds';
select isnt(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'lost just before its start',
    now() - interval '40 seconds'),
  null, 'a backfill that has read nothing yet covers from a minute before its start');

-- A covering backfill not yet done: the table is stale until it is, and stays stale,
-- naming the problem, if it fails.
delete from sync.table_state;
select tests.forget_backfill_jobs();
select sync.start_backfill('firespring-backdoor-segments-dev');
select is((select total_segments from sync.backfill_jobs order by id desc limit 1), 8,
  'a backfill queued without its segments has 8 (the contract''s default)');
select is(
  sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'lost while a backfill runs',
    now() - interval '1 hour'),
  null, 'a running backfill that covers the record queues none');
select results_eq(
  $$select t.stale_reason, t.backfill_job_id = (select max(id) from sync.backfill_jobs)
    from sync.table_state t where t.target_table = 'firespring_segments' and t.stale_since is not null$$,
  $$values ('lost while a backfill runs'::text, true)$$,
  'the table is stale, healed by that backfill');
update sync.backfill_jobs set status = 'failed', finished_at = now();
select is(
  (select stale_reason from sync.status where target_table = 'firespring_segments' and stale),
  'lost while a backfill runs',
  'the backfill failed: the table stays stale, naming the lost record');

select throws_ok(
  $$select sync.record_stream_check('no_such_table', 'arn', '{}', null, null)$$,
  '22023', null, 'an unknown table is refused');

-- Two runs at once: each shard keeps its later read; the shards are the last listing's.
select sync.record_stream_check('firespring_segments', 'arn:s1',
  '{"a": {"through": "9", "readAt": "2026-12-01T08:00:05.000Z"},
    "b": {"through": "5", "readAt": "2026-12-01T07:00:00.000Z", "pending": true},
    "c": {"through": "3", "readAt": "2026-12-01T08:00:05.000Z"}}', null, null);
select sync.record_stream_check('firespring_segments', 'arn:s1',
  '{"a": {"through": "7", "readAt": "2026-12-01T08:00:00.000Z", "pending": true},
    "b": {"through": "6", "readAt": "2026-12-01T08:00:00.000Z"},
    "d": {"readAt": "2026-12-01T08:00:00.000Z"}}', null, null);
select is(
  (select shards from sync.stream_checks where target_table = 'firespring_segments'),
  '{"a": {"through": "9", "readAt": "2026-12-01T08:00:05.000Z"},
    "b": {"through": "6", "readAt": "2026-12-01T08:00:00.000Z"},
    "d": {"readAt": "2026-12-01T08:00:00.000Z"}}'::jsonb,
  'a shard keeps its later read (a), takes a newer one (b), goes when unlisted (c), comes when listed (d)');
select sync.record_stream_check('firespring_segments', 'arn:s9',
  '{"a": {"readAt": "2026-12-01T07:00:00.000Z"}}', null, null);
select is(
  (select shards from sync.stream_checks where target_table = 'firespring_segments'),
  '{"a": {"readAt": "2026-12-01T07:00:00.000Z"}}'::jsonb,
  'another stream''s shards replace the old ones whole');

-- Notes older than 48 hours go with the hourly purge, whatever their stream (a replaced
-- stream's would otherwise stay for ever), whether or not any check runs; younger ones
-- stay.
update sync.stream_batches_applied set applied_at = now() - interval '49 hours' where span @> 7::numeric;
select (sync.purge_expired() ->> 'stream_notes')::int >= 1;
select results_eq(
  $$select stream_arn, sequence_numbers from sync.stream_batches_applied
    where stream_arn like 'arn:s_' order by id$$,
  $$values ('arn:s1'::text, array[8]::numeric[])$$,
  'notes past 48 hours are purged, of every stream; younger ones kept');

select is(
  (select schedule from cron.job where jobname = 'sync-stream-check'), '41 * * * *',
  'a pg_cron job runs the check hourly');

-- The check's own watchdog: sync.status shows when the check last checked a table, and
-- whether that is longer ago than the check vouches across (3 hours), so that a check
-- that never runs (not deployed, its calls refused) is seen without it.
select is(sync.stream_check_max_interval(), interval '3 hours',
  'the check vouches across 3 hours between runs');
delete from sync.stream_checks;
delete from sync.table_state;
select tests.forget_backfill_jobs();
select results_eq(
  $$select stream_checked_at, stream_check_overdue from sync.status
    where target_table = 'firespring_segments'$$,
  $$values (null::timestamptz, false)$$,
  'a table never checked nor backfilled is not synced yet: not overdue');
insert into sync.backfill_jobs (source_table, total_segments, requested_at)
values ('firespring-backdoor-segments-dev', 1, now() - interval '2 hours');
select is((select stream_check_overdue from sync.status where target_table = 'firespring_segments'),
  false, 'never checked, backfilled 2 hours ago: not overdue yet (the check runs hourly)');
update sync.backfill_jobs set requested_at = now() - interval '4 hours';
select is((select stream_check_overdue from sync.status where target_table = 'firespring_segments'),
  true, 'never checked 4 hours after its first backfill: overdue');
select sync.record_stream_check('firespring_segments', 'arn:s1', '{}', null, null);
select results_eq(
  $$select stream_checked_at = now(), stream_check_overdue from sync.status
    where target_table = 'firespring_segments'$$,
  $$values (true, false)$$,
  'a check just recorded: its time shown, not overdue');
update sync.stream_checks set checked_at = now() - interval '3 hours 1 minute';
select is((select stream_check_overdue from sync.status where target_table = 'firespring_segments'),
  true, 'a last check over 3 hours ago: overdue, whatever the backfills');
update sync.stream_checks set checked_at = now() - interval '2 hours 59 minutes';
select is((select stream_check_overdue from sync.status where target_table = 'firespring_segments'),
  false, 'within 3 hours: not overdue');
select is(
  (select count(*)::int from sync.status where stream_check_overdue), 0,
  'no other table is overdue: never checked, no backfill of its own');

-- One run reads a table's stream at a time (20261128004800_stream_check_leases.sql).
delete from sync.stream_check_leases;
select is(sync.take_stream_check_lease('firespring_segments', 'run-a', 60), true,
  'a run takes a table''s lease');
select is(sync.take_stream_check_lease('firespring_segments', 'run-b', 60), false,
  'another run does not while it holds it');
select is(sync.take_stream_check_lease('firespring_segments', 'run-a', 60), true,
  'the holder takes it again');
select sync.release_stream_check_lease('firespring_segments', 'run-b');
select is(sync.take_stream_check_lease('firespring_segments', 'run-b', 60), false,
  'a release by another run gives nothing back');
select sync.release_stream_check_lease('firespring_segments', 'run-a');
select is(sync.take_stream_check_lease('firespring_segments', 'run-b', 60), true,
  'once the holder gives it back, another run takes it');
update sync.stream_check_leases set held_until = now() - interval '1 second';
select is(sync.take_stream_check_lease('firespring_segments', 'run-c', 60), true,
  'and a lease run out (its run died) is taken over');

select * from finish();
rollback;
