-- Re-reads of collapsed rows (20261128002900_collapsed_rereads.sql): a change that removes
-- the observation a row holds queues the key, since older items still live may have been
-- purged as superseded; the queue is claimed with a lease, finished, or backed off.
set client_min_messages = warning;
begin;
select plan(43);

delete from sync.collapsed_rereads;

create function pg_temp.queued() returns text[] language sql as $$
  select coalesce(array_agg(row_key ->> 'visitor_id' order by row_key ->> 'visitor_id'), '{}')
  from sync.collapsed_rereads where target_table = 'firespring_visitors'
$$;

select tests.merge('firespring_visitors', tests.visitor_change('upsert', 'rr1', 100, '10'), tests.visitor_change('upsert', 'rr1', 200, '11'),
                     tests.visitor_change('upsert', 'rr2', 100, '12'), tests.visitor_change('upsert', 'rr2', 200, '13'));
select is(pg_temp.queued(), '{}', 'inserts queue nothing');

select tests.merge('firespring_visitors', tests.visitor_change('delete', 'rr1', 100, '20'));
select is(pg_temp.queued(), '{}', 'removing an observation the row does not hold queues nothing');

select tests.merge('firespring_visitors', tests.visitor_change('delete', 'rr1', 200, '5'));
select is(pg_temp.queued(), '{}', 'a removal older than the observation (skipped by the guard) queues nothing');

select tests.merge('firespring_visitors', tests.visitor_change('delete', 'rr1', 200, '21'));
select is(pg_temp.queued(), '{rr1}', 'removing the observation the row holds queues its key');
select is((select queued_at from sync.collapsed_rereads where row_key = '{"visitor_id": "rr1"}'), now(),
  'queued when the held observation was removed');

select tests.merge('firespring_visitors', tests.visitor_change('delete', 'rr2', 200, null, 1, 'repair')
                     || jsonb_build_object('changed_at', now(), 'seen_at', now() + interval '1 second'));
select is((select page_views || ' at ' || sync_range_key from public.firespring_visitors where visitor_id = 'rr2'),
  '1 at 100', 'a repair removing the held observation falls back');
select is(pg_temp.queued(), '{rr1}', 'but queues nothing: the repair read the key''s items itself');

-- A backfill's end removes the held observation its Scan did not see; an older item the
-- Scan read may have been purged as superseded meanwhile, so the key is re-read.
select tests.merge('firespring_visitors', tests.visitor_change('upsert', 'rr3', 100, '14'), tests.visitor_change('upsert', 'rr3', 200, '15'));
select tests.merge('firespring_visitors', tests.visitor_change('delete', 'rr3', 200, null, 1, 'backfill')
                     || jsonb_build_object('changed_at', now()));
select is(pg_temp.queued(), '{rr1,rr3}', 'a backfill''s end removing the held observation queues its key');
delete from sync.collapsed_rereads where row_key = '{"visitor_id": "rr3"}';

-- The other collapsed table, through the same compiled body.
select from sync.merge_changes('firespring_extraction_jobs', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'seq', '30', 'changed_at', '2026-02-06T10:00:00Z', 'source', 'stream',
    'range_key', 1770000000000, 'rank', 1,
    'row', '{"job_id": "rrj", "status": "running", "job_data": {}}'::jsonb)));
select from sync.merge_changes('firespring_extraction_jobs', jsonb_build_array(
  jsonb_build_object('op', 'delete', 'seq', '31', 'changed_at', '2026-02-06T10:00:01Z', 'source', 'stream',
    'range_key', 1770000000000, 'rank', 1, 'row', '{"job_id": "rrj"}'::jsonb)));
select ok(exists (select from sync.collapsed_rereads
                  where target_table = 'firespring_extraction_jobs' and row_key = '{"job_id": "rrj"}'),
  'an extraction job whose held state is removed is queued too');
delete from sync.collapsed_rereads where target_table = 'firespring_extraction_jobs';

-- The queue.
select is((select array_agg(row_key ->> 'visitor_id') from sync.claim_rereads(10)), '{rr1}',
  'a claim takes the waiting key');
select is((select count(*)::int from sync.claim_rereads(10)), 0, 'and leases it: a second claim takes nothing');
select ok((select not_before = now() + interval '2 minutes' and attempts = 1
           from sync.collapsed_rereads where row_key = '{"visitor_id": "rr1"}'),
  'for two minutes, counting the attempt');

