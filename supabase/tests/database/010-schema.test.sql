-- The target side's shape: the ten tables, their keys and constraints, the ordering
-- guard's columns, RLS switched on and forced, the policies, and the private schemas.
set client_min_messages = warning;
begin;
select plan(87);

select tables_are('public', array[
  'firespring_actions', 'firespring_visitors', 'firespring_extraction_jobs',
  'firespring_traffic_sources', 'firespring_segments', 'firespring_searches',
  'firespring_network_state', 'mmp_toledo_leads', 'toledo_dashboard', 'sync_checksums'
], 'public has exactly the ten tables');
select views_are('public', array['firespring_visitors_detailed'], 'public has exactly one view');

-- Keys.
select col_is_pk('public', 'firespring_actions', 'action_id', 'actions are keyed by action_id');
select col_is_pk('public', 'firespring_visitors', 'visitor_id', 'visitors are keyed by visitor_id');
select col_is_pk('public', 'firespring_extraction_jobs', 'job_id', 'jobs are keyed by job_id');
select col_is_pk('public', 'firespring_traffic_sources', 'source_id', 'traffic sources are keyed by source_id');
select col_is_pk('public', 'firespring_segments', 'segment_id', 'segments are keyed by segment_id');
select col_is_pk('public', 'firespring_searches', 'search_id', 'searches are keyed by search_id');
select col_is_pk('public', 'firespring_network_state', 'state_key', 'network state is keyed by state_key');
select col_is_pk('public', 'mmp_toledo_leads', 'lead_id', 'leads are keyed by lead_id');
select col_is_pk('public', 'toledo_dashboard', array['pk', 'sk'], 'dashboard rows are keyed by (pk, sk)');
select col_is_pk('public', 'sync_checksums', 'id', 'checksum runs have an id');

-- Types that keep values exact.
select col_type_is('public', 'firespring_visitors', 'page_views', 'numeric', 'page_views is numeric');
select col_type_is('public', 'firespring_visitors', 'last_visit_at', 'timestamp with time zone', 'last_visit_at is a timestamptz');
select col_type_is('public', 'firespring_visitors', 'session_data', 'jsonb', 'session_data is jsonb');
select col_type_is('public', 'firespring_visitors', 'sync_range_key', 'numeric', 'the held observation''s range key is exact');
select col_type_is('public', 'firespring_actions', 'occurred_at', 'timestamp with time zone', 'occurred_at is a timestamptz');
select col_type_is('public', 'firespring_actions', 'action_data', 'jsonb', 'action_data is jsonb');
select col_type_is('public', 'firespring_extraction_jobs', 'records_extracted', 'numeric', 'records_extracted is numeric');
select col_type_is('public', 'firespring_extraction_jobs', 'sync_range_key', 'numeric', 'the held state''s updated_at is exact');
select col_type_is('public', 'firespring_traffic_sources', 'visitor_count', 'numeric', 'visitor_count is numeric');
select col_type_is('public', 'firespring_segments', 'member_count', 'numeric', 'member_count is numeric');
select col_type_is('public', 'firespring_segments', 'segment_criteria', 'jsonb', 'segment_criteria is jsonb');
select col_type_is('public', 'firespring_searches', 'searched_at', 'timestamp with time zone', 'searched_at is a timestamptz');
select col_type_is('public', 'firespring_network_state', 'state_value', 'jsonb', 'state_value is jsonb');
select col_type_is('public', 'mmp_toledo_leads', 'updated_at', 'timestamp with time zone', 'lead updated_at is a timestamptz');
select col_type_is('public', 'toledo_dashboard', 'metrics', 'jsonb', 'metrics is jsonb');

