-- Backfills from a point-in-time export (supabase/migrations/20261128002300_export_backfills.sql):
-- one segment per data file, claimed only by the loading command, never by the
-- import-worker; the job starts at its read time (the export's time less the window
-- within which its items may lie, functions-shared/export_manifest.ts), so its sweep
-- removes exactly what is older than its items and not in it, and keeps what the stream
-- wrote after it.
set client_min_messages = warning;
begin;
select plan(27);

delete from sync.table_state;
select tests.forget_backfill_jobs();
delete from sync.tombstones;
delete from sync.dead_letters;
delete from public.firespring_segments;

create temporary table export as select
  'arn:aws:dynamodb:us-east-1:123456789012:table/firespring-backdoor-segments-dev/export/01800000000000-a1b2c3d4'::text as arn,
  now() - interval '10 minutes' as at;

-- Refusals name the table and why.
select throws_ok(
  $$select sync.start_export_backfill('nope', 'arn', now(), 'b', '[{"key": "k", "itemCount": 1, "md5": "m"}]')$$,
  '22023', null, 'an unregistered table is refused'
);
select throws_like(
  $$select sync.start_export_backfill('firespring-backdoor-segments-dev',
      'arn:aws:dynamodb:us-east-1:123456789012:table/other/export/1', now(), 'b',
      '[{"key": "k", "itemCount": 1, "md5": "m"}]')$$,
  '%is not an export of firespring-backdoor-segments-dev%', 'an export of another table is refused'
);
select throws_like(
  $$select sync.start_export_backfill('firespring-backdoor-segments-dev', (select arn from export), now(), 'b', '[]')$$,
  '%lists no data file%', 'an export without data files is refused'
);

-- Before the export: a row the export does not hold (deleted before it), and one it does.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "deleted-before", "segment_name": "a", "segment_criteria": {}}'::jsonb,
    'seq', '1', 'changed_at', now() - interval '1 hour', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "exported", "segment_name": "old", "segment_criteria": {}}'::jsonb,
    'seq', '2', 'changed_at', now() - interval '1 hour', 'source', 'stream')));
-- After the read time: the stream writes a row the export cannot hold, and changes one it holds.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "streamed-after", "segment_name": "c", "segment_criteria": {}}'::jsonb,
    'seq', '3', 'changed_at', now() - interval '5 minutes', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "changed-after", "segment_name": "newer", "segment_criteria": {}}'::jsonb,
    'seq', '4', 'changed_at', now() - interval '5 minutes', 'source', 'stream')));

create temporary table job as select sync.start_export_backfill(
  'firespring-backdoor-segments-dev', (select arn from export), (select at from export), 'exports',
  '[{"key": "p/AWSDynamoDB/x/data/a.json.gz", "itemCount": 2, "md5": "m1"},
    {"key": "p/AWSDynamoDB/x/data/b.json.gz", "itemCount": 1, "md5": "m2"}]') as id;

select results_eq(
  $$select j.total_segments, j.started_at = (select at from export), j.export_bucket,
           array_agg(f.data_key order by f.segment)
    from sync.backfill_jobs j join sync.backfill_export_files f on f.job_id = j.id
    where j.id = (select id from job) group by j.id$$,
  $$values (2, true, 'exports'::text,
            array['p/AWSDynamoDB/x/data/a.json.gz', 'p/AWSDynamoDB/x/data/b.json.gz'])$$,
  'one segment per data file, the job started at the read time'
);
select ok(not sync.backfill_work_pending(), 'an export job does not wake the import-worker');
select is_empty($$select * from sync.claim_segment('edge')$$,
  'the import-worker never claims an export''s file');

-- The loader claims the files in turn.
select results_eq(
  $$select segment, data_key, item_count, md5, next_line, target_table
    from sync.claim_export_file((select id from job), 'w1')$$,
  $$values (0, 'p/AWSDynamoDB/x/data/a.json.gz'::text, 2::bigint, 'm1'::text, 0::bigint,
            'firespring_segments'::text)$$,
  'the first claim takes the first file from its first line'
);
select results_eq(
  $$select segment from sync.claim_export_file((select id from job), 'w2')$$,
  $$values (1)$$, 'the next claim takes the next file'
);
select is_empty($$select * from sync.claim_export_file((select id from job), 'w3')$$,
  'no file is left to claim');

