-- The nine mirror tables (docs/source-tables.md), one per DynamoDB table.
--
-- Types: DynamoDB numbers that are counts or amounts become numeric, so that every one
-- of their up to 38 digits arrives; epoch numbers and ISO-8601 strings become
-- timestamptz; maps, lists and every attribute without a column of its own land in
-- the table's jsonb column, under their own names.
--
-- Each table also carries the columns of the ordering guard (docs/sync-semantics.md):
--   sync_sequence    the stream SequenceNumber of the change the row reflects (null for
--                    a row written by a backfill or a repair, which has no position);
--   sync_changed_at  that change's ApproximateCreationDateTime, or the time the
--                    backfill's Scan read the item;
--   sync_source      which path wrote it: stream, backfill, repair or direct;
--   synced_at        when it was written here.
-- The collapsed tables (visitors, extraction jobs) also keep sync_range_key, the range
-- key of the observation they hold, compared exactly as a number.

create table public.firespring_actions (
  action_id text primary key,
  action_type text,
  session_id text,
  occurred_at timestamptz,
  created_at timestamptz,
  action_data jsonb not null default '{}'::jsonb,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null check (sync_source in ('stream', 'backfill', 'repair', 'direct')),
  synced_at timestamptz not null default now()
);
comment on table public.firespring_actions is
  'Visitor actions, one row per item of DynamoDB firespring-backdoor-actions-dev (us-east-1).';
comment on column public.firespring_actions.action_type is 'action_type, or type on older items.';
comment on column public.firespring_actions.occurred_at is 'The item''s timestamp (epoch seconds).';
comment on column public.firespring_actions.action_data is
  'data, url, title and every other attribute without a column, under its own name.';

create table public.firespring_visitors (
  visitor_id text primary key,
  page_views numeric,
  last_visit_at timestamptz,
  created_at timestamptz,
  session_data jsonb not null default '{}'::jsonb,
  sync_range_key numeric not null,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null check (sync_source in ('stream', 'backfill', 'repair', 'direct')),
  synced_at timestamptz not null default now()
);
comment on table public.firespring_visitors is
  'Visitors, one row per session_id of DynamoDB firespring-backdoor-visitors-dev (us-east-1), holding the latest observation.';
comment on column public.firespring_visitors.visitor_id is 'The items'' session_id.';
comment on column public.firespring_visitors.page_views is 'pages_viewed of the latest observation.';
comment on column public.firespring_visitors.last_visit_at is 'timestamp of the latest observation.';
comment on column public.firespring_visitors.session_data is
  'Every other attribute of the latest observation under its own name, sessions (the list of visits) included.';
comment on column public.firespring_visitors.sync_range_key is
  'The exact timestamp (range key) of the observation this row holds; a smaller one never replaces it.';

create table public.firespring_extraction_jobs (
  job_id text primary key,
  status text,
  job_type text,
  started_at timestamptz,
  completed_at timestamptz,
  records_extracted numeric,
  error_message text,
  last_updated_at timestamptz,
  job_data jsonb not null default '{}'::jsonb,
  sync_range_key numeric not null,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null check (sync_source in ('stream', 'backfill', 'repair', 'direct')),
  synced_at timestamptz not null default now()
);
comment on table public.firespring_extraction_jobs is
  'Extraction jobs, one row per job_id of DynamoDB firespring-backdoor-extraction-jobs-dev (us-east-1), holding the final state.';
comment on column public.firespring_extraction_jobs.last_updated_at is 'updated_at (epoch ms) of the state this row holds.';
comment on column public.firespring_extraction_jobs.job_data is 'params and every other attribute without a column, under its own name.';
comment on column public.firespring_extraction_jobs.sync_range_key is 'The exact updated_at (range key, epoch ms) of the state this row holds.';

create table public.firespring_traffic_sources (
  source_id text primary key,
  source_name text,
  source_type text,
  visitor_count numeric,
  source_data jsonb not null default '{}'::jsonb,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null check (sync_source in ('stream', 'backfill', 'repair', 'direct')),
  synced_at timestamptz not null default now()
);
comment on table public.firespring_traffic_sources is
  'Traffic sources, one row per item of DynamoDB firespring-backdoor-traffic-sources-dev (us-east-1).';
comment on column public.firespring_traffic_sources.source_name is 'The item''s name.';
comment on column public.firespring_traffic_sources.visitor_count is 'The item''s visitors.';
comment on column public.firespring_traffic_sources.source_data is 'data, period and every other attribute without a column, under its own name.';

