-- The staged merge of an export backfill's chunks (supabase/migrations/
-- 20261128001400_compiled_merges.sql; docs/sync-semantics.md, "Backfills from an
-- export"): changes COPYed into sync.staged_changes are merged by sync.merge_staged with
-- the same statements, and so the same ordering guard, as sync.merge_changes: a read at
-- the export time loses to a stream change after it and to a tombstone after it, wins
-- over what happened before it; a collapsed table keeps every observation; a bad change
-- is refused naming it, a value Postgres refuses fails the chunk (which the loader then
-- writes page by page, dead-lettering that change).
set client_min_messages = warning;
begin;
select plan(15);

update sync.settings set value = '1 second' where key = 'stream_clock_granularity';
delete from sync.tombstones where target_table in ('firespring_segments', 'firespring_visitors');
delete from public.firespring_segments;
delete from sync.observations where target_table = 'firespring_visitors';
delete from public.firespring_visitors;

select is_empty('select * from sync.stale_merges()', 'every staged merge is current');
select ok(position('p_changes' in sync.staged_merge_source('firespring_segments')) = 0
          and position('sync.staged_changes' in sync.staged_merge_source('firespring_segments')) > 0,
  'a staged merge reads the staging table, not a JSON array');
select is(
  regexp_replace(sync.staged_merge_source('firespring_visitors'),
    '\(select \* from sync\.staged_changes s where s\.stager = pg_current_xact_id\(\)\) as x', ''),
  regexp_replace(sync.merge_function_source('firespring_visitors'),
    'jsonb_populate_recordset\(null::sync\.change, p_changes\) with ordinality\s+as x\([^)]*\)', ''),
  'apart from its source of changes, a staged merge is its compiled merge, statement for statement');

-- The stream, around the export time 2026-02-06T12:00:00Z: 'after' changed and 'gone'
-- deleted after it; 'before' changed before it.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'seq', '10', 'changed_at', '2026-02-06T12:05:00Z', 'source', 'stream',
    'row', '{"segment_id": "after", "segment_name": "stream", "segment_criteria": {}}'::jsonb),
  jsonb_build_object('op', 'delete', 'seq', '11', 'changed_at', '2026-02-06T12:05:00Z', 'source', 'stream',
    'row', '{"segment_id": "gone"}'::jsonb),
  jsonb_build_object('op', 'upsert', 'seq', '9', 'changed_at', '2026-02-06T11:00:00Z', 'source', 'stream',
    'row', '{"segment_id": "before", "segment_name": "stream", "segment_criteria": {}}'::jsonb)));

-- The export's chunk, staged as the loader COPYs it (every row at the export time).
insert into sync.staged_changes (ord, op, "row", changed_at, source) values
  (1, 'upsert', '{"segment_id": "after", "segment_name": "export", "segment_criteria": {}}', '2026-02-06T12:00:00Z', 'backfill'),
  (2, 'upsert', '{"segment_id": "gone", "segment_name": "export", "segment_criteria": {}}', '2026-02-06T12:00:00Z', 'backfill'),
  (3, 'upsert', '{"segment_id": "before", "segment_name": "export", "segment_criteria": {}}', '2026-02-06T12:00:00Z', 'backfill'),
  (4, 'upsert', '{"segment_id": "new", "segment_name": "first", "segment_criteria": {}}', '2026-02-06T12:00:00Z', 'backfill'),
  (5, 'upsert', '{"segment_id": "new", "segment_name": "export", "segment_criteria": {}}', '2026-02-06T12:00:00Z', 'backfill');
select results_eq('select applied, upserted, deleted from sync.merge_staged(''firespring_segments'')',
  $$values (2::bigint, 2::bigint, 0::bigint)$$, 'the staged chunk writes what the guard lets through');
select is((select segment_name from public.firespring_segments where segment_id = 'after'), 'stream',
  'a stream change after the export time wins over the export');
select is_empty($$select from public.firespring_segments where segment_id = 'gone'$$,
  'a tombstone after the export time keeps its key deleted');
select is((select segment_name from public.firespring_segments where segment_id = 'before'), 'export',
  'the export wins over a stream change before its time');
select is((select segment_name || ' ' || sync_source || ' ' || (sync_changed_at at time zone 'UTC')::text
           from public.firespring_segments where segment_id = 'new'),
  'export backfill 2026-02-06 12:00:00', 'a new key is written once, its later line winning, stamped with the export time');
select is((select count(*)::int from sync.staged_changes where stager = pg_current_xact_id()), 0,
  'the merged changes leave the staging table');

-- A collapsed table: every observation kept, the row the live one with the largest range key.
insert into sync.staged_changes (ord, op, "row", changed_at, source, range_key) values
  (1, 'upsert', '{"visitor_id": "v-staged", "page_views": 1, "session_data": {}}', '2026-02-06T12:00:00Z', 'backfill', 100),
  (2, 'upsert', '{"visitor_id": "v-staged", "page_views": 2, "session_data": {}}', '2026-02-06T12:00:00Z', 'backfill', 200);
select results_eq('select applied, upserted from sync.merge_staged(''firespring_visitors'')',
  $$values (2::bigint, 1::bigint)$$, 'a collapsed table''s observations are merged');
select results_eq(
  $$select (select count(*)::int from sync.observations where target_table = 'firespring_visitors'
                                          and row_key = '{"visitor_id": "v-staged"}'),
           (select page_views::int from public.firespring_visitors where visitor_id = 'v-staged')$$,
  $$values (2, 2)$$, 'both observations are kept; the row is the largest range key''s');

-- Bad changes.
insert into sync.staged_changes (ord, op, "row", changed_at, source) values
  (7, 'bogus', '{"segment_id": "x"}', '2026-02-06T12:00:00Z', 'backfill');
select throws_ok($$select * from sync.merge_staged('firespring_segments')$$, 'SY002',
  'sync.merge_staged(firespring_segments): change 7 has no op "upsert" or "delete"',
  'a change without an op is refused, naming it');
delete from sync.staged_changes;
select throws_ok($$select * from sync.merge_staged('nope')$$, 'SY002',
  'sync.merge_staged: nope is not a registered target table', 'an unknown table is refused');
insert into sync.staged_changes (ord, op, "row", changed_at, source) values
  (1, 'upsert', '{"segment_id": "poison", "member_count": "many", "segment_criteria": {}}', '2026-02-06T12:00:00Z', 'backfill');
select throws_like($$select * from sync.merge_staged('firespring_segments')$$,
  '%invalid input syntax for type numeric%',
  'a value Postgres refuses fails the chunk (the loader then dead-letters it alone)');
delete from sync.staged_changes;
select is_empty($$select from public.firespring_segments where segment_id = 'poison'$$,
  'nothing of a refused chunk is written');

select * from finish();
rollback;