-- w1 loads one line of file 0 (stamped with the read time), then dies; its lease expires.
select sync.checkpoint_segment((select id from job), 0, 'w1', '{"line": 1}', 1,
  (select applied::int from sync.merge_changes('firespring_segments', jsonb_build_array(
    jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "exported", "segment_name": "at-export", "segment_criteria": {}}'::jsonb,
      'seq', null, 'changed_at', (select at from export), 'source', 'backfill')))), false);
update sync.backfill_segments set lease_expires_at = now() - interval '1 second'
where job_id = (select id from job) and segment = 0;
select results_eq(
  $$select segment, next_line from sync.claim_export_file((select id from job), 'w4')$$,
  $$values (0, 1::bigint)$$, 'a file whose worker died is claimed again from its checkpoint'
);

-- w4 loads the file's last line: the stream's newer change wins over the export's image.
select lives_ok(
  $$select sync.checkpoint_segment((select id from job), 0, 'w4', '{"line": 2}', 1,
    (select applied::int from sync.merge_changes('firespring_segments', jsonb_build_array(
      jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "changed-after", "segment_name": "at-export", "segment_criteria": {}}'::jsonb,
        'seq', null, 'changed_at', (select at from export), 'source', 'backfill')))), true)$$,
  'the first file is done'
);
select lives_ok(
  $$select sync.checkpoint_segment((select id from job), 1, 'w2', '{"line": 1}', 0, 0, true)$$,
  'the second file is done, and with it the job'
);
select results_eq(
  $$select segment_id, segment_name from public.firespring_segments order by 1$$,
  $$values ('changed-after'::text, 'newer'::text), ('exported', 'at-export'), ('streamed-after', 'c')$$,
  'the row deleted before the export is swept; the stream''s changes after it stay'
);
select results_eq(
  $$select status, rows_removed from sync.backfill_jobs where id = (select id from job)$$,
  $$values ('done'::text, 1::bigint)$$, 'the job is done and counts what it removed'
);

-- A file taken over again and again, no chunk written in between (its chunk outlasts the
-- lease every time), fails its job rather than load forever; a chunk written resets the
-- count.
create temporary table slow_job as select sync.start_export_backfill(
  'firespring-backdoor-segments-dev', (select arn from export), (select at from export), 'exports',
  '[{"key": "p/AWSDynamoDB/x/data/slow.json.gz", "itemCount": 5, "md5": "m3"}]') as id;
create function pg_temp.lapse_and_claim(p_worker text) returns setof integer
language sql as $$
  update sync.backfill_segments set lease_expires_at = now() - interval '1 second'
  where job_id = (select id from slow_job);
  select segment from sync.claim_export_file((select id from slow_job), p_worker);
$$;
select segment from sync.claim_export_file((select id from slow_job), 's0');
select pg_temp.lapse_and_claim('s1');
select sync.checkpoint_segment((select id from slow_job), 0, 's1', '{"line": 1}', 1, 0, false);
select is((select takeovers from sync.backfill_segments where job_id = (select id from slow_job)),
  0, 'a chunk written resets the count of takeovers');
select pg_temp.lapse_and_claim('s2');
select pg_temp.lapse_and_claim('s3');
select results_eq($$select pg_temp.lapse_and_claim('s4')$$, $$values (0)$$,
  'a third takeover in a row is still a claim');
select is_empty($$select pg_temp.lapse_and_claim('s5')$$,
  'a fourth takeover in a row is not');
select results_eq(
  $$select j.status, j.error like '%export data file p/AWSDynamoDB/x/data/slow.json.gz: its lease (60 s) ran out 4 times in a row before a chunk of it was written; each loader that took it stopped or died%', s.status
    from sync.backfill_jobs j join sync.backfill_segments s on s.job_id = j.id
    where j.id = (select id from slow_job)$$,
  $$values ('failed'::text, true, 'failed'::text)$$,
  'it fails the file and its job, naming the file, the lease and what to do'
);

