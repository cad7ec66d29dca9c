-- A Scan page's stamp is its segment's earliest when it is (supabase/migrations/20261128004000_scan_stamps_from_dynamodb.sql),
-- and a backfill's end spares a row a page saw but lost to a stream change of the
-- granularity before that page: stamped on DynamoDB's clock, a page may be up to a
-- second and a round trip earlier than the job's start on Postgres's.
set client_min_messages = warning;
begin;
select plan(11);

delete from sync.table_state;
select tests.forget_backfill_jobs();
delete from sync.tombstones;
delete from sync.dead_letters;
delete from public.firespring_segments;

create temporary table t as select now() as started;

-- A stream change 1.5 s before the job's start: the item lives. A page stamped 0.8 s
-- before the start (its Date less the round trip) reads it and loses to that change
-- (not surely older than the page by the granularity), so the row keeps its stream stamp.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "live", "segment_name": "from the stream", "segment_criteria": {}}'::jsonb,
    'seq', '10', 'changed_at', (select started from t) - interval '1.5 seconds', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "gone", "segment_name": "deleted since", "segment_criteria": {}}'::jsonb,
    'seq', '11', 'changed_at', (select started from t) - interval '1 hour', 'source', 'stream')));
create temporary table job as select sync.start_backfill('firespring-backdoor-segments-dev', 1, false) as id;
update sync.backfill_jobs set started_at = (select started from t), status = 'running'
where id = (select id from job);
select segment from sync.claim_segment('w1');
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "live", "segment_name": "from the page", "segment_criteria": {}}'::jsonb,
    'seq', null, 'changed_at', (select started from t) - interval '0.8 seconds', 'source', 'backfill')));
select is((select segment_name from public.firespring_segments where segment_id = 'live'), 'from the stream',
  'the page loses to the stream change of the second before it');
select lives_ok($$select sync.checkpoint_segment((select id from job), 0, 'w1', null, 1, 0, true,
                   (select started from t) - interval '0.8 seconds')$$,
  'the last page checkpoints with its stamp, and the end runs');
select is((select earliest_read_at from sync.backfill_segments where job_id = (select id from job)),
  (select started from t) - interval '0.8 seconds', 'the segment keeps its earliest stamp');
select results_eq(
  $$select segment_id from public.firespring_segments order by 1$$,
  $$values ('live'::text)$$,
  'the end removes what no page saw, and spares the live row (older than the start less the granularity, not than the page''s)');
select is((select status from sync.backfill_jobs where id = (select id from job)), 'done', 'the job is done');
select is((select deleted_at from sync.tombstones where row_key = '{"segment_id": "gone"}'),
  (select started from t) - interval '0.8 seconds',
  'the removed row''s tombstone is positioned at the earliest page, not the later start: a change after any read wins over it');

-- A job claimed a minute before its first read (its first page throttled past its
-- retries): a row the stream changed between the two, whose delete was then lost, is
-- removed by the job's end, and the lost-record check counts the job as that delete's
-- healer: one time for both (sync.backfill_read_from), the job's first read.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "between", "segment_name": "deleted, its record lost", "segment_criteria": {}}'::jsonb,
    'seq', '20', 'changed_at', (select started from t) + interval '30 seconds', 'source', 'stream')));
create temporary table job2 as select sync.start_backfill('firespring-backdoor-segments-dev', 1, false) as id;
update sync.backfill_jobs set started_at = (select started from t), status = 'running'
where id = (select id from job2);
select segment from sync.claim_segment('w2');
select sync.checkpoint_segment((select id from job2), 0, 'w2', null, 0, 0, true,
                               (select started from t) + interval '64 seconds');
select is(sync.backfill_read_from((select j from sync.backfill_jobs j where id = (select id from job2))),
  (select started from t) + interval '64 seconds', 'the job read the table from its first page');
select is((select count(*)::int from public.firespring_segments where segment_id = 'between'), 0,
  'a row changed between the job''s start and its first read, seen by no page, is removed');
select is(sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'a delete lost',
                                   (select started from t) + interval '40 seconds'),
  null::bigint, 'and the lost-record check takes the job as that delete''s healer: no other is queued');

-- While a segment being read has no stamp yet, its first page (read before the pages
-- stamped so far, perhaps) may still be committing: the job counts as reading from no
-- later than its start less a minute. And a lost record is healed only by a job that read
-- two granularities after it: a record's time is rounded down, and the row it leaves may
-- be stamped within that second.
select tests.forget_backfill_jobs();
create temporary table job3 as select sync.start_backfill('firespring-backdoor-segments-dev', 2, false) as id;
update sync.backfill_jobs set started_at = (select started from t), status = 'running'
where id = (select id from job3);
update sync.backfill_segments
set status = 'running', lease_owner = 'w3', lease_expires_at = now() + interval '1 minute'
where job_id = (select id from job3);
select sync.checkpoint_segment((select id from job3), 0, 'w3', '{"segment_id": {"S": "m"}}', 1, 0, false,
                               (select started from t) + interval '100 seconds');
select is(sync.backfill_read_from((select j from sync.backfill_jobs j where id = (select id from job3))),
  (select started from t) - interval '1 minute',
  'a segment being read without a stamp yet: no later than the start less a minute');
select sync.checkpoint_segment((select id from job3), 1, 'w3', '{"segment_id": {"S": "n"}}', 1, 0, false,
                               (select started from t) + interval '105 seconds');
select isnt(sync.record_stream_check('firespring_segments', 'arn:s1', '{}', 'a record lost',
                                     (select started from t) + interval '98.5 seconds'),
  null::bigint,
  'a job that read 1.5 s after a lost record''s (rounded) time does not heal it: another is queued');

select * from finish();
rollback;
