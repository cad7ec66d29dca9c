-- The private `sync` schema: the machinery of the sync (which source feeds which table,
-- tombstones, dead letters, backfill jobs). It is not exposed through the API and the
-- API roles get no privilege on it at all; the Edge Functions reach it as the database
-- owner through SUPABASE_DB_URL.
create schema if not exists sync;
revoke all on schema sync from public, anon, authenticated, service_role;
comment on schema sync is
  'Sync machinery (DynamoDB -> Postgres): registry, tombstones, dead letters, backfills. Not exposed to the API.';

-- Which DynamoDB table feeds which target table. The TypeScript registry
-- (functions-shared/table_registry.ts) holds the full mapping; this copy lets SQL
-- (start_backfill, status views) name tables; tests/registry_database_test.ts keeps the two
-- equal, row by row, and checks every mirror table's columns against the registry.
create table sync.source_tables (
  source_table text primary key,
  region text not null,
  target_table text not null unique,
  key_columns text[] not null,
  collapsed boolean not null default false
);
comment on table sync.source_tables is 'The nine DynamoDB source tables and the public table each one lands in.';

insert into sync.source_tables (source_table, region, target_table, key_columns, collapsed) values
  ('firespring-backdoor-actions-dev', 'us-east-1', 'firespring_actions', '{action_id}', false),
  ('firespring-backdoor-visitors-dev', 'us-east-1', 'firespring_visitors', '{visitor_id}', true),
  ('firespring-backdoor-extraction-jobs-dev', 'us-east-1', 'firespring_extraction_jobs', '{job_id}', true),
  ('firespring-backdoor-traffic-sources-dev', 'us-east-1', 'firespring_traffic_sources', '{source_id}', false),
  ('firespring-backdoor-segments-dev', 'us-east-1', 'firespring_segments', '{segment_id}', false),
  ('firespring-backdoor-searches-dev', 'us-east-1', 'firespring_searches', '{search_id}', false),
  ('firespring-backdoor-network-state-dev', 'us-east-1', 'firespring_network_state', '{state_key}', false),
  ('Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE', 'us-east-2', 'mmp_toledo_leads', '{lead_id}', false),
  ('toledo-consulting-dashboard-data', 'us-east-2', 'toledo_dashboard', '{pk,sk}', false);

-- A deleted row leaves a tombstone, so that a backfill page read before the delete (or
-- a late, older stream record) cannot bring it back (docs/sync-semantics.md, "Deletes leave

-- Settings of the sync machinery, each with its meaning. The merge reads
-- stream_clock_granularity: AWS rounds a stream record's ApproximateCreationDateTime
-- down to the second; DynamoDB Local rounds it down to the minute, so the local stack
-- sets 60 seconds. With a granularity that is too small, a backfill page read shortly
-- before a delete could resurrect the row.
create table sync.settings (
  key text primary key,
  value text not null,
  description text not null
);
comment on table sync.settings is 'Settings of the sync machinery.';
insert into sync.settings (key, value, description) values (
  'stream_clock_granularity', '1 second',
  'How coarse ApproximateCreationDateTime is: AWS rounds down to the second, DynamoDB Local to the minute.'
);

-- How SQL (pg_cron's jobs) calls an Edge Function: through pg_net, with the project URL
-- and a service key read from Vault, as Supabase documents scheduling Edge Functions.
-- Create the secrets once:
--   select vault.create_secret('https://<project-ref>.supabase.co', 'project_url');
--   select vault.create_secret('<sb_secret_... key>', 'service_role_key');
--   select vault.create_secret('us-east-1', 'functions_region');   -- optional
-- With functions_region (the database's region), the call runs there: Edge Functions
-- otherwise run in the region nearest the caller, and every batch's round trips to the
-- database would cross regions (docs: functions/regional-invocation; forceFunctionRegion
-- is the query parameter for callers that cannot set the x-region header).
-- Returns the pg_net request id, or null (with a warning naming what is missing).
create function sync.call_edge_function(p_name text, p_body jsonb, p_timeout_ms integer)
returns bigint
language plpgsql set search_path = ''
as $$
declare
  project_url text;
  service_key text;
  region text;
begin
  select decrypted_secret into project_url from vault.decrypted_secrets where name = 'project_url';
  select decrypted_secret into service_key from vault.decrypted_secrets where name = 'service_role_key';
  select decrypted_secret into region from vault.decrypted_secrets where name = 'functions_region';
  if project_url is null or service_key is null then
    raise warning 'sync.call_edge_function(%): Vault has no project_url or service_role_key secret, so the function cannot be called (see README, "Deploying")',
      p_name;
    return null;
  end if;
  return net.http_post(
    url := rtrim(project_url, '/') || '/functions/v1/' || p_name
           || coalesce('?forceFunctionRegion=' || nullif(region, ''), ''),
    headers := jsonb_build_object('Content-Type', 'application/json',
                                  'Authorization', 'Bearer ' || service_key)
               || case when nullif(region, '') is null then '{}'::jsonb
                       else jsonb_build_object('x-region', region) end,
    body := p_body,
    timeout_milliseconds := p_timeout_ms);
end
$$;
comment on function sync.call_edge_function(text, jsonb, integer) is
  'Calls an Edge Function through pg_net with the project URL, service key and optional region from Vault.';
revoke all on function sync.call_edge_function(text, jsonb, integer) from public;
