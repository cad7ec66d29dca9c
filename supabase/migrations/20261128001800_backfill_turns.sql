-- A backfill's pages against their job's state and their table's read budget (issue 16;
-- docs/sync-semantics.md, "Backfills"; docs/interfaces.md, "import-worker").
--
-- 1. A page of a job that is no longer running writes nothing. Until now
--    sync.checkpoint_segment checked only the segment's lease, so a page in flight when
--    its job was cancelled (npm start's reset, a validation run that ended) or failed (a
--    sibling segment's table went missing) still landed, unless whoever cancelled also
--    took the leases away (demo/load_report_data_set.ts's emptyTargets did, as a special
--    case). Now the checkpoint reads its job's status under a share lock, after the
--    segment's row (so that a claim of the same segment cannot deadlock with it): a job
--    that is not pending or running refuses the page with SQLSTATE SY002 and a message
--    naming the table, the job and the segment; the statement, and the page's rows with
--    it, roll back, and the worker stops that segment (functions-shared/segment_scan.ts).
--    The share lock orders the page against a cancel: either the page commits first, or
--    the cancel does and the page is refused.
--
-- 2. A job's read ledger: its segments' turns against the table's read budget. Each
--    segment paced itself to a fixed share of the budget (the table's ÷ its job's
--    segments), so the table's budget was used in full only while every segment was in
--    flight, and the gaps between requests (a hand-on, a fresh isolate's boot) left it
--    unused. Now each read takes its turn in sync.backfill_read_ledger, as one reader
--    would (tests/table_pacer.ts is the same rule in one process): a turn starts when the
--    previous ones have used their read units at the budget's rate, booked at the cost
--    of the job's last page and corrected by what the page really cost in the statement
--    that writes it (the same round trip).
--
-- 3. Claims by the work left. sync.claim_segment gave out the segments in job order, so
--    with few segments in flight (IMPORT_WORKER_MAX_CONCURRENT, 8, and four runs an
--    isolate) a backfill of every table read them one after the other (the first job's 8
--    segments, then the next job's), each table's budget unused until its turn, and the
--    longest table started last. Now a claim takes a segment of the job with the most
--    reads left (its last whole page's read units times its segments not done) among those
--    whose read ledger is not already booked two pages ahead, then of the job with the
--    fewest segments in flight: the longest table gets the segments that use its budget,
--    and the others the rest.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- Claims of a segment whose lease ran out, since its last checkpoint (a page or chunk
-- written): sync.claim_export_file fails a file taken over too often in a row
-- (20261128002300_export_backfills.sql), whose loaders stop or die on it every time.
alter table sync.backfill_segments
  add column takeovers integer not null default 0 check (takeovers >= 0),
  add column failing_since timestamptz;
comment on column sync.backfill_segments.takeovers is
  'Attempts of this segment that ended without a page written since its last checkpoint: claims after its lease ran out, and failures (sync.note_failed_attempt). A backfill''s segment fails its job when sync.segment_gives_up says so; an export''s data file after 3 takeovers.';
comment on column sync.backfill_segments.failing_since is
  'When the first of the attempts counted in takeovers ended; null after a checkpoint.';

-- Replaces the released 20261128000500_backfill.sql's, here, at its first change, so that
-- a push that stops partway (a lock not granted in 5 s, below) never leaves the released
-- version in place after a validation run's Scan exists: that version swept a table's
-- unseen rows at the end of any job, and a validation's Scan writes none. With this
-- version in place before the objects it reads, a call fails instead until the push is
-- done (plpgsql reads them when called). What it holds, with the migrations that brought
-- each: a page of a job that is not running is refused (SY002) and the last segment of a
-- validation run's Scan moves the run on to its compare (here); the last segment starts
-- the sweep in chunks (sync.sweep_unseen_chunk, 20261128003600_sweep_in_chunks.sql); one
-- more argument, the page's stamp (null for pages stamped otherwise: an export's, a
-- validation's), kept as the segment's earliest_read_at
-- (20261128004000_scan_stamps_from_dynamodb.sql).
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
revoke all on function
  sync.checkpoint_segment(bigint, integer, text, jsonb, integer, integer, boolean, timestamptz)
  from public;

-- Replaces 20261128000500_backfill.sql's (whole; the same signature): only the worker that
-- holds the segment's lease fails it, and with it the job, and only a job still pending or
-- running. The job was failed by whoever called: a worker whose chunk outlasted its lease,
-- while another worker had taken the file over and was loading it from the last
-- checkpoint, failed the job under it (an export backfill at 4 copies, once in seven runs).
create or replace function sync.fail_segment(p_job bigint, p_segment integer, p_worker text, p_error text)
returns void
language sql set search_path = ''
as $$
  with failed as (
    update sync.backfill_segments
    set status = 'failed', error = p_error, lease_owner = null, lease_expires_at = null,
        updated_at = now()
    where job_id = p_job and segment = p_segment and lease_owner = p_worker
    returning job_id
  )
  update sync.backfill_jobs j set status = 'failed', finished_at = now(),
    error = format('segment %s: %s', p_segment, p_error)
  from failed f
  where j.id = f.job_id and j.status in ('pending', 'running');
$$;

-- The read ledger: one row per Scan job (a backfill's, or a validation run's Scan), made by
-- its first turn.
create table sync.backfill_read_ledger (
  job_id bigint primary key references sync.backfill_jobs (id) on delete cascade,
  next_at timestamptz not null,
  units numeric not null check (units > 0),
  rate numeric not null check (rate > 0)
);
comment on table sync.backfill_read_ledger is
  'Per Scan job (a backfill''s or a validation run''s): when its next Scan page may start (next_at), what a page is expected to cost in read units (units: the last whole page''s), and the table''s read budget in read units a second (rate: IMPORT_WORKER_MAX_RCU_PER_SECOND or VALIDATOR_MAX_RCU_PER_SECOND).';

-- sync.claim_segment, which claims by the work left (3. above), is defined in
-- 20261128002300_export_backfills.sql, which also keeps export jobs out of it.

-- A page of a consistent Scan reads at most 1 MB: 256 read units of 4 KB, and one more for
-- the rounding (AWS Developer Guide, "DynamoDB read and write operations": a Scan
-- "reads up to the maximum number of items set (if using the Limit parameter) or a
-- maximum of 1 MB of data"; a strongly consistent read costs one unit per 4 KB). Until
-- a job has read a page, each turn is booked at that cost, so that its segments' first
-- pages do not reach the table together and are throttled.
insert into sync.settings (key, value, description, min_value, max_value) values
  ('backfill_first_page_units', '257',
   'The read units a backfill books for a page before its job has read one (the most a 1 MB consistent Scan page costs).',
   1, 100000)
on conflict (key) do nothing;

-- A job's reads pause now and then with no segment reading: a request hands on to the
-- next (Edge Functions: the next isolate, which may first have to start), a claim comes
-- after its segment was given back. Paced strictly, each pause was budget lost: the
-- visitors' backfill in `npm start` read for 31 s what its budget reads in 26.6. So the
-- ledger is a token bucket that holds this many seconds of the budget: after a pause a
-- job reads at once what it missed, up to these seconds' worth, then at its pace again.
-- Over any stretch it reads at most its budget, these seconds' worth and one page more
-- (1 s at 250 a second: 250 units; with 1 MB pages, two may start at once after a
-- pause): within one second of a table's capacity, which is all the local stand-in of
-- DynamoDB keeps (its `burst_s`, the contract's per-second rule), where DynamoDB keeps up
-- to 300 seconds of unused capacity ("burst capacity", AWS Developer Guide). At 2 s the
-- catch-up read past a second's capacity and was throttled (the stand-in's backfill bench
-- went from 28.1 to 30.6 s). A job's start is such a pause: the table's capacity went
-- unused until then, and its first read catches up as after any other (paced strictly
-- from its start, a validation of the actions lost a second of its 3.4 s, against a bare
-- Scan at the same budget and catch-up). A read after one that was retried (a throttle:
-- the table is at its capacity) or given up catches up nothing: sync.backfill_read_turn's
-- p_catch_up. 0: strict pacing.
insert into sync.settings (key, value, description, min_value, max_value) values
  ('backfill_catch_up_seconds', '1',
   'Seconds of its read budget a Scan job (a backfill''s or a validation''s) may read at once after its reads paused (a hand-on, an isolate starting), so that it reads at its budget on average (0 to 10; 0: strict pacing).',
   0, 10)
on conflict (key) do nothing;

-- Settles a segment's last turn and books its next one, in the statement that writes
-- the page (or with a claim, or a release). p_spent: what the last read cost (its
-- ConsumedCapacity; null when no read was made); p_booked: the units its turn was booked
-- at (0: none); p_next: whether to book the next read; p_catch_up: false when the last
-- read was retried (throttled, or failed) or given up: the table is at its capacity, and
-- the job keeps none of its catch-up (above) but reads at its pace from now; p_whole:
-- false for a page read smaller than a whole one (the import-worker cuts a page's Limit to
-- the CPU its isolate has left): its cost is settled, but a whole page's stays the next
-- read's estimate (else the job's next turns, booked at the small page's cost, would let
-- its segments read whole pages at once, past the budget until each settled). Returns when
-- the next read may start, as milliseconds from now (wait_ms), and the units booked for it
-- (units); both null when p_next is false. A turn given back unused (p_spent null) frees
-- its place for the next one.
create function sync.backfill_read_turn(
  p_job bigint, p_rate numeric, p_spent numeric, p_booked numeric, p_next boolean,
  p_catch_up boolean default true, p_whole boolean default true
) returns jsonb
language plpgsql set search_path = ''
as $$
declare
  ledger sync.backfill_read_ledger;
  start_at timestamptz;
  booked numeric;
  why text;
  catch_up integer := 0;
begin
  if p_rate is null or p_rate <= 0 then
    raise exception 'sync.backfill_read_turn: backfill job %: the read budget must be a positive number of read units a second, not %',
      p_job, p_rate using errcode = '22023';
  end if;
  insert into sync.backfill_read_ledger (job_id, next_at, units, rate)
  values (p_job, '-infinity',
          coalesce((select value::numeric from sync.settings where key = 'backfill_first_page_units'), 257),
          p_rate)
  on conflict (job_id) do nothing;
  select * into strict ledger from sync.backfill_read_ledger where job_id = p_job for update;
  -- The last turn was booked at an estimate: what it really cost moves the next turns.
  ledger.next_at := ledger.next_at
    + make_interval(secs => ((coalesce(p_spent, 0) - coalesce(p_booked, 0)) / p_rate)::float8);
  if p_spent is not null and p_whole is not false then
    -- A whole page was read: its cost is the next one's estimate (an empty page's, too).
    ledger.units := greatest(p_spent, 0.5);
  end if;
  if not p_catch_up and ledger.next_at > '-infinity' then
    -- Retried or given up at the table's capacity: nothing is caught up.
    ledger.next_at := greatest(ledger.next_at, clock_timestamp());
  end if;
  if p_next then
    -- After a pause (its start is one) the job catches up on what it missed, up to
    -- backfill_catch_up_seconds of its budget (above). A setting it cannot use (its check
    -- as written bypassed, or its bounds dropped: sync.integer_setting,
    -- 20261128001100_validator_segments.sql) paces strictly (the side that reads less),
    -- named in the server's log: a page is not refused for it.
    begin
      catch_up := sync.integer_setting('backfill_catch_up_seconds');
    exception when invalid_parameter_value then
      get stacked diagnostics why = message_text;
      raise warning '%: Scans pace strictly until it is set again', why;
    end;
    start_at := greatest(ledger.next_at, clock_timestamp() - make_interval(secs => catch_up));
    booked := ledger.units;
    ledger.next_at := start_at + make_interval(secs => (booked / p_rate)::float8);
  end if;
  update sync.backfill_read_ledger
  set next_at = ledger.next_at, units = ledger.units, rate = p_rate
  where job_id = p_job;
  if not p_next then
    return jsonb_build_object('wait_ms', null, 'units', null);
  end if;
  return jsonb_build_object(
    'wait_ms', greatest(0, extract(epoch from start_at - clock_timestamp()) * 1000),
    'units', booked);
end
$$;
comment on function sync.backfill_read_turn(bigint, numeric, numeric, numeric, boolean, boolean, boolean) is
  'A Scan segment''s turns (a backfill''s or a validation run''s) against its table''s read budget: settles the last read''s cost (a whole page''s is the next read''s estimate) and books the next read, catching up after a pause unless the last read was retried at the table''s capacity; returns {wait_ms, units}.';

revoke all on table sync.backfill_read_ledger from public;
revoke all on function sync.backfill_read_turn(bigint, numeric, numeric, numeric, boolean, boolean, boolean) from public;
