-- The keys the stream changed after a validation's look read them
-- (20261128005100_keys_moved_on.sql): a row or a tombstone a stream record stamped at or
-- after the read's bound plus the clock's granularity, each key by its primary key; not
-- one stamped before, nor one a direct request or a repair stamped, nor a key the sync
-- never held, nor any key of a collapsed table; those have their own check
-- (20261128005400_collapsed_keys_moved_on.sql).
set client_min_messages = warning;
begin;
select tests.set_aside_validation_runs();
select plan(13);

delete from sync.tombstones where target_table in ('toledo_dashboard', 'firespring_visitors');
delete from public.toledo_dashboard;
delete from sync.observations where target_table = 'firespring_visitors';
delete from public.firespring_visitors;

-- Read before 10:00:10 (an instant after the look's reads): granularity 1 s.
select sync.merge_changes('toledo_dashboard', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"pk": "p", "sk": "after", "metrics": {}, "dashboard_data": {}}'::jsonb,
    'seq', '10', 'changed_at', '2026-02-06T10:00:11Z', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"pk": "p", "sk": "edge", "metrics": {}, "dashboard_data": {}}'::jsonb,
    'seq', '11', 'changed_at', '2026-02-06T10:00:10.5Z', 'source', 'stream'),
  jsonb_build_object('op', 'upsert', 'row', '{"pk": "p", "sk": "gone", "metrics": {}, "dashboard_data": {}}'::jsonb,
    'seq', '12', 'changed_at', '2026-02-06T10:00:01Z', 'source', 'stream'),
  jsonb_build_object('op', 'delete', 'row', '{"pk": "p", "sk": "gone"}'::jsonb,
    'seq', '13', 'changed_at', '2026-02-06T10:00:12Z', 'source', 'stream')));

select results_eq(
  $$select k ->> 'sk' from sync.keys_changed_since('toledo_dashboard',
      '[{"pk": "p", "sk": "after"}, {"pk": "p", "sk": "edge"}, {"pk": "p", "sk": "gone"},
        {"pk": "p", "sk": "never"}]'::jsonb, '2026-02-06T10:00:10Z') k order by 1$$,
  $$values ('after'::text), ('gone')$$,
  'a row changed a second or more after the bound, and a key deleted then; not one changed within the second, nor one never held'
);
select is((select count(*)::int from sync.keys_changed_since('toledo_dashboard',
      '[{"pk": "p", "sk": "after"}]'::jsonb, '2026-02-06T10:00:10.001Z')),
  0, 'a change stamped less than the granularity after the bound is not surely after the read');

-- A person's direct request and a repair's delete are stamped on other clocks, and hold
-- what DynamoDB may not: they prove nothing.
select sync.merge_changes('toledo_dashboard', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"pk": "p", "sk": "direct", "metrics": {}, "dashboard_data": {}}'::jsonb,
    'seq', null, 'changed_at', '2026-02-06T10:00:30Z', 'source', 'direct'),
  jsonb_build_object('op', 'upsert', 'row', '{"pk": "p", "sk": "repaired", "metrics": {}, "dashboard_data": {}}'::jsonb,
    'seq', '14', 'changed_at', '2026-02-06T10:00:01Z', 'source', 'stream')));
-- The repair's delete, read long after the row's change: its own batch.
select sync.merge_changes('toledo_dashboard', jsonb_build_array(
  jsonb_build_object('op', 'delete', 'row', '{"pk": "p", "sk": "repaired"}'::jsonb,
    'seq', null, 'changed_at', '2026-02-06T10:00:30Z', 'source', 'repair')));
select is((select count(*)::int from public.toledo_dashboard where pk = 'p' and sk in ('direct', 'repaired')),
  1, 'the direct write is held and the repair deleted its row');
select is((select count(*)::int from sync.keys_changed_since('toledo_dashboard',
      '[{"pk": "p", "sk": "direct"}, {"pk": "p", "sk": "repaired"}]'::jsonb, '2026-02-06T10:00:10Z')),
  0, 'a direct write and a repair''s delete after the bound count for nothing');

-- A collapsed table: its row is built from several items, so a newer stamp on one proves
-- nothing of the others (here an older session written after the bound).
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v1", "page_views": 1, "session_data": {}}'::jsonb,
    'seq', '20', 'changed_at', '2026-02-06T10:00:01Z', 'source', 'stream', 'range_key', 100),
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v2", "page_views": 1, "session_data": {}}'::jsonb,
    'seq', '21', 'changed_at', '2026-02-06T10:00:01Z', 'source', 'stream', 'range_key', 100),
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v2", "page_views": 2, "session_data": {}}'::jsonb,
    'seq', '22', 'changed_at', '2026-02-06T10:00:30Z', 'source', 'stream', 'range_key', 50)));
