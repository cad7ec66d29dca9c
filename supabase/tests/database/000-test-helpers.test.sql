-- Test helpers, in the style of basejump's supabase-test-helpers, installed once (this
-- file runs first and commits) and used by every other test file:
--   tests.create_supabase_user(identifier, app_metadata, user_metadata) -> uuid
--   tests.authenticate_as(identifier)       -- an `authenticated` request of that user
--   tests.authenticate_as_anon()            -- an `anon` request
--   tests.authenticate_as_service_role()    -- a `service_role` request
--   tests.clear_authentication()            -- back to the test's own (postgres) session
-- They set `role` and `request.jwt.claims` for the current transaction, as PostgREST
-- does for each request.
set client_min_messages = warning;
begin;
select plan(5);

create schema if not exists tests;
grant usage on schema tests to anon, authenticated, service_role;

create or replace function tests.create_supabase_user(
  identifier text,
  app_metadata jsonb default '{}'::jsonb,
  user_metadata jsonb default '{}'::jsonb
) returns uuid
language sql security definer set search_path = ''
as $$
  insert into auth.users (email, raw_app_meta_data, raw_user_meta_data)
  values (
    identifier || '@test.local',
    app_metadata,
    user_metadata || jsonb_build_object('test_identifier', identifier)
  )
  on conflict (email) do update
    set raw_app_meta_data = excluded.raw_app_meta_data,
        raw_user_meta_data = excluded.raw_user_meta_data
  returning id
$$;

create or replace function tests.get_supabase_uid(identifier text) returns uuid
language sql stable security definer set search_path = ''
as $$
  select id from auth.users where email = identifier || '@test.local'
$$;

-- The claims PostgREST would put in `request.jwt.claims` for this user's JWT.
create or replace function tests.jwt_claims_of(identifier text) returns jsonb
language plpgsql stable security definer set search_path = ''
as $$
declare
  u auth.users;
begin
  select * into u from auth.users where email = identifier || '@test.local';
  if u.id is null then
    raise exception 'tests: no test user %; create it with tests.create_supabase_user', identifier;
  end if;
  return jsonb_build_object(
    'sub', u.id, 'email', u.email, 'role', 'authenticated', 'aud', 'authenticated',
    'app_metadata', u.raw_app_meta_data, 'user_metadata', u.raw_user_meta_data);
end
$$;

-- The timeouts PostgREST gives a request of `api_role`: those of the role it logs in as
-- (authenticator: statement_timeout and lock_timeout 8s), then the impersonated role's
-- (anon 3s, authenticated 8s), for the transaction. PostgREST 11.1 and later apply the
-- impersonated role's settings per request (https://postgrest.org/en/stable/references/auth.html,
-- "Impersonated Role Settings"); Postgres applies a role's settings only at login, never
-- on a role switch. The same as scripts/admin_edit.ts's asAdmin.
create or replace function tests.apply_request_settings(api_role text) returns void
language sql set search_path = ''
as $$
  select set_config(split_part(setting, '=', 1), substr(setting, strpos(setting, '=') + 1), true)
  from pg_catalog.pg_db_role_setting d
  join pg_catalog.pg_roles r on r.oid = d.setrole
  cross join lateral unnest(d.setconfig) as setting
  where d.setdatabase = 0 and r.rolname in ('authenticator', api_role)
    and split_part(setting, '=', 1) in ('statement_timeout', 'lock_timeout')
  order by r.rolname = api_role
$$;

-- Role switches cannot happen in security definer functions, so these run as invoker.
create or replace function tests.authenticate_as(identifier text) returns void
language plpgsql set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', tests.jwt_claims_of(identifier)::text, true);
  perform set_config('role', 'authenticated', true);
  perform tests.apply_request_settings('authenticated');
end
$$;

create or replace function tests.authenticate_as_anon() returns void
language plpgsql set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', '{"role": "anon"}', true);
  perform set_config('role', 'anon', true);
  perform tests.apply_request_settings('anon');
end
$$;

create or replace function tests.authenticate_as_service_role() returns void
language plpgsql set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', '{"role": "service_role"}', true);
  perform set_config('role', 'service_role', true);
  perform tests.apply_request_settings('service_role');
end
$$;

-- Back to the test's own session: its role, and its own timeouts.
create or replace function tests.clear_authentication() returns void
language plpgsql set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', '', true);
  perform set_config('role', 'postgres', true);
  perform set_config(s.name, s.reset_val, true)
  from pg_catalog.pg_settings s where s.name in ('statement_timeout', 'lock_timeout');
end
$$;