create table public.firespring_segments (
  segment_id text primary key,
  segment_name text,
  member_count numeric,
  segment_criteria jsonb not null default '{}'::jsonb,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null check (sync_source in ('stream', 'backfill', 'repair', 'direct')),
  synced_at timestamptz not null default now()
);
comment on table public.firespring_segments is
  'Segments, one row per item of DynamoDB firespring-backdoor-segments-dev (us-east-1).';
comment on column public.firespring_segments.segment_name is 'The item''s name.';
comment on column public.firespring_segments.member_count is 'The item''s value.';
comment on column public.firespring_segments.segment_criteria is 'raw and every other attribute without a column, under its own name.';

create table public.firespring_searches (
  search_id text primary key,
  query text,
  search_count numeric,
  engine text,
  searched_at timestamptz,
  search_data jsonb not null default '{}'::jsonb,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null check (sync_source in ('stream', 'backfill', 'repair', 'direct')),
  synced_at timestamptz not null default now()
);
comment on table public.firespring_searches is
  'Searches, one row per item of DynamoDB firespring-backdoor-searches-dev (us-east-1).';
comment on column public.firespring_searches.search_count is 'The item''s count.';
comment on column public.firespring_searches.searched_at is 'The item''s searched_at (epoch seconds).';
comment on column public.firespring_searches.search_data is 'Every attribute without a column, under its own name.';

create table public.firespring_network_state (
  state_key text primary key,
  state_value jsonb,
  updated_at timestamptz,
  state_data jsonb not null default '{}'::jsonb,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null check (sync_source in ('stream', 'backfill', 'repair', 'direct')),
  synced_at timestamptz not null default now()
);
comment on table public.firespring_network_state is
  'Network state, one row per item of DynamoDB firespring-backdoor-network-state-dev (us-east-1).';
comment on column public.firespring_network_state.state_value is 'The item''s value (a map).';
comment on column public.firespring_network_state.updated_at is 'The item''s updated_at (epoch seconds).';
comment on column public.firespring_network_state.state_data is 'Every attribute without a column, under its own name.';

create table public.mmp_toledo_leads (
  lead_id text primary key,
  name text,
  email text,
  phone text,
  company text,
  message text,
  source text,
  status text,
  created_at timestamptz,
  updated_at timestamptz,
  lead_data jsonb not null default '{}'::jsonb,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null check (sync_source in ('stream', 'backfill', 'repair', 'direct')),
  synced_at timestamptz not null default now()
);
comment on table public.mmp_toledo_leads is
  'Leads, one row per live item of the Amplify table Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE (us-east-2); an item with _deleted = true has no row.';
comment on column public.mmp_toledo_leads.lead_id is 'The item''s id.';
comment on column public.mmp_toledo_leads.created_at is 'createdAt.';
comment on column public.mmp_toledo_leads.updated_at is 'updatedAt.';
comment on column public.mmp_toledo_leads.lead_data is
  '__typename, _version, _lastChangedAt and every other attribute without a column, under its own name.';

create table public.toledo_dashboard (
  pk text not null,
  sk text not null,
  metrics jsonb,
  updated_at timestamptz,
  dashboard_data jsonb not null default '{}'::jsonb,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null check (sync_source in ('stream', 'backfill', 'repair', 'direct')),
  synced_at timestamptz not null default now(),
  primary key (pk, sk)
);
comment on table public.toledo_dashboard is
  'Dashboard data, one row per item of DynamoDB toledo-consulting-dashboard-data (us-east-2).';
comment on column public.toledo_dashboard.dashboard_data is 'Every attribute without a column, under its own name.';

-- The ordering guard's columns mean the same in every table.
do $$
declare
  t text;
begin
  for t in select target_table from sync.source_tables loop
    execute format($c$
      comment on column public.%1$I.sync_sequence is
        'Stream SequenceNumber of the change this row reflects; null when a backfill or repair wrote it.';
      comment on column public.%1$I.sync_changed_at is
        'ApproximateCreationDateTime of that change, or when the backfill''s Scan read the item.';
      comment on column public.%1$I.sync_source is 'What wrote the row: stream, backfill, repair or direct.';
      comment on column public.%1$I.synced_at is 'When the row was written here.';
    $c$, t);
  end loop;
end
$$;
