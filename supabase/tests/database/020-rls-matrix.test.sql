-- Every cell of the RLS matrix (docs/interfaces.md, "Who may do what"): each of the ten
-- tables and the view, for each persona, for select / insert / update / delete.
-- A cell is the observed outcome: rows seen or changed ('rows:N'), or the error raised
-- ('error:42501' is "permission denied"). Each statement is rolled back after it ran.
-- Statements and counts keep to the test's own rows: `npm test` runs the end-to-end tests
-- beside pgTAP, and a row they commit meanwhile must change no count.
--
-- Personas: anon; authenticated without a role claim; authenticated whose
-- user_metadata.role is admin (user-editable, so it grants nothing); authenticated with
-- app_metadata.role admin; the same with superuser; service_role.
set client_min_messages = warning;
begin;
-- The matrix below, then an admin's update of each key and sync column of each mirror
-- table (one test each), then the flattened sessions for four personas.
select tests.set_aside_validation_runs();
select plan(264 + (
  select count(*)::int from sync.source_tables s
  join pg_attribute a on a.attrelid = format('public.%I', s.target_table)::regclass
  where a.attnum > 0 and not a.attisdropped
    and (a.attname = any (s.key_columns) or a.attname like 'sync\_%' or a.attname = 'synced_at')
) + 4);

select tests.create_supabase_user('rls_no_role');
select tests.create_supabase_user('rls_user_metadata_admin', '{}', '{"role": "admin"}');
select tests.create_supabase_user('rls_admin', '{"role": "admin"}');
select tests.create_supabase_user('rls_superuser', '{"role": "superuser"}');

-- One row in each table (two sessions, so two rows in the view).
insert into public.firespring_actions (action_id, action_type, sync_changed_at, sync_source)
  values ('a-1', 'click', now(), 'direct');
insert into public.firespring_visitors (visitor_id, page_views, session_data, sync_range_key, sync_changed_at, sync_source)
  values ('v-1', 3, '{"sessions": [{"session_id": "s-1", "geolocation": "Toledo, Ohio, USA"},
                                   {"session_id": "s-2", "geolocation": "Canada"}]}',
          1700000000, now(), 'direct');
insert into public.firespring_extraction_jobs (job_id, status, sync_range_key, sync_changed_at, sync_source)
  values ('j-1', 'running', 1700000000000, now(), 'direct');
insert into public.firespring_traffic_sources (source_id, source_name, sync_changed_at, sync_source)
  values ('t-1', 'google', now(), 'direct');
insert into public.firespring_segments (segment_id, segment_name, sync_changed_at, sync_source)
  values ('g-1', 'returning', now(), 'direct');
insert into public.firespring_searches (search_id, query, sync_changed_at, sync_source)
  values ('q-1', 'toledo', now(), 'direct');
insert into public.firespring_network_state (state_key, state_value, sync_changed_at, sync_source)
  values ('n-1', '{"up": true}', now(), 'direct');
insert into public.mmp_toledo_leads (lead_id, name, sync_changed_at, sync_source)
  values ('l-1', 'Ada', now(), 'direct');
insert into public.toledo_dashboard (pk, sk, metrics, sync_changed_at, sync_source)
  values ('p-1', 's-1', '{"visits": 1}', now(), 'direct');
insert into public.sync_checksums (target_table, match, started_at)
  values ('firespring_actions', true, '2001-02-03 04:05:06+00');

-- What each relation is probed with: a new row to insert, a data column to update, and
-- which rows are the test's own.
create temporary table relations (relation text, is_view boolean, insert_sql text, update_set text, mine text);
insert into relations values
  ('firespring_actions', false, $$(action_id, sync_changed_at, sync_source) values ('new', now(), 'direct')$$, $$action_type = 'edited'$$, $$action_id = 'a-1'$$),
  ('firespring_visitors', false, $$(visitor_id, sync_range_key, sync_changed_at, sync_source) values ('new', 1, now(), 'direct')$$, $$page_views = 4$$, $$visitor_id = 'v-1'$$),
  ('firespring_extraction_jobs', false, $$(job_id, sync_range_key, sync_changed_at, sync_source) values ('new', 1, now(), 'direct')$$, $$status = 'failed'$$, $$job_id = 'j-1'$$),
  ('firespring_traffic_sources', false, $$(source_id, sync_changed_at, sync_source) values ('new', now(), 'direct')$$, $$source_name = 'edited'$$, $$source_id = 't-1'$$),
  ('firespring_segments', false, $$(segment_id, sync_changed_at, sync_source) values ('new', now(), 'direct')$$, $$segment_name = 'edited'$$, $$segment_id = 'g-1'$$),
  ('firespring_searches', false, $$(search_id, sync_changed_at, sync_source) values ('new', now(), 'direct')$$, $$query = 'edited'$$, $$search_id = 'q-1'$$),
  ('firespring_network_state', false, $$(state_key, sync_changed_at, sync_source) values ('new', now(), 'direct')$$, $$state_value = '{}'$$, $$state_key = 'n-1'$$),
  ('mmp_toledo_leads', false, $$(lead_id, sync_changed_at, sync_source) values ('new', now(), 'direct')$$, $$status = 'edited'$$, $$lead_id = 'l-1'$$),
  ('toledo_dashboard', false, $$(pk, sk, sync_changed_at, sync_source) values ('new', 'new', now(), 'direct')$$, $$metrics = '{}'$$, $$pk = 'p-1'$$),
  ('sync_checksums', false, $$(target_table) values ('firespring_segments')$$, $$match = false$$, $$started_at = '2001-02-03 04:05:06+00'$$),
  ('firespring_visitors_detailed', true, $$(visitor_id) values ('new')$$, $$city = 'edited'$$, $$visitor_id = 'v-1'$$);

