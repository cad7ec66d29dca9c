-- sync.status stays cheap on big tables (20261128001200_connection_limits.sql): rows are
-- counted exactly up to sync.settings.status_exact_count_limit, above it the planner's
-- estimate is shown and flagged (rows_estimated); last_change_at reads an index on
-- synced_at. The hosted statement timeout is 2 minutes (README, "Connections").
set client_min_messages = warning;
begin;
select plan(7);

delete from public.firespring_searches;
insert into public.firespring_searches (search_id, sync_changed_at, sync_source, synced_at)
select 's-' || i, now(), 'direct', '2026-02-06 10:00:00+00'::timestamptz + i * interval '1 minute'
from generate_series(1, 3) i;
-- ANALYZE counts this transaction's own rows: the estimate is 3.
analyze public.firespring_searches;

select is(sync.estimated_rows('public.firespring_searches'), 3::bigint,
  'the estimate is the planner''s: reltuples scaled to the table''s pages');

select results_eq(
  $$select rows, rows_estimated, last_change_at from sync.status
    where target_table = 'firespring_searches'$$,
  $$values (3::bigint, false, '2026-02-06 10:03:00+00'::timestamptz)$$,
  'under the limit the rows are counted exactly'
);

-- Above the limit: the estimate, flagged, not a count.
update sync.settings set value = '2' where key = 'status_exact_count_limit';
insert into public.firespring_searches (search_id, sync_changed_at, sync_source, synced_at)
values ('s-4', now(), 'direct', '2026-02-06 09:00:00+00');
select results_eq(
  $$select rows, rows_estimated, last_change_at from sync.status
    where target_table = 'firespring_searches'$$,
  $$values (3::bigint, true, '2026-02-06 10:03:00+00'::timestamptz)$$,
  'above the limit sync.status shows the estimate (3, not the 4 rows there are) and says so'
);

update sync.settings set value = '1000' where key = 'status_exact_count_limit';
select results_eq(
  $$select rows, rows_estimated from sync.status where target_table = 'firespring_searches'$$,
  $$values (4::bigint, false)$$,
  'with the limit raised the same table is counted exactly again'
);

select is(
  (select count(*)::int from sync.settings where key = 'status_exact_count_limit'), 1,
  'the limit is a row of sync.settings'
);

-- last_change_at is the newest entry of an index, not a scan of the table.
select is(
  (select count(*)::int from sync.source_tables s
    where exists (
      select from pg_catalog.pg_index i
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indrelid = format('public.%I', s.target_table)::regclass
        and i.indnkeyatts = 1 and a.attname = 'synced_at')),
  9, 'every mirror table has an index on synced_at'
);

set local enable_seqscan = off;
select unalike(
  tests.explain('select max(synced_at) from public.firespring_actions'),
  '%Seq Scan%',
  'max(synced_at) reads the index'
);

select * from finish();
rollback;
