-- sync.status within the hosted statement timeout at 100× the report's volume.
--
-- A hosted project cuts every statement at 2 minutes ("postgres: none (capped by default
-- global timeout to be 2min)", https://supabase.com/docs/guides/database/postgres/timeouts).
-- sync.table_counts (20261128000900_status_views.sql) counted every row of every mirror
-- table and read max(synced_at) with a full scan each: at 100× the report (4.8 M rows,
-- 2.9 M of them actions, with their jsonb) that is nine sequential scans of the whole data
-- set on a small compute, each time someone looks at sync.status.
--
-- Now:
-- - rows are counted exactly only while the table's estimate is at most
--   sync.settings.status_exact_count_limit (100,000); above it sync.status shows the
--   planner's own estimate (pg_class.reltuples scaled to the table's current size, as the
--   planner scales it; pg_stat's live tuples before the first ANALYZE) and says so in
--   rows_estimated;
-- - last_change_at reads an index on synced_at (one per mirror table, below): the newest
--   entry, not a scan. Its price: an update that changes synced_at, which every merge
--   does, is no longer a HOT update and writes the index too.
--
-- sync.table_counts changes its result (rows_estimated), and sync.status shows it, so both
-- are dropped; table_counts is defined again here, sync.status in
-- 20261128005200_status.sql (its one definition since).

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

insert into sync.settings (key, value, description, min_value, max_value) values (
  'status_exact_count_limit', '100000',
  'sync.status counts a table''s rows exactly up to this many (by its estimate); above, it shows the estimate (rows_estimated).',
  0, 1000000000
) on conflict (key) do nothing;

do $$
declare
  t text;
begin
  for t in select s.target_table from sync.source_tables s order by s.target_table loop
    execute format('create index if not exists %I on public.%I (synced_at)', t || '_synced_at_idx', t);
  end loop;
end
$$;

drop view sync.status;
drop function sync.table_counts();

-- The estimate of a table's rows: reltuples per page at the last ANALYZE times the pages it
-- has now (what the planner does), or pg_stat's live tuples when it was never analyzed or
-- analyzed while it had no page (an estimate of 0 rows per page would say 0 however many
-- rows came since).
create function sync.estimated_rows(p_table regclass)
returns bigint
language sql stable set search_path = ''
as $$
  select case
    when c.reltuples >= 0 and c.relpages > 0
      then round(c.reltuples / c.relpages
        * (pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::bigint))::bigint
    when c.reltuples >= 0
      then greatest(c.reltuples::bigint, pg_catalog.pg_stat_get_live_tuples(c.oid))
    else pg_catalog.pg_stat_get_live_tuples(c.oid)
  end
  from pg_catalog.pg_class c
  where c.oid = p_table
$$;
comment on function sync.estimated_rows(regclass) is
  'The planner''s estimate of a table''s rows, scaled to its current size; pg_stat''s live tuples before the first ANALYZE, or after one of an empty table.';

-- Rows (exact, or estimated above the limit) and the last write of each mirror table.
create function sync.table_counts()
returns table (target_table text, row_count bigint, rows_estimated boolean, last_change_at timestamptz)
language plpgsql stable set search_path = ''
as $$
declare
  t text;
  exact_limit bigint := coalesce(
    (select s.value::bigint from sync.settings s where s.key = 'status_exact_count_limit'), 100000);
  estimate bigint;
begin
  for t in select s.target_table from sync.source_tables s order by s.target_table loop
    target_table := t;
    estimate := sync.estimated_rows(format('public.%I', t)::regclass);
    rows_estimated := estimate > exact_limit;
    if rows_estimated then
      row_count := estimate;
    else
      execute format('select count(*) from public.%I', t) into row_count;
    end if;
    execute format('select max(synced_at) from public.%I', t) into last_change_at;
    return next;
  end loop;
end
$$;
comment on function sync.table_counts() is
  'Rows of each mirror table (exact up to status_exact_count_limit, else the estimate, flagged) and its last write.';

-- sync.status, which shows table_counts' columns, is defined again in
-- 20261128005200_status.sql: its one definition since.

revoke all on function sync.estimated_rows(regclass), sync.table_counts() from public;
