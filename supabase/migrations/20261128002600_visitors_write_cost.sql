-- What a collapsed, nested item costs to write (issue 16, "Collapsed tables that are
-- not three times dearer per item than plain ones"; README, "The merge, and collapsed
-- tables"). Measured on a page of 518 visitors items (80 visitors) merged again into
-- rows that hold them, in one transaction each, five times: 156-160 ms before, 115-122
-- ms with both changes below.
--
-- 1. LZ4 for the columns that hold whole items. A visitors item is 2.6 KB of JSON on
--    average in the demo data set, so its observation's `row` and its row's
--    `session_data` are compressed by TOAST on every write, by default with pglz; LZ4
--    compresses several times faster for a few per cent more bytes (alone: 156 -> 128
--    ms). The setting applies to values written from now on; those already stored keep
--    pglz until they are written again. Supabase's Postgres images are built with LZ4
--    since January 2023 (https://github.com/supabase/postgres/issues/483), and a project
--    upgraded to a newer Postgres runs on a new instance of the latest image
--    (https://supabase.com/docs/guides/platform/migrating-and-upgrading-projects); a
--    server built without it keeps pglz, and this says so. Each ALTER changes the
--    table's metadata only (no rewrite) but takes its ACCESS EXCLUSIVE lock: on a live
--    project it waits for the merges in flight, and after 5 s this migration fails,
--    rather than queue every reader of the table behind it; push it again.
do $$
begin
  perform set_config('lock_timeout', '5s', true);
  alter table sync.observations alter column row set compression lz4;
  alter table public.firespring_visitors alter column session_data set compression lz4;
  alter table analytics.visitor_sessions alter column session set compression lz4;
exception when feature_not_supported then
  raise notice 'this server has no LZ4 (%): item columns keep pglz', sqlerrm;
end
$$;

-- 2. The flattened sessions of the visitors an update changed, found by key. The trigger
--    (20261128000800_visitors_detailed_view.sql) deleted with a join of the transition
--    tables to analytics.visitor_sessions, which the planner, not knowing how few
--    visitors changed, could run as a hash join over every visitor's sessions: a page of
--    80 visitors whose sessions had not changed read all 13,190 session rows (33 ms)
--    to delete none. The visitors whose session_data changed come first, as an array;
--    their sessions are then deleted through the primary key, and nothing is read when
--    none changed (alone: 156 -> 140 ms). The insert pairs the transition tables as
--    before: filtered by `= any (changed)` instead, once PL/pgSQL keeps a generic plan
--    (from a session's sixth call) each new row was looked up in the array, and 20,000
--    changed visitors (a merge's chunk) took 7.4 s instead of 1.4 s.
create or replace function analytics.visitor_sessions_update() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  changed text[];
begin
  select array_agg(n.visitor_id) into changed
  from new_rows n join old_rows o on o.visitor_id = n.visitor_id
  where n.session_data is distinct from o.session_data;
  if changed is null then
    return null;
  end if;

  delete from analytics.visitor_sessions s where s.visitor_id = any (changed);

  insert into analytics.visitor_sessions (visitor_id, ordinal, session)
  select n.visitor_id, e.ordinal, e.session
  from new_rows n
  join old_rows o on o.visitor_id = n.visitor_id
  cross join lateral jsonb_array_elements(
    case when jsonb_typeof(n.session_data -> 'sessions') = 'array'
         then n.session_data -> 'sessions' else '[]'::jsonb end
  ) with ordinality as e(session, ordinal)
  where n.session_data is distinct from o.session_data;
  return null;
end
$$;
