-- Backfills in Supabase: SQL is the control panel, the import-worker Edge Function does
-- the work, pg_cron is the heartbeat (docs/interfaces.md, "import-worker" and "SQL").
--
--   select sync.start_backfill('firespring-backdoor-actions-dev');   -- 8 Scan segments
--   select * from sync.backfill_progress;
--
-- The worker claims a segment with a lease, scans it page by page, and commits each
-- page's rows together with the segment's checkpoint (the Scan's LastEvaluatedKey); a
-- segment whose lease lapsed (worker killed) is taken over from its last checkpoint.

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
  error text,
  page_size integer not null default 1000 check (page_size between 1 and 10000),
  lease_seconds integer not null default 60 check (lease_seconds between 5 and 3600),
  rows_removed bigint
);
create index backfill_jobs_source_table_idx on sync.backfill_jobs (source_table, requested_at desc);
comment on table sync.backfill_jobs is 'Backfills of one DynamoDB table each.';
comment on column sync.backfill_jobs.page_size is 'Items per Scan page (the Scan''s Limit).';
comment on column sync.backfill_jobs.lease_seconds is
  'How long a worker holds a segment without checkpointing before another may take it over.';
comment on column sync.backfill_jobs.rows_removed is
  'Rows (or observations) the finished backfill removed because its Scan did not see them.';

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

-- Tables whose stream lost records: stale until a backfill queued for them finishes.
create table sync.table_state (
  target_table text primary key references sync.source_tables (target_table),
  stale_since timestamptz,
  stale_reason text,
  backfill_job_id bigint references sync.backfill_jobs (id)
);
create index table_state_job_idx on sync.table_state (backfill_job_id);
comment on table sync.table_state is
  'Per target table: whether its stream lost records (stale) and the backfill queued to heal it.';

-- Wakes the import-worker (sync.call_edge_function: URL, key and region from Vault).
-- Returns the pg_net request id, or null when Vault lacks the secrets.
create function sync.wake_import_worker() returns bigint
language sql set search_path = ''
as $$
  select sync.call_edge_function('import-worker', '{}'::jsonb, 10000)
$$;

-- Whether a segment waits for a worker: never started, released, or its lease lapsed.
create function sync.backfill_work_pending() returns boolean
language sql stable set search_path = ''
as $$
  select exists (
    select from sync.backfill_segments s
    join sync.backfill_jobs j on j.id = s.job_id
    where j.status in ('pending', 'running')
      and (s.status = 'pending' or (s.status = 'running' and s.lease_expires_at < now())))
$$;

create function sync.start_backfill(
  source_table text,
  total_segments integer default 8,
  wake boolean default true
) returns bigint
language plpgsql set search_path = ''
as $$
declare
  job_id bigint;
begin
  if not exists (select from sync.source_tables s where s.source_table = start_backfill.source_table) then
    raise exception 'sync.start_backfill: % is not a registered DynamoDB table (known: %)',
      source_table, (select string_agg(s.source_table, ', ' order by s.source_table) from sync.source_tables s)
      using errcode = '22023';
  end if;
  insert into sync.backfill_jobs (source_table, total_segments)
  values (start_backfill.source_table, start_backfill.total_segments)
  returning id into job_id;
  insert into sync.backfill_segments (job_id, segment)
  select job_id, g from generate_series(0, total_segments - 1) g;
  if wake then
    perform sync.wake_import_worker();
  end if;
  return job_id;
end
$$;
comment on function sync.start_backfill(text, integer, boolean) is
  'Queues a backfill of one DynamoDB table (one segment per parallel-Scan segment) and wakes the import-worker; returns the job id.';

-- Gives one waiting segment to a worker, with a lease.
create function sync.claim_segment(p_worker text)
returns table (
  job_id bigint, segment integer, total_segments integer, source_table text, target_table text,
  region text, exclusive_start_key jsonb, page_size integer
)
language plpgsql set search_path = ''
as $$
begin
  return query
  with candidate as (
    select s.job_id, s.segment
    from sync.backfill_segments s
    join sync.backfill_jobs j on j.id = s.job_id
    where j.status in ('pending', 'running')
      and (s.status = 'pending' or (s.status = 'running' and s.lease_expires_at < now()))
    order by s.job_id, s.segment
    limit 1
    for update of s skip locked
  ),
  claimed as (
    update sync.backfill_segments s
    set status = 'running', lease_owner = p_worker,
        lease_expires_at = now() + make_interval(secs => j.lease_seconds),
        started_at = coalesce(s.started_at, now()), updated_at = now()
    from candidate c, sync.backfill_jobs j
    where s.job_id = c.job_id and s.segment = c.segment and j.id = c.job_id
    returning s.job_id, s.segment, s.exclusive_start_key
  ),
  started as (
    update sync.backfill_jobs j
    set status = 'running', started_at = coalesce(j.started_at, now())
    from claimed c where j.id = c.job_id
    returning j.id, j.total_segments, j.source_table, j.page_size
  )
  select c.job_id, c.segment, st.total_segments, st.source_table, t.target_table, t.region,
         c.exclusive_start_key, st.page_size
  from claimed c
  join started st on st.id = c.job_id
  join sync.source_tables t on t.source_table = st.source_table;