-- An export older than the tombstones kept (48 hours by default), less an hour for the
-- clocks and the load's start, is refused: the deletes since it may have lost their
-- tombstones, and its rows would bring those items back.
select throws_like(
  $$select sync.start_export_backfill('firespring-backdoor-segments-dev', (select arn from export),
      now() - interval '47 hours 30 minutes', 'exports', '[{"key": "k", "itemCount": 1, "md5": "m"}]')$$,
  '%is as of % more than 47:00:00 ago (the shorter of tombstone_retention and observation_retention, less an hour)%export the table again%',
  'an export older than the tombstones kept, less an hour, is refused, saying why and what to do'
);
update sync.settings set value = '30 hours' where key = 'observation_retention';
select throws_like(
  $$select sync.start_export_backfill('firespring-backdoor-segments-dev', (select arn from export),
      now() - interval '29 hours 30 minutes', 'exports', '[{"key": "k", "itemCount": 1, "md5": "m"}]')$$,
  '%more than 29:00:00 ago%', 'the shorter of the two retentions counts'
);

-- The job runs from the start, its started_at the read time: from then on no tombstone
-- recorded after the read time is purged (sync.purge_expired).
create temporary table held_job as select sync.start_export_backfill(
  'firespring-backdoor-segments-dev', (select arn from export), now() - interval '2 hours',
  'exports', '[{"key": "p/AWSDynamoDB/x/data/held.json.gz", "itemCount": 1, "md5": "m4"}]') as id;
select is((select status from sync.backfill_jobs where id = (select id from held_job)), 'running',
  'an export job is running from the start');
-- (Retention is 24 hours at least: the job's export time is moved back past it, then
-- put back.)
update sync.backfill_jobs set started_at = started_at - interval '1 day'
where id = (select id from held_job);
insert into sync.tombstones (target_table, row_key, sync_sequence, deleted_at, recorded_at)
values ('firespring_segments', '{"segment_id": "deleted-after-export"}', 9,
        now() - interval '1 day 90 minutes', now() - interval '1 day 90 minutes'),
       -- Deleted just after the read time, recorded by a database clock 5 minutes behind
       -- DynamoDB's: before the read time on the record.
       ('firespring_segments', '{"segment_id": "recorded-by-a-clock-behind"}', 10,
        now() - interval '1 day 2 hours 5 minutes', now() - interval '1 day 2 hours 5 minutes');
update sync.settings set value = '24 hours' where key = 'tombstone_retention';
select sync.purge_expired();
select ok(exists (select from sync.tombstones where row_key = '{"segment_id": "deleted-after-export"}'),
  'a tombstone recorded after the read time outlives its retention while the job runs');
select ok(exists (select from sync.tombstones where row_key = '{"segment_id": "recorded-by-a-clock-behind"}'),
  'so does one recorded up to ten minutes before it, for the clocks'' skew');
update sync.backfill_jobs set started_at = started_at + interval '1 day'
where id = (select id from held_job);

-- A lost stream record is healed by an export's backfill only if the export is as late
-- as the record: the job's data is as of its export time, not of when it was queued.
delete from sync.table_state;
delete from sync.backfill_jobs where id <> (select id from held_job);
select is(
  sync.record_stream_check('firespring_segments', 'arn:s', '{}', 'lost after the export',
    now() - interval '1 hour') is not null,
  true, 'a record lost after the read time marks the table stale'
);
delete from sync.table_state;
delete from sync.backfill_jobs where id <> (select id from held_job);
select is(
  sync.record_stream_check('firespring_segments', 'arn:s', '{}', 'lost before the export',
    now() - interval '3 hours'),
  null, 'a record lost before the read time is healed by the export''s backfill'
);
-- The export time is on DynamoDB's clock, as the record's: no margin for the clocks.
select is(
  sync.record_stream_check('firespring_segments', 'arn:s', '{}', 'lost just before the export',
    (select started_at from sync.backfill_jobs where id = (select id from held_job)) - interval '30 seconds'),
  null, 'a record lost 30 s before the read time is healed by it too'
);
-- A record's time is rounded down to the second: one stamped half a second before the
-- export time may have been made after it.
select is(
  sync.record_stream_check('firespring_segments', 'arn:s', '{}', 'lost at the export''s second',
    (select started_at from sync.backfill_jobs where id = (select id from held_job)) - interval '500 milliseconds') is not null,
  true, 'a record stamped within the clock''s granularity before the read time is not healed by it'
);

select * from finish();
rollback;
