-- The `extensions` schema and the extensions a hosted project has enabled from the start.
-- Local stand-in only (see 00-roles.sql).

create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
alter default privileges in schema extensions grant all on functions to postgres, anon, authenticated, service_role;

create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
-- Test tooling: hosted projects offer both; our pgTAP suite and `npm test` use them.
create extension if not exists pgtap with schema extensions;
create extension if not exists plpgsql_check with schema extensions;

-- Vault is enabled on every hosted project (our emulation: sql/extensions/supabase_vault*).
create extension if not exists supabase_vault;