end
$$;

-- Records a page: call it in the transaction that wrote the page's rows, so that both
-- commit together. Fails (and so rolls the rows back) when the lease was lost.
create function sync.checkpoint_segment(
  p_job bigint, p_segment integer, p_worker text, p_next_key jsonb,
  p_items integer, p_rows integer, p_done boolean
) returns void
language plpgsql set search_path = ''
as $$
begin
  update sync.backfill_segments s
  set exclusive_start_key = p_next_key,
      items_scanned = s.items_scanned + p_items,
      rows_written = s.rows_written + p_rows,
      pages = s.pages + 1,
      status = case when p_done then 'done' else 'running' end,
      finished_at = case when p_done then now() end,
      lease_expires_at = case when p_done then null
                              else now() + make_interval(secs => j.lease_seconds) end,
      lease_owner = case when p_done then null else p_worker end,
      updated_at = now()
  from sync.backfill_jobs j
  where s.job_id = p_job and s.segment = p_segment and j.id = s.job_id
    and s.status = 'running' and s.lease_owner = p_worker;
  if not found then
    -- SY001, the project's own code for a lost lease (40001 would read as a
    -- serialization failure, which a caller may rightly retry as it is).
    raise exception 'backfill job % segment %: worker % no longer holds the lease; another worker took over',
      p_job, p_segment, p_worker using errcode = 'SY001';
  end if;
  if not p_done then
    return;
  end if;
  -- Segments finishing at once must not each miss the other: the job row's lock makes
  -- the last one see every other segment done.
  perform 1 from sync.backfill_jobs where id = p_job for update;
  if not exists (
    select from sync.backfill_segments where job_id = p_job and status <> 'done'
  ) then
    -- Every segment has been read: remove what the backfill did not see, then the
    -- table is whole again (the stale reason stays as a record of what happened).
    update sync.backfill_jobs
    set status = 'done', finished_at = now(), rows_removed = sync.sweep_unseen(p_job)
    where id = p_job;
    update sync.table_state set stale_since = null where backfill_job_id = p_job;
  end if;
end
$$;

-- A backfill ends equal (docs/sync-semantics.md, "A backfill ends equal"): once every
-- segment has been read, the rows (and, for the collapsed tables, the observations)
-- whose keys the Scan did not see and whose last change is older than the job's start
-- are removed, with tombstones, through the one merge. This is how a table whose
-- stream lost REMOVE records heals.
--
-- Which keys the Scan saw needs no list: every item a page read at time T >= start is
-- either written, stamped sync_changed_at = T, or skipped because the row reflects a
-- stream change newer than T minus the clock granularity g. Either way a seen row's
-- sync_changed_at is >= start - g afterwards, and so is a row the stream changed during
-- the backfill. A row older than that was not seen. The deletes are positioned at the
-- job's start, so the guard applies exactly that condition again, and a stream change
-- that arrives later still wins. Keys with an open dead letter, or with one this
-- backfill saw again (its item could not be mapped; an admin may have replayed a
-- corrected copy), were seen and are kept.
create function sync.sweep_unseen(p_job bigint) returns bigint
language plpgsql set search_path = ''
as $fn$
declare
  spec sync.source_tables;
  started timestamptz;
  cutoff timestamptz;
  changes jsonb;
  removed bigint;
