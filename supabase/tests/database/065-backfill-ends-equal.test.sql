-- A backfill ends equal (docs/sync-semantics.md, "A backfill ends equal"): when its last
-- segment is done, rows and observations its Scan did not see, older than its start,
-- are removed with tombstones; rows it saw, rows the stream changed during it, and keys
-- whose dead letter it recorded again stay (an open letter it never met keeps nothing:
-- the item is gone); the stale mark clears only then.
set client_min_messages = warning;
begin;
select plan(14);

delete from sync.table_state;
select tests.forget_backfill_jobs();
delete from sync.tombstones;
delete from sync.observations;
delete from sync.dead_letters;
delete from public.firespring_segments;
delete from public.firespring_visitors;

-- Before the backfill: what the stream wrote an hour ago, and what it writes during it.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "lost-delete", "segment_name": "a", "segment_criteria": {}}'::jsonb,
    'seq', '1', 'changed_at', now() - interval '1 hour', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "seen", "segment_name": "old", "segment_criteria": {}}'::jsonb,
    'seq', '2', 'changed_at', now() - interval '1 hour', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "dead-lettered", "segment_name": "b", "segment_criteria": {}}'::jsonb,
    'seq', '3', 'changed_at', now() - interval '1 hour', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "replayed-before", "segment_name": "d", "segment_criteria": {}}'::jsonb,
    'seq', '6', 'changed_at', now() - interval '1 hour', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "failed-again", "segment_name": "e", "segment_criteria": {}}'::jsonb,
    'seq', '7', 'changed_at', now() - interval '1 hour', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "redelivered", "segment_name": "f", "segment_criteria": {}}'::jsonb,
    'seq', '9', 'changed_at', now() - interval '1 hour', 'source', 'stream')));
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v1", "page_views": 1, "session_data": {}}'::jsonb,
    'seq', '10', 'changed_at', now() - interval '1 hour', 'source', 'stream', 'range_key', 100),
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v1", "page_views": 2, "session_data": {}}'::jsonb,
    'seq', '11', 'changed_at', now() - interval '1 hour', 'source', 'stream', 'range_key', 200),
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v2", "page_views": 5, "session_data": {}}'::jsonb,
    'seq', '12', 'changed_at', now() - interval '1 hour', 'source', 'stream', 'range_key', 100)));
-- The sweep's dead-letter clause: a letter the backfill's own pages recorded (a Scan's,
-- positioned at or after its first read: its page met the item, alive and unmappable)
-- keeps its row; any other does not, whether open (a poison change, then a delete whose
-- record was lost), replayed, or a stream letter seen again during the backfill (a
-- retried batch: it says nothing of the item now).
insert into sync.dead_letters (source_table, target_table, record, reason, row_key, last_seen_at,
                               replayed_at, position_source, position_at)
values ('firespring-backdoor-segments-dev', 'firespring_segments', '{}', 'poison', '{"segment_id": "dead-lettered"}',
        now() - interval '1 day', null, 'stream', now() - interval '1 day'),
       ('firespring-backdoor-segments-dev', 'firespring_segments', '{}', 'poison', '{"segment_id": "replayed-before"}',
        now() - interval '1 hour', now() - interval '30 minutes', 'backfill', now() - interval '1 hour'),
       ('firespring-backdoor-segments-dev', 'firespring_segments', '{}', 'poison', '{"segment_id": "failed-again"}',
        now(), now() - interval '1 hour', 'backfill', now()),
       ('firespring-backdoor-segments-dev', 'firespring_segments', '{}', 'poison', '{"segment_id": "redelivered"}',
        now(), null, 'stream', now() - interval '1 hour');

select sync.mark_stale('firespring_segments', 'the stream lost records');
select sync.start_backfill('firespring-backdoor-visitors-dev', 1, false);
update sync.backfill_jobs set started_at = now();

-- The stream during the backfill: a row the Scan will not see, written after its start.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "streamed-during", "segment_name": "c", "segment_criteria": {}}'::jsonb,
    'seq', '4', 'changed_at', now(), 'source', 'stream')));

-- The segments job: one page that sees only "seen", then done.
-- The healing job has 8 segments; 1 to 7 read nothing.
update sync.backfill_segments set status = 'done'
where segment > 0 and job_id = (select id from sync.backfill_jobs where source_table = 'firespring-backdoor-segments-dev');
create temporary table claimed as
  select * from sync.claim_segment('w1') where source_table = 'firespring-backdoor-segments-dev';
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "seen", "segment_name": "new", "segment_criteria": {}}'::jsonb,
    'seq', null, 'changed_at', now(), 'source', 'backfill')));