select results_eq(
  $$select k ->> 'visitor_id' from sync.keys_changed_since('firespring_visitors',
      '[{"visitor_id": "v1"}, {"visitor_id": "v2"}]'::jsonb, '2026-02-06T10:00:10Z') k$$,
  $$select null::text where false$$,
  'no key of a collapsed table'
);

-- Its own check (20261128005400_collapsed_keys_moved_on.sql): a key whose row was written
-- from the stream after the bound, from an item ranked at least as the largest the run
-- read of the key. v2's row (page_views 1, range key 100, stamped 10:00:01) predates the
-- bound; v3's and v4's rows come after it, v3's from an item past what was read, v4's
-- from one below it (an item the look read, ranked higher, never reached the row: a
-- change lost before the read shows through); v5 was read with no item.
insert into public.sync_checksums (target_table) values ('firespring_visitors');
create temporary table vrun as
  select max(id) as id from public.sync_checksums where target_table = 'firespring_visitors';
insert into sync.checksum_items (run_id, row_key, range_key, digest)
  select vrun.id, k.row_key::jsonb, k.range_key, 'x' from vrun, (values
    ('{"visitor_id": "v2"}', 100), ('{"visitor_id": "v3"}', 200),
    ('{"visitor_id": "v3"}', 150), ('{"visitor_id": "v4"}', 400)) as k(row_key, range_key);
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v3", "page_views": 3, "session_data": {}}'::jsonb,
    'seq', '30', 'changed_at', '2026-02-06T10:00:30Z', 'source', 'stream', 'range_key', 200),
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v4", "page_views": 4, "session_data": {}}'::jsonb,
    'seq', '31', 'changed_at', '2026-02-06T10:00:30Z', 'source', 'stream', 'range_key', 300),
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v5", "page_views": 5, "session_data": {}}'::jsonb,
    'seq', '32', 'changed_at', '2026-02-06T10:00:30Z', 'source', 'stream', 'range_key', 1)));
select results_eq(
  $$select k ->> 'visitor_id' from sync.collapsed_keys_changed_since((select id from vrun), 'firespring_visitors',
      '[{"visitor_id": "v1"}, {"visitor_id": "v2"}, {"visitor_id": "v3"}, {"visitor_id": "v4"},
        {"visitor_id": "v5"}, {"visitor_id": "never"}]'::jsonb, '2026-02-06T10:00:10Z') k order by 1$$,
  $$values ('v3'::text), ('v5')$$,
  'a collapsed key moved past what the run read; not one whose row ranks below it, nor one stamped before'
);
select is((select count(*)::int from sync.collapsed_keys_changed_since((select id from vrun), 'firespring_visitors',
      '[{"visitor_id": "v3"}]'::jsonb, '2026-02-06T10:00:30Z')),
  0, 'a change within the granularity after the bound is not surely after the read');
select is((select count(*)::int from sync.collapsed_keys_changed_since((select id from vrun) + 1, 'firespring_visitors',
      '[{"visitor_id": "v4"}]'::jsonb, '2026-02-06T10:00:10Z')),
  1, 'a run that read no item of the key: its row from the stream after the bound is enough');
select throws_ok($$select * from sync.collapsed_keys_changed_since((select id from vrun), 'toledo_dashboard', '[]'::jsonb, now())$$,
  '22023', 'sync.collapsed_keys_changed_since: toledo_dashboard is not a collapsed target table',
  'a plain table is refused, named');
select ok(not has_function_privilege('anon',
  'sync.collapsed_keys_changed_since(bigint, text, jsonb, timestamptz)', 'execute'), 'not callable by anon');

select throws_ok($$select * from sync.keys_changed_since('nope', '[]'::jsonb, now())$$,
  '22023', 'sync.keys_changed_since: nope is not a target table', 'an unknown table is named');
select is((select count(*)::int from sync.keys_changed_since('toledo_dashboard', '[]'::jsonb, now())),
  0, 'no keys, none');
select ok(not has_function_privilege('anon', 'sync.keys_changed_since(text, jsonb, timestamptz)', 'execute'),
  'not callable by anon');

select * from finish();
rollback;