begin
  select s.* into spec
  from sync.backfill_jobs j join sync.source_tables s on s.source_table = j.source_table
  where j.id = p_job;
  select j.started_at into started from sync.backfill_jobs j where j.id = p_job;
  cutoff := started - (select value::interval from sync.settings where key = 'stream_clock_granularity');
  if spec.collapsed then
    -- Live observations older than the cutoff, and rows with no live observation at all
    -- (written here some other way), each as the delete of that observation.
    execute format($sql$
      select jsonb_agg(jsonb_build_object('op', 'delete', 'row', x.row_key, 'seq', null,
               'changed_at', $1, 'source', 'backfill', 'range_key', x.range_key, 'rank', 0))
      from (
        select o.row_key, o.range_key from sync.observations o
        where o.target_table = %1$L and not o.deleted and o.sync_changed_at < $2
        union
        select %2$s, t.sync_range_key from public.%1$I t
        where t.sync_changed_at < $2
      ) x
      where not exists (
        select from sync.dead_letters d
        where d.target_table = %1$L and d.row_key = x.row_key
          and (d.replayed_at is null or d.last_seen_at >= $1))
      $sql$, spec.target_table, sync.key_json_sql(spec.target_table, 't'))
    into changes using started, cutoff;
  else
    execute format($sql$
      select jsonb_agg(jsonb_build_object('op', 'delete', 'row', x.row_key, 'seq', null,
               'changed_at', $1, 'source', 'backfill'))
      from (select %2$s as row_key from public.%1$I t where t.sync_changed_at < $2) x
      where not exists (
        select from sync.dead_letters d
        where d.target_table = %1$L and d.row_key = x.row_key
          and (d.replayed_at is null or d.last_seen_at >= $1))
      $sql$, spec.target_table, sync.key_json_sql(spec.target_table, 't'))
    into changes using started, cutoff;
  end if;
  if changes is null then
    return 0;
  end if;
  select m.deleted into removed from sync.merge_changes(spec.target_table, changes) m;
  return removed;
end
$fn$;
comment on function sync.sweep_unseen(bigint) is
  'At the end of a backfill: removes, with tombstones, the rows and observations its Scan did not see that are older than its start.';

-- Gives a segment back (the worker's budget ran out); the next worker goes on from its
-- checkpoint.
create function sync.release_segment(p_job bigint, p_segment integer, p_worker text)
returns void
language sql set search_path = ''
as $$
  update sync.backfill_segments
  set status = 'pending', lease_owner = null, lease_expires_at = null, updated_at = now()
  where job_id = p_job and segment = p_segment and lease_owner = p_worker and status = 'running'
$$;

-- A segment that cannot go on (its table is missing, say) fails its job, with the cause.
create function sync.fail_segment(p_job bigint, p_segment integer, p_worker text, p_error text)
returns void
language sql set search_path = ''
as $$
  update sync.backfill_segments
  set status = 'failed', error = p_error, lease_owner = null, lease_expires_at = null,
      updated_at = now()
  where job_id = p_job and segment = p_segment and lease_owner = p_worker;
  update sync.backfill_jobs set status = 'failed', finished_at = now(),
    error = format('segment %s: %s', p_segment, p_error)
  where id = p_job;
$$;

-- A stream lost records (trimmed past its retention, or replaced): the table is stale
-- until a fresh backfill of it finishes. Returns that backfill's job id.
create function sync.mark_stale(p_target text, p_reason text) returns bigint
language plpgsql set search_path = ''
as $$
declare
  job_id bigint;
begin
  job_id := sync.start_backfill((select source_table from sync.source_tables where target_table = p_target));
  insert into sync.table_state (target_table, stale_since, stale_reason, backfill_job_id)
  values (p_target, now(), p_reason, job_id)
  on conflict (target_table) do update
    set stale_since = coalesce(sync.table_state.stale_since, excluded.stale_since),
        stale_reason = excluded.stale_reason, backfill_job_id = excluded.backfill_job_id;
  return job_id;
end
$$;
comment on function sync.mark_stale(text, text) is
  'Marks a target table stale (its stream lost records) and queues a backfill that clears it.';

-- The heartbeat: every 10 seconds where pg_cron can (1.5 and later), every minute where
-- it cannot; it calls the worker only when a segment waits.
do $$
declare
  version int[] := (
    select string_to_array(split_part(extversion, '-', 1), '.')::int[]
    from pg_extension where extname = 'pg_cron');
begin
  perform cron.schedule(
    'sync-import-worker',
    case when version >= array[1, 5] then '10 seconds' else '* * * * *' end,
    'select sync.wake_import_worker() where sync.backfill_work_pending()');
end
$$;

revoke all on function sync.wake_import_worker(), sync.backfill_work_pending(),
  sync.start_backfill(text, integer, boolean), sync.claim_segment(text),
  sync.checkpoint_segment(bigint, integer, text, jsonb, integer, integer, boolean),
  sync.release_segment(bigint, integer, text), sync.fail_segment(bigint, integer, text, text),
  sync.mark_stale(text, text), sync.sweep_unseen(bigint) from public;