-- Runs one statement as a persona ('anon', 'service_role' or a test user's identifier)
-- and rolls it back, returning what happened: 'rows:N' (rows seen by a select, or
-- changed by an insert/update/delete) or 'error:SQLSTATE'. Used for the RLS matrix.
create or replace function tests.outcome_as(persona text, statement text) returns text
language plpgsql set search_path = ''
as $$
declare
  affected bigint;
begin
  begin
    if persona = 'anon' then
      perform tests.authenticate_as_anon();
    elsif persona = 'service_role' then
      perform tests.authenticate_as_service_role();
    else
      perform tests.authenticate_as(persona);
    end if;
    if statement ~* '^\s*select' then
      execute 'select count(*) from (' || statement || ') q' into affected;
    else
      execute statement;
      get diagnostics affected = row_count;
    end if;
    -- Undo the statement (and the role switch) by failing the block on purpose.
    raise exception using errcode = 'TSTRB', message = 'rolled back by tests.outcome_as';
  exception
    when sqlstate 'TSTRB' then return 'rows:' || affected;
    when others then return 'error:' || sqlstate;
  end;
end
$$;

-- The number of rows of a relation that meet `condition` (SQL), as the caller sees them.
drop function if exists tests.row_count(regclass);
create or replace function tests.row_count(relation regclass, condition text default 'true')
returns bigint
language plpgsql set search_path = ''
as $$
declare
  n bigint;
begin
  execute format('select count(*) from %s where %s', relation, condition) into n;
  return n;
end
$$;

-- The text of a query's plan, for asserting which indexes it uses.
create or replace function tests.explain(query text) returns text
language plpgsql set search_path = ''
as $$
declare
  line text;
  plan text := '';
begin
  for line in execute 'explain ' || query loop
    plan := plan || line || E'\n';
  end loop;
  return plan;
end
$$;

-- Deletes every backfill job, a validation's Scan among them, for a test that starts from
-- none: a table's job kept in sync.table_state (a heal an earlier end-to-end test left on
-- the stack) is forgotten first, as its foreign key would refuse the delete.
create or replace function tests.forget_backfill_jobs() returns void
language sql set search_path = ''
as $$
  update sync.table_state set backfill_job_id = null where backfill_job_id is not null;
  delete from sync.backfill_jobs;
$$;

-- Sets aside the validation runs under way (pg_cron's daily run, say, on a stack that ran
-- at 03:17 UTC), for a test that starts runs of its own: a table has one run at a time
-- (sync_checksums_one_active_run). The test's rollback restores them.
create or replace function tests.set_aside_validation_runs() returns void
language sql set search_path = ''
as $$
  update public.sync_checksums set status = 'done' where status in ('queued', 'running');
$$;

-- A visitor's observation as a change of sync.merge_changes: an upsert of `pages` page
-- views at range key `ts` (epoch seconds), or its delete.
create or replace function tests.visitor_change(op text, id text, ts numeric, seq text,
  pages int default 1, source text default 'stream', at text default '2026-02-06T10:00:00Z')
returns jsonb language sql set search_path = ''
as $$
  select jsonb_build_object('op', op, 'seq', seq, 'changed_at', at, 'source', source,
    'range_key', ts, 'rank', 0,
    'row', case when op = 'upsert'
                then jsonb_build_object('visitor_id', id, 'page_views', pages,
                       'last_visit_at', to_timestamp(ts::float8), 'session_data', '{}'::jsonb)
                else jsonb_build_object('visitor_id', id) end)
$$;

-- A firespring_segments row's change as a change of sync.merge_changes: an upsert of the
-- row named `name`, or its delete (the key alone).
create or replace function tests.segment_change(op text, id text, name text, seq text, at text,
  source text default 'stream')
returns jsonb language sql set search_path = ''
as $$
  select jsonb_build_object('op', op, 'seq', seq, 'changed_at', at, 'source', source,
    'row', case when op = 'upsert'
                then jsonb_build_object('segment_id', id, 'segment_name', name, 'member_count', 1,
                                       'segment_criteria', '{}'::jsonb)
                else jsonb_build_object('segment_id', id) end)
$$;

-- Merges `changes` into `target` through the one merge; what it did, as text.
create or replace function tests.merge(target text, variadic changes jsonb[]) returns text
language sql set search_path = ''
as $$
  select format('applied=%s upserted=%s deleted=%s', applied, upserted, deleted)
  from sync.merge_changes(target, to_jsonb(changes))
$$;

grant execute on all functions in schema tests to anon, authenticated, service_role;
-- Except making users: it writes auth.users as its owner, so a session as anon or
-- authenticated could make itself an admin with it (these helpers are committed to the
-- local database, never pushed).
revoke execute on function tests.create_supabase_user(text, jsonb, jsonb)
  from public, anon, authenticated;

select has_function('tests', 'authenticate_as', array['text'], 'the test helpers are installed');
select ok(
  not has_function_privilege('authenticated', 'tests.create_supabase_user(text, jsonb, jsonb)', 'execute')
    and not has_function_privilege('anon', 'tests.create_supabase_user(text, jsonb, jsonb)', 'execute'),
  'no API role may make itself a user of its choosing');
-- A request's timeouts are the hosted roles', as PostgREST sets them; gone once cleared.
select tests.authenticate_as_anon();
select is(current_setting('statement_timeout') || ' ' || current_setting('lock_timeout'), '3s 8s',
  'an anon request: 3 s a statement, 8 s for a lock');
select tests.authenticate_as_service_role();
select is(current_setting('statement_timeout') || ' ' || current_setting('lock_timeout'), '8s 8s',
  'a service_role request: the authenticator''s 8 s');
select tests.clear_authentication();
select is((select setting from pg_catalog.pg_settings where name = 'statement_timeout'),
  (select reset_val from pg_catalog.pg_settings where name = 'statement_timeout'),
  'cleared: the session''s own statement timeout again');
select * from finish();
commit;