select ok((select stale from sync.status where target_table = 'firespring_segments'),
  'the table is stale while its backfill runs');
select lives_ok(
  $$select sync.checkpoint_segment(job_id, segment, 'w1', null, 1, 1, true, now()) from claimed$$,
  'the last segment of the segments backfill is done'
);
select results_eq(
  $$select segment_id, segment_name from public.firespring_segments order by 1$$,
  $$values ('failed-again'::text, 'e'::text), ('seen', 'new'), ('streamed-during', 'c')$$,
  'the unseen old rows are gone, those whose letter the backfill did not record too (open, replayed, or a stream letter seen again); the seen one, the one streamed during the backfill and the one whose letter its page recorded stay'
);
select results_eq(
  $$select row_key, sync_sequence, deleted_at = j.started_at
    from sync.tombstones, sync.backfill_jobs j
    where target_table = 'firespring_segments' and j.source_table = 'firespring-backdoor-segments-dev'
    order by row_key ->> 'segment_id'$$,
  $$values ('{"segment_id": "dead-lettered"}'::jsonb, null::numeric, true),
           ('{"segment_id": "lost-delete"}'::jsonb, null::numeric, true),
           ('{"segment_id": "redelivered"}'::jsonb, null::numeric, true),
           ('{"segment_id": "replayed-before"}'::jsonb, null::numeric, true)$$,
  'each removed row leaves a tombstone at the backfill''s start'
);
select is((select rows_removed from sync.backfill_jobs where source_table = 'firespring-backdoor-segments-dev'),
  4::bigint, 'the job counts what it removed');
select ok(not (select stale from sync.status where target_table = 'firespring_segments'),
  'the stale mark clears with the sweep');

-- The open letter's change, replayed later with its own position (an hour before the
-- backfill), loses to the sweep's tombstone: the deleted item does not come back.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "dead-lettered", "segment_name": "fixed", "segment_criteria": {}}'::jsonb,
    'seq', '8', 'changed_at', now() - interval '59 minutes', 'source', 'stream')));
select is((select count(*)::int from public.firespring_segments where segment_id = 'dead-lettered'),
  0, 'a replayed letter older than the sweep does not bring its deleted row back');

-- A stream change newer than the sweep brings the key back.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "lost-delete", "segment_name": "again", "segment_criteria": {}}'::jsonb,
    'seq', '5', 'changed_at', now(), 'source', 'stream')));
select is((select segment_name from public.firespring_segments where segment_id = 'lost-delete'),
  'again', 'a later stream change still wins over the sweep''s tombstone');

-- The visitors job: the page sees v1's second observation only.
create temporary table claimed_v as
  select * from sync.claim_segment('w2') where source_table = 'firespring-backdoor-visitors-dev';
select is((select count(*)::int from claimed_v), 1, 'the visitors segment is claimed');
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v1", "page_views": 2, "session_data": {}}'::jsonb,
    'seq', null, 'changed_at', now(), 'source', 'backfill', 'range_key', 200)));
select lives_ok(
  $$select sync.checkpoint_segment(job_id, segment, 'w2', null, 1, 1, true, now()) from claimed_v$$,
  'the visitors backfill is done'
);
select results_eq(
  $$select visitor_id, page_views, sync_range_key from public.firespring_visitors order by 1$$,
  $$values ('v1'::text, 2::numeric, 200::numeric)$$,
  'v2, never seen, is gone; v1 holds the observation the Scan saw'
);
select results_eq(
  $$select row_key ->> 'visitor_id', range_key, deleted from sync.observations
    where target_table = 'firespring_visitors' order by 1, 2$$,
  $$values ('v1', 100::numeric, true), ('v1', 200::numeric, false), ('v2', 100::numeric, true)$$,
  'the unseen observations are deleted (their own tombstones)'
);
select is((select rows_removed from sync.backfill_jobs where source_table = 'firespring-backdoor-visitors-dev'),
  1::bigint, 'one visitor row removed');
select is((select status from sync.backfill_jobs where source_table = 'firespring-backdoor-visitors-dev'),
  'done', 'the job is done');

select * from finish();
rollback;