create temporary table personas (persona text, label text, is_admin boolean);
insert into personas values
  ('anon', 'anon', false),
  ('rls_no_role', 'authenticated without role', false),
  ('rls_user_metadata_admin', 'authenticated with user_metadata.role admin', false),
  ('rls_admin', 'authenticated with app_metadata.role admin', true),
  ('rls_superuser', 'authenticated with app_metadata.role superuser', true),
  ('service_role', 'service_role', true);

create temporary table actions (action text, position int);
insert into actions values ('select', 1), ('insert', 2), ('update', 3), ('delete', 4);

-- The matrix: what each persona must observe.
create temporary table cells as
select r.relation, p.persona, p.label, a.action, a.position,
  case a.action
    when 'select' then format('select * from public.%I where %s', r.relation, r.mine)
    when 'insert' then format('insert into public.%I %s', r.relation, r.insert_sql)
    when 'update' then format('update public.%I set %s where %s', r.relation, r.update_set, r.mine)
    when 'delete' then format('delete from public.%I where %s', r.relation, r.mine)
  end as statement,
  case
    -- The view cannot be written through, by anyone ("cannot insert into view":
    -- object_not_in_prerequisite_state); reading it follows the table's rules.
    when r.is_view and a.action <> 'select' then 'error:55000'
    -- anon holds no privilege at all.
    when p.persona = 'anon' then 'error:42501'
    when a.action = 'select' then
      'rows:' || case when p.is_admin then tests.row_count(('public.' || r.relation)::regclass, r.mine) else 0 end
    when a.action = 'insert' then
      case when p.persona = 'service_role' then 'rows:1' else 'error:42501' end
    -- sync_checksums is the validator's record: admins read it, only the service edits it.
    when a.action = 'update' and r.relation = 'sync_checksums' and p.persona <> 'service_role' then
      'error:42501'
    when a.action = 'update' then
      'rows:' || case when p.is_admin then tests.row_count(('public.' || r.relation)::regclass, r.mine) else 0 end
    when a.action = 'delete' then
      case when p.persona = 'service_role'
           then 'rows:' || tests.row_count(('public.' || r.relation)::regclass, r.mine)
           else 'error:42501' end
  end as expected
from relations r cross join personas p cross join actions a;

select is(
  tests.outcome_as(persona, statement),
  expected,
  format('%s: %s on %s -> %s', label, action, relation, expected)
)
from cells
order by relation, persona, position;

-- An admin edits data columns only: never a key (the row would stand for another item,
-- and the write-back records nothing for a key), nor a column of the sync's (a position
-- set in the future would make every stream change read as older), on any mirror table.
select is(
  tests.outcome_as('rls_admin', format('update public.%I set %I = %I where %s',
                                       s.target_table, a.attname, a.attname, r.mine)),
  'error:42501',
  format('an admin cannot update %s.%s', s.target_table, a.attname))
from sync.source_tables s
join relations r on r.relation = s.target_table
join pg_attribute a on a.attrelid = format('public.%I', s.target_table)::regclass
where a.attnum > 0 and not a.attisdropped
  and (a.attname = any (s.key_columns) or a.attname like 'sync\_%' or a.attname = 'synced_at')
order by s.target_table, a.attnum;

-- The flattened sessions (the view reads them through an inner join, which would hide a
-- policy that let everyone read them): only admins read them, from app_metadata.
select is(tests.outcome_as('anon', $$select * from analytics.visitor_sessions where visitor_id = 'v-1'$$),
  'error:42501', 'anon: the flattened sessions -> error:42501');
select is(tests.outcome_as('rls_no_role', $$select * from analytics.visitor_sessions where visitor_id = 'v-1'$$),
  'rows:0', 'authenticated without role: the flattened sessions -> rows:0');
select is(tests.outcome_as('rls_user_metadata_admin', $$select * from analytics.visitor_sessions where visitor_id = 'v-1'$$),
  'rows:0', 'authenticated with user_metadata.role admin: the flattened sessions -> rows:0');
select is(tests.outcome_as('rls_admin', $$select * from analytics.visitor_sessions where visitor_id = 'v-1'$$),
  'rows:2', 'authenticated with app_metadata.role admin: the flattened sessions -> rows:2');

select * from finish();
rollback;