-- The ordering guard's columns, on every mirror table.
select results_eq(
  $$select t.target_table::text, count(c.column_name)::int
    from sync.source_tables t
    left join information_schema.columns c
      on c.table_schema = 'public' and c.table_name = t.target_table
     and (c.column_name, c.data_type) in (
       ('sync_sequence', 'numeric'), ('sync_changed_at', 'timestamp with time zone'),
       ('sync_source', 'text'), ('synced_at', 'timestamp with time zone'))
    group by t.target_table order by 1$$,
  $$select target_table::text, 4 from sync.source_tables order by 1$$,
  'every mirror table has sync_sequence, sync_changed_at, sync_source and synced_at'
);
select is(
  (select numeric_precision::int from information_schema.columns
   where table_name = 'firespring_actions' and column_name = 'sync_sequence'),
  40,
  'sync_sequence holds the 40 digits of a stream SequenceNumber'
);
select col_not_null('public', 'firespring_actions', 'sync_changed_at', 'every row knows when its change happened');
select col_is_null('public', 'firespring_actions', 'sync_sequence', 'a backfilled row has no stream position');
select col_has_check('public', 'firespring_actions', 'sync_source', 'sync_source is one of the known writers');
select throws_ok(
  $$insert into public.firespring_actions (action_id, sync_changed_at, sync_source)
    values ('bad-source', now(), 'carrier pigeon')$$,
  '23514', null, 'an unknown sync_source is refused'
);
select throws_ok(
  $$insert into public.firespring_actions (action_id, sync_changed_at, sync_source)
    values (null, now(), 'direct')$$,
  '23502', null, 'a row without its key is refused'
);
select throws_ok(
  $$insert into public.toledo_dashboard (pk, sk, sync_changed_at, sync_source)
    values ('p', 's', now(), 'direct'), ('p', 's', now(), 'direct')$$,
  '23505', null, 'pk and sk are unique together'
);
select hasnt_column('public', 'firespring_extraction_jobs', 'sync_state_rank',
  'the state rank lives in the registry and the observations, not in the table');

-- Comments that Studio shows.
select is(
  (select count(*)::int from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind in ('r', 'v') and obj_description(c.oid) is null),
  0,
  'every public table and view has a comment'
);

-- Row Level Security: on and forced everywhere.
select is(
  (select array_agg(c.relname::text order by c.relname) from pg_class c
   join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind = 'r' and not (c.relrowsecurity and c.relforcerowsecurity)),
  null,
  'RLS is enabled and forced on every public table'
);
select ok(
  (select relrowsecurity and relforcerowsecurity from pg_class
   where oid = 'analytics.visitor_sessions'::regclass),
  'RLS is enabled and forced on the sessions behind the view'
);
select policies_are('public', 'firespring_actions', array['admins can read', 'admins can update']);
select policies_are('public', 'firespring_visitors', array['admins can read', 'admins can update']);
select policies_are('public', 'firespring_extraction_jobs', array['admins can read', 'admins can update']);
select policies_are('public', 'firespring_traffic_sources', array['admins can read', 'admins can update']);
select policies_are('public', 'firespring_segments', array['admins can read', 'admins can update']);
select policies_are('public', 'firespring_searches', array['admins can read', 'admins can update']);
select policies_are('public', 'firespring_network_state', array['admins can read', 'admins can update']);
select policies_are('public', 'mmp_toledo_leads', array['admins can read', 'admins can update']);
select policies_are('public', 'toledo_dashboard', array['admins can read', 'admins can update']);
select policies_are('public', 'sync_checksums', array['admins can read'], 'admins read the validator''s record and do not edit it');
select policies_are('analytics', 'visitor_sessions', array['admins can read']);
select is(
  (select count(*)::int from pg_policies where schemaname in ('public', 'analytics')
   and (qual is distinct from $q$( SELECT ((((( SELECT auth.jwt() AS jwt) -> 'app_metadata'::text) ->> 'role'::text) = ANY (ARRAY['admin'::text, 'superuser'::text])) IS TRUE))$q$
        or (with_check is not null and with_check is distinct from qual))),
  0,
  'every policy (the flattened sessions'' too) is the one role test: read once per statement, from app_metadata (never user_metadata), a yes/no the planner takes as even odds (20261128004900)'
);
select is(
  (select count(*)::int from pg_policies where schemaname = 'public' and roles <> '{authenticated}'),
  0,
  'the policies apply to authenticated only (service_role bypasses RLS, anon has none)'
);

