-- sync.merge_changes reaches each table's compiled merge through the compiled dispatcher
-- (20261128001400_compiled_merges.sql): generated from the registry, checked against it
-- by sync.stale_merges, with the wrapper's checks and errors unchanged.
set client_min_messages = warning;
begin;
select plan(13);

select has_function('sync', 'merge_compiled', array['text', 'jsonb'], 'the dispatcher exists');
select is_empty('select * from sync.stale_merges()', 'the dispatcher and the field list are current');
select is(
  (select count(*)::integer from sync.source_tables s
   where (select prosrc from pg_proc where proname = 'merge_compiled'
          and pronamespace = 'sync'::regnamespace)
         like format('%%when %L then return query select * from sync.%I(p_changes);%%',
                     s.target_table, sync.merge_function_name(s.target_table))),
  (select count(*)::integer from sync.source_tables),
  'the dispatcher has a branch for every registered table');
select is(sync.change_fields(),
  (select array_agg(a.attname::text order by a.attnum) from pg_attribute a
   where a.attrelid = 'sync.change'::regclass and a.attnum > 0 and not a.attisdropped),
  'the compiled field list is sync.change''s attributes');

-- A change through the wrapper is applied as before, its counts returned.
select results_eq(
  $$select applied, upserted, deleted from sync.merge_changes('firespring_segments',
    jsonb_build_array(jsonb_build_object('op', 'upsert', 'seq', '100', 'changed_at',
      '2026-02-06T10:00:00Z', 'source', 'stream', 'row', jsonb_build_object(
        'segment_id', 'dispatch-1', 'segment_name', 'n', 'member_count', 1,
        'segment_criteria', '{}'::jsonb))))$$,
  $$values (1::bigint, 1::bigint, 0::bigint)$$,
  'a change is merged through the dispatcher');
select is((select segment_name from public.firespring_segments where segment_id = 'dispatch-1'),
  'n', 'and its row is written');

-- The wrapper's checks, unchanged.
select throws_ok($$select * from sync.merge_changes('nope', '[]')$$, 'SY002',
  'sync.merge_changes: nope is not a registered target table',
  'an unregistered table is refused, named');
select throws_ok(
  $$select * from sync.merge_changes('firespring_segments',
    '[{"op": "upsert", "changed_at": "2026-02-06T10:00:00Z", "source": "stream", "rwo": {}}]')$$,
  'SY002',
  'sync.merge_changes(firespring_segments): change 1 has the field "rwo", which sync.change does not have',
  'a field sync.change does not have is refused, named');

-- A registered table the dispatcher does not know (a migration that forgot
-- sync.compile_merges()) is named by sync.stale_merges and refused by the dispatcher:
-- the dispatcher as generated, with firespring_segments' branch taken out, so that its
-- own refusal (not one written here) is what answers.
do $$
begin
  execute format(
    $f$create or replace function sync.merge_compiled(p_target text, p_changes jsonb)
       returns table (applied bigint, upserted bigint, deleted bigint)
       language plpgsql set search_path = '' as %L$f$,
    regexp_replace(sync.merge_dispatch_source(), '\n    when ''firespring_segments''[^\n]*', ''));
end $$;
select ok(position('''firespring_segments''' in (select prosrc from pg_proc where proname = 'merge_compiled'
            and pronamespace = 'sync'::regnamespace)) = 0,
  'the generated dispatcher, without the table''s branch');
select is((select count(*)::integer from sync.stale_merges()),
  (select count(*)::integer from sync.source_tables),
  'an out-of-date dispatcher makes every table stale');
select throws_ok(
  $$select * from sync.merge_changes('firespring_segments', '[]')$$, 'SY002',
  'sync.merge_changes: firespring_segments has no compiled merge; run select sync.compile_merges()',
  'a table missing from the dispatcher is refused with what to run');
select sync.compile_merges();
select is_empty('select * from sync.stale_merges()', 'sync.compile_merges() compiles it again');
select results_eq(
  $$select applied from sync.merge_changes('firespring_segments', '[]')$$,
  $$values (0::bigint)$$, 'and an empty batch merges nothing');

select * from finish();
rollback;