-- Given back by a claim of another queuing (the key queued again meanwhile): not this one.
select sync.return_reread('firespring_visitors', '{"visitor_id": "rr1"}', now() - interval '1 minute');
select ok((select not_before = now() + interval '2 minutes' and attempts = 1
           from sync.collapsed_rereads where row_key = '{"visitor_id": "rr1"}'),
  'a key given back under another queued_at keeps its lease and attempt');
select sync.return_reread('firespring_visitors', '{"visitor_id": "rr1"}', now());
select ok((select not_before = now() and attempts = 0 from sync.collapsed_rereads),
  'a key given back untried waits for no lease, its attempt not counted');
select is((select count(*)::int from sync.claim_rereads(10)), 1, 'and is claimed again');
-- A removal of the held observation again while the key is being read.
select tests.merge('firespring_visitors', tests.visitor_change('upsert', 'rr1', 300, '30'));
select tests.merge('firespring_visitors', tests.visitor_change('delete', 'rr1', 300, '31'));
select ok((select not_before = now() + interval '2 minutes' and attempts = 1 from sync.collapsed_rereads),
  'a key queued again while it is read keeps its lease and its attempt');
update sync.collapsed_rereads set attempts = 1;
update sync.collapsed_rereads set not_before = now() - interval '1 second';
select is((select count(*)::int from sync.claim_rereads(10)), 1, 'a lapsed claim is claimed again');
select ok((select attempts = 2 and not_before = now() + interval '4 minutes'
                  and error ~ '^1 earlier re-read\(s\) of it ended without an answer'
           from sync.collapsed_rereads),
  'a claim that lapsed leaves the next a longer lease, and the key says why');
update sync.collapsed_rereads set attempts = 1, error = null;
select sync.finish_reread('firespring_visitors', '{"visitor_id": "rr1"}', now(), 'DynamoDB throttled the Query');
select ok((select not_before = now() + interval '30 seconds' and error = 'DynamoDB throttled the Query'
           from sync.collapsed_rereads where row_key = '{"visitor_id": "rr1"}'),
  'a failed re-read keeps its cause and waits 30 s');
update sync.collapsed_rereads set attempts = 40;
select sync.finish_reread('firespring_visitors', '{"visitor_id": "rr1"}', now(), 'again');
select ok((select not_before = now() + interval '30 seconds' * 128 from sync.collapsed_rereads),
  'the backoff doubles up to about an hour, however many attempts');
-- Queued again by a removal while it backs off: read again now, its failures still counted.
update sync.collapsed_rereads set attempts = 4, error = 'DynamoDB throttled the Query';
select tests.merge('firespring_visitors', tests.visitor_change('upsert', 'rr1', 300, '32'));
select tests.merge('firespring_visitors', tests.visitor_change('delete', 'rr1', 300, '33'));
select ok((select not_before = now() and attempts = 4 and error = 'DynamoDB throttled the Query'
           from sync.collapsed_rereads),
  'a failing key queued again is read again now, its attempts and cause kept toward the give-up');
select sync.finish_reread('firespring_visitors', '{"visitor_id": "rr1"}', now() - interval '1 hour',
  'throttled again');
select ok((select attempts = 4 and error = 'throttled again' from sync.collapsed_rereads),
  'a failed re-read of an earlier queuing keeps counting, with its cause');

update sync.collapsed_rereads set not_before = now(), queued_at = now() - interval '1 minute';
select sync.finish_reread('firespring_visitors', '{"visitor_id": "rr1"}', now(), null);
select is(pg_temp.queued(), '{rr1}',
  'a key queued again after its claim (a later removal) stays for another re-read');
select ok((select attempts = 0 and error is null from sync.collapsed_rereads),
  'and a re-read that succeeded sets its failures back');
select sync.finish_reread('firespring_visitors', '{"visitor_id": "rr1"}', now() - interval '1 minute', null);
select is(pg_temp.queued(), '{}', 'a re-read done leaves the queue');

select is(sync.wake_rereads(), 0, 'pg_cron''s sweep calls nobody while no key waits');
insert into sync.collapsed_rereads (target_table, row_key) values ('firespring_visitors', '{"visitor_id": "rr9"}');
select is(sync.wake_rereads(), 1, 'and calls the validator while one does');
-- A key due after 10 attempts is given up to one healing backfill of its table.
delete from sync.collapsed_rereads;
delete from sync.table_state where target_table = 'firespring_visitors';
delete from sync.backfill_jobs
where source_table = 'firespring-backdoor-visitors-dev' and status = 'pending';
insert into sync.collapsed_rereads (target_table, row_key, attempts, error) values
  ('firespring_visitors', '{"visitor_id": "rr-stuck"}', 10, 'the partition is too large to read'),
  ('firespring_visitors', '{"visitor_id": "rr-stuck-2"}', 12, null);