-- Grants: anon has nothing anywhere in public.
select is(
  (select count(*)::int from information_schema.role_table_grants
   where grantee = 'anon' and table_schema = 'public'),
  0,
  'anon holds no privilege on any public table or view'
);
select is(
  (select count(*)::int from information_schema.role_column_grants
   where grantee = 'anon' and table_schema = 'public'),
  0,
  'anon holds no column privilege in public'
);
select is(
  (select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname = 'public' and has_function_privilege('anon', p.oid, 'execute')),
  0,
  'anon can execute no function in the exposed schema'
);
-- Nor may a signed-up user, in any of the project's schemas: a function created later in
-- public would be executable by every role through hosted Supabase's default privileges,
-- and one of sync's is closed only by its schema while no grant opens it.
select is(
  (select string_agg(format('%s.%s(%s)', n.nspname, p.proname,
                            pg_get_function_identity_arguments(p.oid)), ', ')
   from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('public', 'sync', 'analytics')
     and (has_function_privilege('anon', p.oid, 'execute')
          or has_function_privilege('authenticated', p.oid, 'execute'))),
  null,
  'no function of public, sync or analytics is executable by anon or authenticated'
);
-- What a later migration could open by mistake: hosted Supabase's default privileges
-- give the API roles every right on a new object in public, so a plain view (run as its
-- owner, RLS bypassed) or a sequence would be theirs.
select is(
  (select string_agg(c.relname, ', ') from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind in ('v', 'm')
     and not coalesce('security_invoker=true' = any (c.reloptions), false)),
  null,
  'every view in the exposed schema runs with its caller''s rights (security_invoker)'
);
select is(
  (select string_agg(c.relname, ', ') from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind = 'S'
     and (has_sequence_privilege('anon', c.oid, 'usage')
          or has_sequence_privilege('authenticated', c.oid, 'usage'))),
  null,
  'no API role may use a sequence of the exposed schema'
);
-- A security definer function runs with its owner's rights: one without its own
-- search_path would resolve names through its caller's, who could put a table or an
-- operator of theirs first.
select is(
  (select string_agg(p.oid::regprocedure::text, ', ') from pg_proc p
   where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'sync'::regnamespace,
                                            'analytics'::regnamespace)
     and not exists (select from unnest(p.proconfig) c where c like 'search_path=%')),
  null,
  'every security definer function of public, sync and analytics sets its search_path'
);
select is(
  (select string_agg(r || ' on ' || n, ', ')
   from unnest(array['anon', 'authenticated']) r, unnest(array['public', 'sync', 'analytics']) n
   where has_schema_privilege(r, n, 'create')),
  null,
  'no API role may create objects in public, sync or analytics'
);
select table_privs_are('public', 'firespring_actions', 'authenticated', array['SELECT'],
  'authenticated may select (RLS decides which rows), nothing more on the whole table');
select ok(
  has_column_privilege('authenticated', 'public.firespring_actions', 'action_type', 'update'),
  'authenticated may update data columns (RLS decides which rows)'
);
select ok(
  not has_column_privilege('authenticated', 'public.firespring_actions', 'action_id', 'update'),
  'nobody but the service may change a key'
);
select ok(
  not has_column_privilege('authenticated', 'public.firespring_actions', 'sync_sequence', 'update'),
  'nobody but the service may change the ordering guard''s position'
);
select ok(
  not has_column_privilege('authenticated', 'public.toledo_dashboard', 'sk', 'update'),
  'the dashboard''s range key cannot be changed either'
);
-- The same on every mirror table, and the validator's record.
select is(
  (select string_agg(t.name, ', ' order by t.name)
   from (select target_table as name from sync.source_tables union all select 'sync_checksums') t
   where (select array_agg(g.privilege_type::text order by g.privilege_type)
          from information_schema.role_table_grants g
          where g.table_schema = 'public' and g.table_name = t.name and g.grantee = 'authenticated')
         is distinct from array['SELECT']),
  null,
  'on every mirror table, and the validator''s record, authenticated holds SELECT alone on the whole table'
);
select is(
  (select string_agg(format('%s.%s', s.target_table, c), ', ' order by 1)
   from sync.source_tables s cross join lateral unnest(sync.merge_columns(s.target_table)) c
   where c <> all (s.key_columns)
     and not has_column_privilege('authenticated', format('public.%I', s.target_table), c, 'update')),
  null,
  'on every mirror table authenticated may update each data column (RLS decides which rows)'
);
select table_privs_are('public', 'firespring_actions', 'service_role',
  array['SELECT', 'INSERT', 'UPDATE', 'DELETE'], 'service_role may read and write');

