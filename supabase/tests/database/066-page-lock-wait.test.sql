-- A backfill page's merge waits at most 30 s for its table's merge lock
-- (20261128005300_page_lock_timeout.sql): sync.merge_page_changes is sync.merge_changes
-- with lock_timeout 30 s for its own duration, the caller's setting restored after.
set client_min_messages = warning;
begin;
select plan(4);

delete from public.firespring_segments;

select is(
  (select p.proconfig from pg_catalog.pg_proc p
   where p.oid = 'sync.merge_page_changes(text, jsonb)'::regprocedure),
  array['search_path=""', 'lock_timeout=30s'],
  'the page''s merge waits at most 30 s for a lock'
);

set local lock_timeout = '7s';
select is(
  (select m.applied from sync.merge_page_changes('firespring_segments', jsonb_build_array(
    jsonb_build_object('op', 'upsert',
      'row', jsonb_build_object('segment_id', 'p-1', 'segment_name', 'one', 'segment_criteria', '{}'::jsonb),
      'seq', null, 'changed_at', now(), 'source', 'backfill'))) m),
  1::bigint,
  'it merges as sync.merge_changes does'
);
select is((select segment_name from public.firespring_segments where segment_id = 'p-1'), 'one',
  'the row is written');
select is(current_setting('lock_timeout'), '7s', 'the caller''s lock_timeout is back after it');

select * from finish();
rollback;
