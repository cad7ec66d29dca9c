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
-- p_read_at), and the end removes only what is older than the job's earliest stamp,
-- less the granularity (sync.backfill_read_from, below).

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

alter table sync.backfill_segments add column earliest_read_at timestamptz;
comment on column sync.backfill_segments.earliest_read_at is
  'The earliest stamp of the segment''s pages (a Scan''s: DynamoDB''s clock); the backfill''s end removes only rows older than it, less the granularity.';

-- When a backfill read the table from, on DynamoDB's clock (the stream records'): a
-- Scan's earliest page stamp once every segment being read has one, and before that no
-- later than its start less a minute for the clocks' skew (the first page of a segment
-- being read, read earlier than the pages stamped so far, may still be committing); an
-- export's, its export time (its started_at); null before it starts.
-- The one answer to two questions, so that they agree: which rows a backfill's end
-- removes (those older than this, less the granularity, that no page saw) and which lost
-- stream records a backfill heals (those older than this by two granularities,
-- sync.record_stream_check). A review found the end counting from the job's start when
-- that was earlier (on Postgres's clock), while the check counted from the first page:
-- a delete lost between the two was taken as healed, and its row kept for good. Every
-- row that no page saw and that is older than the first read was gone before any read
-- (the pages are consistent reads), so its removal is right.
create function sync.backfill_read_from(j sync.backfill_jobs) returns timestamptz
language sql stable set search_path = ''
as $$
  select case when j.started_at is null then null
              when j.export_arn is not null then j.started_at
              else (select case when bool_and(s.earliest_read_at is not null
                                              or s.status <> 'running')
                                then coalesce(min(s.earliest_read_at),
                                              j.started_at - interval '1 minute')
                                else least(min(s.earliest_read_at),
                                           j.started_at - interval '1 minute') end
                    from sync.backfill_segments s where s.job_id = j.id) end
$$;
comment on function sync.backfill_read_from(sync.backfill_jobs) is
  'When a backfill read the table from, on DynamoDB''s clock: its end removes what is older and unseen, and it heals the lost stream records older than this.';
revoke all on function sync.backfill_read_from(sync.backfill_jobs) from public;

-- Replaces the released 20261128000500_backfill.sql's with one more argument, the page's
-- stamp (null for pages stamped otherwise: an export's, a validation's), and with what
-- later migrations changed in it: a page of a job that is not running is refused (SY002)
-- and the last segment of a validation run's Scan moves the run on to its compare
-- (20261128001800_backfill_turns.sql), the last segment starts the sweep in chunks
-- (20261128003600_sweep_in_chunks.sql).
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
    + make_interval(secs => sync.integer_setting('backfill_end_inline_ms') / 1000.0);
  while clock_timestamp() < sweep_until loop
    exit when sync.sweep_unseen_chunk(p_job);
  end loop;
end
$$;


-- sync.sweep_unseen_chunk, with this change, is defined in
-- 20261128003600_sweep_in_chunks.sql (one place per function).
revoke all on function
  sync.checkpoint_segment(bigint, integer, text, jsonb, integer, integer, boolean, timestamptz)
  from public;
