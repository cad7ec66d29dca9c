-- A Scan page is stamped with a time on DynamoDB's own clock that is provably no later
-- than its read, and a backfill's end spares whatever its earliest page saw
-- (docs/sync-semantics.md, "Ordering"). Found by a review of the Scan backfill:
--
-- A page was stamped with the function's clock when its request left. The ordering guard
-- compares that stamp with the stream records' ApproximateCreationDateTime, which
-- DynamoDB floors to the second: the guard's one-second granularity is used up by that
-- flooring alone, so a function clock ahead of DynamoDB's by any amount let a page read
-- before a change overwrite it (or win over its late record), and the clock check
-- (round 45) let it be a second ahead, two with the Date header's resolution. A clock
-- behind Postgres's by less than the check's half second let a backfill's end remove a
-- live item whose page lost to a stream change of the last second before the job began.
--
-- Now the stamp is the page's own answer's Date less its round trip
-- (functions-shared/clock_skew.ts): DynamoDB read the page after that instant on its own
-- clock, the clock of the stream records, whatever the function's clock says. A stamp up
-- to a second and a round trip early only makes the page win less often; each segment
-- keeps its earliest stamp (earliest_read_at, by sync.checkpoint_segment's new
-- p_read_at), and the end removes only what is older than the job's start and than
-- that, less the granularity.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

alter table sync.backfill_segments add column earliest_read_at timestamptz;
comment on column sync.backfill_segments.earliest_read_at is
  'The earliest stamp of the segment''s pages (a Scan''s: DynamoDB''s clock); the backfill''s end removes only rows older than it, less the granularity.';

-- Replaces 20261128003600_sweep_in_chunks.sql's (whole) with one more argument, the
-- page's stamp (null for pages stamped otherwise: an export's, a validation's).
drop function sync.checkpoint_segment(bigint, integer, text, jsonb, integer, integer, boolean);
create function sync.checkpoint_segment(
  p_job bigint, p_segment integer, p_worker text, p_next_key jsonb,
  p_items integer, p_rows integer, p_done boolean, p_read_at timestamptz default null
) returns void
language plpgsql set search_path = ''
as $$
declare
  sweep_until timestamptz;
  run_id bigint;
  job_status text;
  job_table text;
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
      takeovers = 0, failing_since = null, error = null,
      earliest_read_at = least(s.earliest_read_at, p_read_at),
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
  -- The job's state, locked until this page commits: a cancel waits for the page, or
  -- the page sees the cancel. The last segment takes the stronger lock at once (below),
  -- so that two segments finishing together never both hold a share and wait.
  if p_done then
    select j.status, j.source_table, j.checksum_run_id into job_status, job_table, run_id
    from sync.backfill_jobs j where j.id = p_job for update;
  else
    select j.status, j.source_table, j.checksum_run_id into job_status, job_table, run_id
    from sync.backfill_jobs j where j.id = p_job for share;
  end if;
  if job_status not in ('pending', 'running') then
    -- SY002: the job is over; the page's rows roll back with this statement and the
    -- worker stops the segment (functions-shared/segment_scan.ts).
    raise exception '% job % segment % of %: the job is %, so this page was not written; the segment stops',
      case when run_id is null then 'backfill' else format('validation run %s''s scan', run_id) end,
      p_job, p_segment, job_table, job_status
      using errcode = 'SY002',
            hint = 'Start a new backfill (sync.start_backfill) if the table still needs one.';
  end if;
  if not p_done then
    return;
  end if;
  -- Segments finishing at once must not each miss the other: the job row's lock (taken
  -- above) makes the last one see every other segment done.
  if exists (select from sync.backfill_segments where job_id = p_job and status <> 'done') then
    return;
  end if;
  if run_id is not null then
    -- A validation run's Scan is complete: its compare comes next.
    update sync.backfill_jobs set status = 'done', finished_at = now() where id = p_job;
    update public.sync_checksums
    set phase = 'compare', progress_at = now()
    where id = run_id and phase = 'scan';
    return;
  end if;
  -- Every segment has been read: remove what the backfill did not see, chunk by chunk,
  -- as far as backfill_end_inline_ms allows here (a table of the report's size ends in
  -- one chunk); the rest is the workers' (sync.claim_sweep). The job is done when the
  -- sweep is over.
  update sync.backfill_jobs j
  set sweep_state = case when s.collapsed then sync.sweep_walk('observations', 'sync.observations')
                         else sync.sweep_walk('rows', format('public.%I', s.target_table)::regclass) end,
      rows_removed = 0
  from sync.source_tables s
  where j.id = p_job and s.source_table = j.source_table;
  sweep_until := clock_timestamp()
    + make_interval(secs => sync.integer_setting('backfill_end_inline_ms', 0, 60000) / 1000.0);
  while clock_timestamp() < sweep_until loop
    exit when sync.sweep_unseen_chunk(p_job);
  end loop;
end
$$;


-- Replaces 20261128003600_sweep_in_chunks.sql's (whole; the same signature): the cutoff,
-- and the deletes' position, are below the job's earliest page too.
create or replace function sync.sweep_unseen_chunk(p_job bigint, p_blocks integer default 2048,
  p_worker text default null)