select is(sync.wake_rereads(), 0, 'given up: nothing left to call the validator for');
select is(pg_temp.queued(), '{}', 'the keys leave the queue');
select ok(
  (select stale_reason from sync.table_state where target_table = 'firespring_visitors')
    ~ '^the re-read of firespring_visitors \{"visitor_id": "rr-stuck(-2)?"\} failed 1[02] times',
  'the table is stale, naming a key, its attempts and why');
select is(
  (select count(*)::int from sync.backfill_jobs
   where source_table = 'firespring-backdoor-visitors-dev' and status = 'pending'
     and checksum_run_id is null),
  1, 'one healing backfill for both');
-- A key due for an hour that no request claimed (the validator never answers) is given
-- up too: its attempts count only claims, so it would never reach 10.
select ok((select last_claimed_at = now() from sync.reread_claims), 'a claim notes when');
update sync.reread_claims set last_claimed_at = now() - interval '61 minutes';
delete from sync.table_state where target_table = 'firespring_visitors';
delete from sync.backfill_jobs
where source_table = 'firespring-backdoor-visitors-dev' and status = 'pending';
insert into sync.collapsed_rereads (target_table, row_key, not_before) values
  ('firespring_visitors', '{"visitor_id": "rr-unclaimed"}', now() - interval '61 minutes'),
  ('firespring_visitors', '{"visitor_id": "rr-due"}', now() - interval '59 minutes');
select is(sync.wake_rereads(), 1, 'the key due for less than an hour still calls the validator');
select is(pg_temp.queued(), '{rr-due}', 'only the one due an hour unclaimed leaves the queue');
select ok(
  (select stale_reason from sync.table_state where target_table = 'firespring_visitors')
    ~ '^the re-read of firespring_visitors \{"visitor_id": "rr-unclaimed"\} was due since [0-9T:-]+Z and no request of the data-checksum-validator took it',
  'the table is stale, naming the key, since when it was due, and where to look');
-- While a request claims keys (or one backs off after a failure), a backlog of more than
-- an hour is worked, not given up.
delete from sync.collapsed_rereads;
insert into sync.collapsed_rereads (target_table, row_key, not_before) values
  ('firespring_visitors', '{"visitor_id": "rr-backlog"}', now() - interval '2 hours'),
  ('firespring_visitors', '{"visitor_id": "rr-claimed"}', now() + interval '2 minutes');
select is(sync.wake_rereads(), 1, 'a backlog while a key is claimed still calls the validator');
select is(pg_temp.queued(), '{rr-backlog,rr-claimed}', 'and gives no key up by its age');
-- So is one that requests work through, each ended before the tick (no claim left): a
-- request claimed keys within the hour.
delete from sync.collapsed_rereads where row_key = '{"visitor_id": "rr-claimed"}';
update sync.reread_claims set last_claimed_at = now() - interval '5 minutes';
select is(sync.wake_rereads(), 1, 'a backlog that requests claimed from within the hour calls the validator');
select is(pg_temp.queued(), '{rr-backlog}', 'and stays, though no key is claimed at the tick');
delete from sync.collapsed_rereads;
insert into sync.collapsed_rereads (target_table, row_key) values ('firespring_visitors', '{"visitor_id": "rr9"}');
insert into sync.collapsed_rereads (target_table, row_key, attempts, error) values
  ('firespring_visitors', '{"visitor_id": "rr10"}', 2, 'Query firespring-backdoor-visitors-dev: throttled');
select results_eq(
  $$select target_table, rereads_waiting, rereads_failing from sync.status
    where target_table in ('firespring_visitors', 'firespring_actions') order by 1$$,
  $$values ('firespring_actions'::text, 0::bigint, 0::bigint),
           ('firespring_visitors', 2, 1)$$,
  'sync.status counts each table''s keys waiting for a re-read, and those whose last one failed');
delete from sync.collapsed_rereads where row_key = '{"visitor_id": "rr10"}';
select is((select rereads_waiting from sync.status where target_table = 'firespring_visitors'), 1::bigint,
  'and a key re-read leaves the count');
update sync.settings set value = 'cutover' where key = 'write_back';
select is(sync.wake_rereads(), 0,
  'but not after the cutover: Supabase is ahead of DynamoDB on purpose');
select is((select schedule from cron.job where jobname = 'sync-collapsed-rereads'), sync.sweep_schedule(),
  'pg_cron sweeps the queue with the others');

select * from finish();
rollback;
