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
-- (start_backfill, status views) name tables, and a test keeps the two equal.
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
-- tombstones"). Tombstones older than the stream's 24 h retention may be purged.
create table sync.tombstones (
  target_table text not null references sync.source_tables (target_table),
  row_key jsonb not null,
  -- Position of the delete: stream sequence number (null when a repair deleted the row),
  -- the collapsed tables' range key of the deleted observation, and the change's time.
  sync_sequence numeric(40, 0),
  sync_range_key numeric,
  deleted_at timestamptz not null,
  recorded_at timestamptz not null default now(),
  primary key (target_table, row_key)
);
create index tombstones_recorded_at_idx on sync.tombstones (recorded_at);
comment on table sync.tombstones is 'Deleted keys with the position of the delete; purgeable after 24 h.';

-- Records that could not be mapped are kept whole, with the reason, for an admin to fix
-- and replay (sync-semantics.md, "Bad input").
create table sync.dead_letters (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  source_table text,
  target_table text,
  event_id text,
  record jsonb not null,
  reason text not null,
  replayed_at timestamptz,
  replay_result text
);
create index dead_letters_open_idx on sync.dead_letters (target_table) where replayed_at is null;
comment on table sync.dead_letters is 'Records that could not be mapped, whole, with the reason; replayable once fixed.';

-- Backfill jobs: one per requested copy of a source table, one segment per DynamoDB
-- parallel-Scan segment. A segment's checkpoint (the Scan's LastEvaluatedKey) commits
-- together with the rows of its page.
create table sync.backfill_jobs (
  id bigint generated always as identity primary key,
  source_table text not null references sync.source_tables (source_table),
  total_segments integer not null check (total_segments between 1 and 1000000),
  status text not null default 'pending'
    check (status in ('pending', 'running', 'done', 'failed', 'cancelled')),
  requested_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  error text
);
create index backfill_jobs_source_table_idx on sync.backfill_jobs (source_table, requested_at desc);
comment on table sync.backfill_jobs is 'Backfills of one DynamoDB table each.';

create table sync.backfill_segments (
  job_id bigint not null references sync.backfill_jobs (id) on delete cascade,
  segment integer not null check (segment >= 0),
  status text not null default 'pending' check (status in ('pending', 'running', 'done', 'failed')),
  exclusive_start_key jsonb,
  items_scanned bigint not null default 0,
  rows_written bigint not null default 0,
  pages integer not null default 0,
  lease_owner text,
  lease_expires_at timestamptz,
  started_at timestamptz,
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  error text,
  primary key (job_id, segment)
);
create index backfill_segments_claimable_idx on sync.backfill_segments (job_id)
  where status in ('pending', 'running');
comment on table sync.backfill_segments is 'Parallel-Scan segments of a backfill, with their checkpoint and lease.';