returns boolean
language plpgsql set search_path = ''
as $fn$
declare
  job sync.backfill_jobs;
  spec sync.source_tables;
  start_at timestamptz;
  cutoff timestamptz;
  phase text;
  first_block bigint;
  next_block bigint;
  changes jsonb;
  removed bigint := 0;
  over boolean := false;
begin
  if p_blocks is null or p_blocks < 1 then
    raise exception 'sync.sweep_unseen_chunk(%): p_blocks must be 1 or more, not %', p_job, p_blocks
      using errcode = '22023';
  end if;
  select j.* into job from sync.backfill_jobs j where j.id = p_job for update;
  if job.id is null or job.status not in ('pending', 'running') or job.sweep_state is null then
    return true;
  end if;
  if p_worker is not null and job.sweep_state ->> 'owner' is distinct from p_worker then
    raise exception 'backfill job %: worker % no longer holds its end; another worker took it over',
      p_job, p_worker using errcode = 'SY001';
  end if;
  select s.* into spec from sync.source_tables s where s.source_table = job.source_table;
  -- The job's start, or its earliest page's stamp if earlier (DynamoDB's clock): a row a
  -- page saw is stamped no earlier than that page, or kept a stream change at most the
  -- granularity older. What is older than that, less the granularity, was not seen; its
  -- delete is positioned there too, so a stream change after any page's read wins over it.
  start_at := least(job.started_at,
                    (select min(s.earliest_read_at) from sync.backfill_segments s
                     where s.job_id = p_job));
  cutoff := start_at
            - (select value::interval from sync.settings where key = 'stream_clock_granularity');
  phase := job.sweep_state ->> 'phase';
  first_block := (job.sweep_state ->> 'block')::bigint;
  next_block := least(first_block + p_blocks, (job.sweep_state ->> 'end')::bigint);
  if phase = 'observations' then
    -- Live observations older than the cutoff, each as the delete of that observation.
    select jsonb_agg(jsonb_build_object('op', 'delete', 'row', o.row_key, 'seq', null,
             'changed_at', start_at, 'source', 'backfill', 'range_key', o.range_key,
             'rank', 0))
    into changes
    from sync.observations o
    where o.ctid >= format('(%s,0)', first_block)::tid
      and o.ctid < format('(%s,0)', next_block)::tid
      and o.target_table = spec.target_table and not o.deleted and o.sync_changed_at < cutoff
      and not exists (
        select from sync.dead_letters d
        where d.target_table = spec.target_table and d.row_key = o.row_key
          and (d.replayed_at is null or d.last_seen_at >= job.started_at));
  else
    -- Rows older than the cutoff, each as its delete; a collapsed table's as the delete of
    -- the observation it shows (one written here some other way has no live observation).
    execute format($sql$
      select jsonb_agg(jsonb_build_object('op', 'delete', 'row', x.row_key, 'seq', null,
               'changed_at', $5, 'source', 'backfill') || x.observation)
      from (select %2$s as row_key, %3$s as observation from public.%1$I t
            where t.ctid >= format('(%%s,0)', $3)::tid and t.ctid < format('(%%s,0)', $4)::tid
              and t.sync_changed_at < $2) x
      where not exists (
        select from sync.dead_letters d
        where d.target_table = %1$L and d.row_key = x.row_key
          and (d.replayed_at is null or d.last_seen_at >= $1))
      $sql$, spec.target_table, sync.key_json_sql(spec.target_table, 't'),
      case when spec.collapsed
           then $o$jsonb_build_object('range_key', t.sync_range_key, 'rank', 0)$o$
           else $o$'{}'::jsonb$o$ end)
    into changes using job.started_at, cutoff, first_block, next_block, start_at;
  end if;
  if changes is not null then
    select m.deleted into removed from sync.merge_changes(spec.target_table, changes) m;
  end if;
  -- At the walk's end: the next heap, or the sweep's end.
  if next_block >= (job.sweep_state ->> 'end')::bigint then
    if phase = 'observations' then
      job.sweep_state := sync.sweep_walk('rows', format('public.%I', spec.target_table)::regclass);
    else
      over := true;
    end if;
  else
    job.sweep_state := job.sweep_state || jsonb_build_object('block', next_block);
  end if;
  -- Its progress, for a validation waiting on the table; a chunk that passed ends a
  -- series of failures; the holder's lease renewed.
  job.sweep_state := (job.sweep_state - 'failures' - 'error')
    || jsonb_build_object('at', now())
    || case when p_worker is null then '{}'::jsonb
            else jsonb_build_object('owner', p_worker, 'expires', now() + interval '2 minutes') end;
  update sync.backfill_jobs j
  set rows_removed = coalesce(j.rows_removed, 0) + coalesce(removed, 0),
      sweep_state = case when over then null else job.sweep_state end,
      status = case when over then 'done' else j.status end,
      finished_at = case when over then now() else j.finished_at end
  where j.id = p_job;
  if over then
    -- The table is whole again (the stale reason stays as a record of what happened).
    update sync.table_state set stale_since = null where backfill_job_id = p_job;
  end if;
  return over;
end
$fn$;


revoke all on function
  sync.checkpoint_segment(bigint, integer, text, jsonb, integer, integer, boolean, timestamptz)
  from public;
