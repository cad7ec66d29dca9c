-- The roles and grants a hosted Supabase project has before any migration runs.
-- Local stand-in only: this file is applied by `npm run stack:up` as the cluster's
-- superuser, supabase_admin (initdb's user), never pushed. Mirrors supabase/postgres
-- (migrations/db/init-scripts, and migrations/10000000000000_demote-postgres.sql)
-- closely enough that RLS, grants and the advisors behave as on a hosted project.

do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    -- PostgREST logs in as authenticator and switches to one of the three API roles.
    create role authenticator login noinherit password 'postgres';
  end if;
  if not exists (select from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin nologin noinherit createrole;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

-- The project's role: not a superuser. Hosted, "Superuser access is not given"
-- (https://supabase.com/docs/guides/database/postgres/roles-superuser); supabase/postgres
-- demotes it to exactly these attributes (demote-postgres.sql), and a hosted project's
-- roles dump grants it these memberships (pg_create_subscription too, from Postgres 16).
-- It owns the `postgres` database, which is how it creates schemas and, through
-- pg_database_owner, tables in `public`, where it holds only USAGE by grant.
do $$
begin
  if not exists (select from pg_roles where rolname = 'postgres') then
    create role postgres;
  end if;
end
$$;
alter role postgres with nosuperuser createdb createrole login replication bypassrls
  password 'postgres';
alter role postgres set search_path = "$user", public, extensions;
alter database postgres owner to postgres;
grant anon, authenticated, service_role, authenticator to postgres with admin option;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres with admin option;
-- supabase/postgres 20251105172723_grant_pg_reload_conf_to_postgres.sql
grant execute on function pg_catalog.pg_reload_conf() to postgres;

-- Statement timeouts as hosted (https://supabase.com/docs/guides/database/postgres/timeouts,
-- "Role level"): anon 3s, authenticated 8s, service_role none of its own (the
-- authenticator's 8s applies), postgres none of its own: the server-wide 2min of
-- local-stack/supabase/postgres.ts caps it, as the hosted global default does.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
-- supabase/postgres 20231130133139_set_lock_timeout_to_authenticator_role.sql
alter role authenticator set lock_timeout = '8s';

-- Hosted projects grant everything in public to the API roles by default and rely on
-- RLS; our migrations narrow that down table by table. (supabase/postgres's init scripts
-- run as postgres, so their default privileges are postgres's: said here explicitly.)
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;
