-- Admins' reads at 100x the report's volume (4.8 million items; found by a review of the
-- statements at scale on Postgres 15): the visitors view ordered by time took 28 s, past
-- the 8 s statement timeout of `authenticated`, for two causes.
--
-- 1. The policies' role test, `(select auth.jwt() ...) in ('admin', 'superuser')`, is
--    estimated by the planner to keep 1% of a table's rows (a comparison with a value it
--    cannot see), so it never chose an ordered index scan with a limit, expecting to run
--    out of rows; every session's columns were computed, then sorted. The same test as one
--    yes/no, computed once per statement, is a value the planner takes as even odds:
--    `(select (... in ('admin', 'superuser')) is true)`; `auth.jwt()` inside it stays in
--    a `select` of its own, the form Supabase's advisor (lint 0003, auth_rls_initplan)
--    recognises as read once per statement. Who may read and update is
--    unchanged (a missing role is false, as it was null). Replaces the policies of
--    20261128000700_row_level_security.sql and 20261128000800_visitors_detailed_view.sql.
-- 2. Neither order of the view had an index: `last_visit_at` of the visitors, and the
--    sessions' start, indexed by exactly the view's expression for it
--    (20261128002800_visitors_view_bounds.sql), ascending (a `desc nulls last` index
--    does not serve `order by ... desc`).
-- With both, the first 50 sessions by either time took 8.4 and 7.5 ms at 100x (they took
-- 28.0 and 28.4 s). Building the indexes on a project of that size holds the visitors'
-- merges for a few seconds (4.6 s for the sessions' at 100x, on this machine); the
-- policies, altered last, hold each table only for that moment (found by a review: before
-- the indexes, every table's reads and merges waited for both builds).

select set_config('lock_timeout', '5s', true);

create index firespring_visitors_last_visit_at_idx on public.firespring_visitors (last_visit_at);
create index visitor_sessions_started_at_idx on analytics.visitor_sessions ((
  case when jsonb_typeof(session -> 'time') = 'number'
        and (session ->> 'time')::numeric between -62135596800 and 253402300799
       then to_timestamp((session ->> 'time')::double precision) end));
comment on index analytics.visitor_sessions_started_at_idx is
  'firespring_visitors_detailed.session_started_at, by the view''s own expression: the view ordered by it reads the first sessions only.';

-- After the indexes: each ALTER POLICY locks its table (access exclusive) until the
-- push commits, so they come last (in name order), and every table waits only for the
-- policies' own moment.
do $$
declare
  t text;
  is_admin constant text :=
    $e$(select (((select auth.jwt()) -> 'app_metadata' ->> 'role') in ('admin', 'superuser')) is true)$e$;
begin
  for t in
    select target_table from sync.source_tables
    union all select 'sync_checksums'
    order by 1
  loop
    execute format('alter policy "admins can read" on public.%I using (%s)', t, is_admin);
    if t <> 'sync_checksums' then
      execute format('alter policy "admins can update" on public.%I using (%s) with check (%s)',
                     t, is_admin, is_admin);
    end if;
  end loop;
  execute format('alter policy "admins can read" on analytics.visitor_sessions using (%s)', is_admin);
end
$$;
