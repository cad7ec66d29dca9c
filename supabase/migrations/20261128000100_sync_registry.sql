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
-- a late, older stream record) cannot bring it back (sync-semantics.md, "Deletes leave

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
