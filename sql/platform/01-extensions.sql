-- The `extensions` schema and the extensions a hosted project has enabled from the start.
-- Local stand-in only (see 00-roles.sql).

-- Applied as supabase_admin (see 00-roles.sql). The schema is postgres's, as a hosted
-- project's roles and schema dump shows it.
create schema if not exists extensions;
alter schema extensions owner to postgres;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema extensions grant all on functions to postgres, anon, authenticated, service_role;

create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
-- Test tooling: hosted projects offer both; our pgTAP suite and `npm test` use them.
create extension if not exists pgtap with schema extensions;
create extension if not exists plpgsql_check with schema extensions;

-- Vault is enabled on every hosted project (our emulation: sql/extensions/supabase_vault*).
create extension if not exists supabase_vault;

-- Extensions the project enables itself (pg_cron, pg_net: 20261128000000_extensions.sql)
-- need a superuser to create, and `postgres` is none. Hosted, supautils creates the ones
-- in `supautils.privileged_extensions` on postgres's behalf as its superuser
-- (https://github.com/supabase/supautils, "Privileged Extensions": "extension creation
-- will be delegated to the configured supautils.privileged_extensions_superuser"), then
-- runs the extension's after-create script. supautils is not packaged for Debian, so the
-- stand-in does the same in two steps: the two control files say `trusted = true` (the
-- script then runs as the bootstrap superuser, supabase_admin:
-- local-stack/supabase/postgres_migrations.ts), and this event trigger gives the
-- extension to supabase_admin (as supautils' creation does: pg_cron writes cron.job as its
-- extension's owner) and grants what supabase/postgres's pg_cron after-create script
-- grants (ansible/files/postgresql_extension_custom_scripts/pg_cron/after-create.sql):
-- cron's functions and tables, but of cron.job only SELECT, so that jobs change only
-- through cron.schedule, cron.alter_job and cron.unschedule. Its sequences are not
-- granted: the script sets their default privileges after it creates them.
create or replace function extensions.grant_privileged_extension_access() returns event_trigger
language plpgsql security definer set search_path = pg_catalog
as $$
declare
  created text;
begin
  for created in
    select e.extname
    from pg_event_trigger_ddl_commands() c
    join pg_extension e on e.oid = c.objid
    where c.classid = 'pg_extension'::regclass and e.extname in ('pg_cron', 'pg_net')
  loop
    update pg_extension set extowner = 'supabase_admin'::regrole where extname = created;
    if created = 'pg_cron' then
      grant usage on schema cron to postgres with grant option;
      grant all on all functions in schema cron to postgres with grant option;
      alter default privileges for user supabase_admin in schema cron
        grant all on sequences to postgres with grant option;
      alter default privileges for user supabase_admin in schema cron
        grant all on tables to postgres with grant option;
      alter default privileges for user supabase_admin in schema cron
        grant all on functions to postgres with grant option;
      grant all privileges on all tables in schema cron to postgres with grant option;
      revoke all on table cron.job from postgres;
      grant select on table cron.job to postgres with grant option;
      -- supabase/postgres 20260730000000_revoke_trigger_on_cron_tables_from_postgres.sql
      revoke trigger on cron.job_run_details from postgres;
    end if;
  end loop;
end
$$;
revoke all on function extensions.grant_privileged_extension_access() from public;
drop event trigger if exists issue_privileged_extension_access;
create event trigger issue_privileged_extension_access on ddl_command_end
  when tag in ('CREATE EXTENSION')
  execute function extensions.grant_privileged_extension_access();

-- pg_cron stores where each job connects (`cron.host`, the port) when it is scheduled. A
-- job scheduled on a cluster of another setting (a checkout moved, another
-- STACK_PORT_OFFSET, a cluster from before jobs connected through the socket) would fail
-- every run with no password to give: each is pointed at this server's socket again.
do $$
begin
  if exists (select from pg_extension where extname = 'pg_cron') then
    update cron.job
    set nodename = current_setting('cron.host'), nodeport = current_setting('port')::integer
    where (nodename, nodeport)
      is distinct from (current_setting('cron.host'), current_setting('port')::integer);
  end if;
end
$$;