-- The view.
select ok(
  (select 'security_invoker=true' = any (reloptions) from pg_class
   where oid = 'public.firespring_visitors_detailed'::regclass),
  'firespring_visitors_detailed runs with the caller''s rights (security_invoker)'
);
select columns_are('public', 'firespring_visitors_detailed', array[
  'visitor_id', 'session_id', 'session_index', 'session_started_at', 'last_visit_at',
  'ip_address', 'geolocation', 'city', 'state', 'country', 'country_code', 'latitude',
  'longitude', 'browser', 'browser_version', 'os', 'device_type', 'screen_resolution',
  'language', 'referrer_url', 'referrer_type', 'referrer_domain', 'referrer_search',
  'landing_page', 'page_views', 'session_actions', 'session_duration_seconds', 'hostname',
  'organization'
], 'the view has every column of the contract');

-- The private schemas.
select ok(
  not has_schema_privilege('anon', 'sync', 'usage')
  and not has_schema_privilege('authenticated', 'sync', 'usage')
  and not has_schema_privilege('service_role', 'sync', 'usage'),
  'the sync schema is closed to every API role'
);
select tables_are('sync', array[
  'source_tables', 'tombstones', 'observations', 'dead_letters', 'backfill_jobs',
  'backfill_segments', 'table_state', 'settings', 'checksum_items', 'checksum_seen',
  'checksum_divergent', 'checksum_unmappable', 'webhook_deliveries',
  'stream_batches_applied', 'stream_checks', 'backfill_read_ledger', 'backfill_export_files',
  'purge_cursors', 'superseded_purge_turns', 'collapsed_rereads', 'reread_claims', 'stream_check_leases',
  'staged_changes', 'write_backs', 'export_requests', 'checksum_run_marks', 'function_calls'
], 'sync holds the machinery');
select views_are('sync', array['status', 'backfill_progress'], 'sync has the status views');
select is((select count(*)::int from sync.source_tables), 9, 'nine source tables are registered');
select is(
  (select count(*)::int from sync.source_tables where region = 'us-east-1'), 7,
  'seven of them are in us-east-1'
);
select results_eq(
  $$select target_table::text from sync.source_tables where collapsed order by 1$$,
  $$values ('firespring_extraction_jobs'), ('firespring_visitors')$$,
  'visitors and extraction jobs collapse many items into one row'
);
-- The validator's slices walk a table in its key columns' order through the primary key
-- (sync.key_columns_sql): the registry lists them in the primary key's order.
select is_empty(
  $$select s.target_table from sync.source_tables s
    join pg_catalog.pg_index i
      on i.indrelid = format('public.%I', s.target_table)::regclass and i.indisprimary
    where s.key_columns::name[] is distinct from array(
      select a.attname from unnest(i.indkey) with ordinality k(attnum, n)
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      order by k.n)$$,
  'each table''s key columns are its primary key''s, in its order'
);
-- A key is looked up and hashed by its JSON text (sync.checksum_seen, the dead letters'
-- and tombstones' keys): a numeric key column would give one number two texts (1 and
-- 1.0). Every key column is text; a numeric one needs its JSON normalized first.
select is_empty(
  $$select s.target_table, k from sync.source_tables s cross join lateral unnest(s.key_columns) k
    join pg_catalog.pg_attribute a
      on a.attrelid = format('public.%I', s.target_table)::regclass and a.attname = k
    where a.atttypid <> 'text'::regtype$$,
  'every key column is text'
);
select col_is_pk('sync', 'tombstones', array['target_table', 'row_key'], 'one tombstone per deleted key');
select col_type_is('sync', 'tombstones', 'sync_sequence', 'numeric(40,0)', 'tombstones keep the delete''s position');
select col_is_pk('sync', 'backfill_segments', array['job_id', 'segment'], 'one checkpoint per Scan segment');
select has_column('sync', 'backfill_segments', 'exclusive_start_key', 'segments keep the Scan''s checkpoint');
select has_column('sync', 'backfill_segments', 'lease_expires_at', 'segments are leased');
select has_column('sync', 'dead_letters', 'record', 'dead letters keep the record whole');
select has_column('sync', 'dead_letters', 'reason', 'dead letters say why');
select fk_ok('public', 'sync_checksums', 'target_table', 'sync', 'source_tables', 'target_table',
  'checksum runs name a registered table');
select ok(
  not has_schema_privilege('anon', 'analytics', 'usage'),
  'anon cannot reach the sessions behind the view'
);

select * from finish();
rollback;
