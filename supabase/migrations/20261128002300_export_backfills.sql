-- Backfills from a DynamoDB point-in-time export (issue 17; docs/sync-semantics.md,
-- "Backfills from an export").
--
-- DynamoDB writes a table's items, as of about one instant (its export time), to S3:
-- gzipped data files of one item a line, listed in manifests. Not exactly that instant:
-- each item may be as it was up to two minutes before it, or after it, and the export is not
-- transactionally consistent (AWS Developer Guide, "DynamoDB data export to Amazon S3:
-- how it works"; functions-shared/export_manifest.ts, EXPORT_WINDOW_MS). So its items are
-- taken as read two minutes before the export time: its read time. An export backfill
-- is a sync.backfill_jobs row like a Scan's, whose units of work are the export's data
-- files instead of Scan segments: one sync.backfill_segments row per file (its lease and
-- its checkpoint, the number of lines loaded, in exclusive_start_key as {"line": n}),
-- with the file's key, item count and MD5 in sync.backfill_export_files. Its pages go
-- through the same merge and the same sync.checkpoint_segment as a Scan's pages, every
-- row stamped with the read time; its started_at IS the read time, so that the sweep at
-- its end (sync.sweep_unseen) removes exactly the rows that are older than the export's
-- items and not in it. Stream changes after the read time win over it, those before lose,
-- as with a Scan's read time: a change the export missed, or holds an older image of,
-- within the minute before its time is newer than its rows.
--
-- Export jobs are loaded by the command that asked for them (npm run backfill --
-- --from-export), next to the database, not by the import-worker: a gzip stream cannot
-- be entered mid-file, so an Edge Function handing on under its CPU limit would inflate
-- each file again from its first byte. So the import-worker's claim and its pg_cron wake
-- leave export jobs out, and the command claims its own job's files
-- (sync.claim_export_file).

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

alter table sync.backfill_jobs
  add column export_arn text,
  add column export_bucket text,
  add constraint backfill_jobs_export_check
    check ((export_arn is null) = (export_bucket is null)
           and (export_arn is null or checksum_run_id is null));
comment on column sync.backfill_jobs.export_arn is
  'For a backfill from a point-in-time export: the export''s ARN (its started_at is the export''s read time: its export time less two minutes).';
comment on column sync.backfill_jobs.export_bucket is 'The S3 bucket the export''s files are in.';

create table sync.backfill_export_files (
  job_id bigint not null,
  segment integer not null,
  data_key text not null,
  item_count bigint not null check (item_count >= 0),
  md5 text not null,
  -- The S3 ETag the manifest gives the file: a read whose ETag differs is of another
  -- object (one written over it since), refused before a line of it is merged.
  etag text,
  primary key (job_id, segment),
  foreign key (job_id, segment) references sync.backfill_segments (job_id, segment)
    on delete cascade
);
comment on table sync.backfill_export_files is
  'The data file each segment of an export backfill loads: its key in the export''s bucket, its item count, its MD5 (base64) and its S3 ETag, from the export''s manifest.';

-- One Scan backfill of a table reads at a time. Each job paces itself by its own ledger
-- (20261128001800_backfill_turns.sql), so two at once read the application's table at
-- twice its read budget; and sync.heal_table queues a second job while one reads (it may
-- have passed the key), so a key asked for every few minutes stacked a job per ask, each
-- at the full budget (found by a review of the backfill). A newer job of the table waits,
-- pending, until every older one has ended, and takes every heal asked for meanwhile.
create function sync.scan_waits_for_older(j sync.backfill_jobs) returns boolean
language sql stable set search_path = ''
as $$
  select j.checksum_run_id is null and j.export_arn is null and exists (
    select from sync.backfill_jobs o
    where o.source_table = j.source_table and o.id < j.id
      and o.status in ('pending', 'running')
      and o.checksum_run_id is null and o.export_arn is null)
$$;
comment on function sync.scan_waits_for_older(sync.backfill_jobs) is
  'Whether a Scan backfill waits for an older Scan backfill of its table still pending or running: one reads a table at a time, at its read budget.';
revoke all on function sync.scan_waits_for_older(sync.backfill_jobs) from public;

-- Since when a backfill could run: its request, or the end of the last older Scan
-- backfill of its table it waited for (sync.scan_waits_for_older). What counts a job as
-- under way (a validation waits for it) or as stalled (failed after tombstone_retention)
-- counts from this: a job that waited its turn an hour is not an hour old when it starts
-- (a review found a validation woken by the older job's end, and Scanning beside it).
create function sync.backfill_ready_since(j sync.backfill_jobs) returns timestamptz
language sql stable set search_path = ''
as $$
  select greatest(j.requested_at, (
    select max(o.finished_at) from sync.backfill_jobs o
    where j.checksum_run_id is null and j.export_arn is null
      and o.source_table = j.source_table and o.id < j.id
      and o.checksum_run_id is null and o.export_arn is null))
$$;
comment on function sync.backfill_ready_since(sync.backfill_jobs) is
  'Since when a backfill could run: its request, or the end of the older Scan backfill of its table it waited for.';
revoke all on function sync.backfill_ready_since(sync.backfill_jobs) from public;

-- Replaces 20261128000500_backfill.sql's claim_segment(text), which
-- 20261128001100_validator_segments.sql dropped: with p_run, a segment of that
-- validation run's Scan; without, of a Scan backfill (never an export's). The candidate
-- is chosen by the work its job has left (20261128001800_backfill_turns.sql, 3.), no
-- longer by job order.
create function sync.claim_segment(p_worker text, p_run bigint default null)
returns table (
  job_id bigint, segment integer, total_segments integer, source_table text, target_table text,
  region text, exclusive_start_key jsonb, page_size integer, taken_over boolean
)
language plpgsql set search_path = ''
as $$
declare
  taken record;
begin
  with candidate as (
    select s.job_id, s.segment, s.status = 'running' as lapsed
    from sync.backfill_segments s
    join sync.backfill_jobs j on j.id = s.job_id
    left join sync.backfill_read_ledger l on l.job_id = s.job_id
    where j.status in ('pending', 'running')
      and j.checksum_run_id is not distinct from p_run
      and j.export_arn is null
      and (s.status = 'pending' or (s.status = 'running' and s.lease_expires_at < now()))
      -- Not a backfill while an older one of its table has not ended (above).
      and not sync.scan_waits_for_older(j)
      -- Not a job whose reads are booked more than 20 s ahead: its segments in flight use
      -- its table's read budget already, and another one's first read would wait longer
      -- than a request can sleep (an isolate is killed at its wall-clock limit). It is
      -- claimed again once its turns come nearer.
      and coalesce(l.next_at <= clock_timestamp() + interval '20 seconds', true)
    order by
      -- Jobs whose turns are booked two pages ahead have segments enough in flight to
      -- use their table's budget: they come last.
      coalesce(l.next_at > clock_timestamp() + make_interval(secs => (2 * l.units / l.rate)::float8),
               false),
      -- Then the job with the most reads left (its page's cost times its segments not
      -- done): the longest job, which the whole backfill waits for, first.
      coalesce(l.units, 257) * (select count(*) from sync.backfill_segments r
                                where r.job_id = s.job_id and r.status <> 'done') desc,
      (select count(*) from sync.backfill_segments r
       where r.job_id = s.job_id and r.status = 'running' and r.lease_expires_at >= now()),
      s.job_id, s.segment
    limit 1
    for update of s skip locked
  ),
  -- A claim of a segment whose lease ran out is an attempt that ended without a page
  -- written (its worker was stopped or killed mid-page): counted, with its cause, as
  -- sync.note_failed_attempt counts an attempt that failed.
  claimed as (
    update sync.backfill_segments s
    set status = 'running', lease_owner = p_worker,
        lease_expires_at = now() + make_interval(secs => j.lease_seconds),
        started_at = coalesce(s.started_at, now()), updated_at = now(),
        takeovers = s.takeovers + case when c.lapsed then 1 else 0 end,
        failing_since = case when c.lapsed then coalesce(s.failing_since, now())
                             else s.failing_since end,
        error = case when c.lapsed
                     then format('its lease (%s s) ran out: its worker was stopped or killed mid-page',
                                 j.lease_seconds)
                     else s.error end
    from candidate c, sync.backfill_jobs j
    where s.job_id = c.job_id and s.segment = c.segment and j.id = c.job_id
    returning s.job_id, s.segment, s.exclusive_start_key, s.takeovers, s.failing_since,
              s.error, c.lapsed
  ),
  -- Only a job still pending or running: the status test above reads the statement's
  -- snapshot, and a job failed or cancelled since must not be set running again (this
  -- update re-checks its own condition on the newest row).
  started as (
    update sync.backfill_jobs j
    set status = 'running', started_at = coalesce(j.started_at, now())
    from claimed c where j.id = c.job_id and j.status in ('pending', 'running')
    returning j.id, j.total_segments, j.source_table, j.page_size
  )
  select c.job_id, c.segment, st.total_segments, st.source_table, t.target_table, t.region,
         c.exclusive_start_key, st.page_size, c.takeovers, c.failing_since, c.error, c.lapsed
  into taken
  from claimed c
  join started st on st.id = c.job_id
  join sync.source_tables t on t.source_table = st.source_table;
  if not found then
    return;
  end if;
  -- A backfill's segment that no attempt gets a page past would be claimed for ever,
  -- its job never ending (and the purge holding every tombstone since its start): its
  -- job fails, naming why, once sync.segment_gives_up says so.
  if p_run is null and taken.lapsed
     and sync.segment_gives_up(taken.takeovers, taken.failing_since) then
    perform sync.fail_segment(taken.job_id, taken.segment, p_worker, format(
      '%s of %s: %s attempts in a row since %s ended without a page written; the last: %s',
      taken.source_table, taken.region, taken.takeovers,
      to_char(taken.failing_since at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
      taken.error));
    return;
  end if;
  -- taken_over: its lease had run out (its worker was stopped or killed mid-page), which
  -- the worker says in its log; a segment given back for a budget is routine, and says
  -- nothing (a hosted function's log keeps 100 lines in 10 s).
  return query select taken.job_id, taken.segment, taken.total_segments, taken.source_table,
    taken.target_table, taken.region, taken.exclusive_start_key, taken.page_size, taken.lapsed;
end
$$;

-- Whether a backfill's segment whose attempts keep ending without a page written
-- (sync.claim_segment, sync.note_failed_attempt) gives up, failing its job: at 5 in a
-- row, the first more than 10 minutes ago. An outage shorter than that (a database
-- restart, the table throttled by the applications' peak) is waited out; what still
-- fails after it will not pass by itself. (The database unavailable, and a statement
-- that lost to another, are not counted at all: functions-shared/segment_scan.ts.)
create function sync.segment_gives_up(p_attempts integer, p_failing_since timestamptz)
returns boolean
language sql stable set search_path = ''
as $$ select p_attempts >= 5 and p_failing_since <= now() - interval '10 minutes' $$;

-- An attempt of a segment that failed (a Scan refused, a page whose statement failed):
-- recorded on the segment, still held by p_worker, with its cause, and counted
-- (sync.backfill_segments.takeovers and failing_since; a checkpoint clears them). The
-- caller gives the segment back after. A backfill's segment that
-- sync.segment_gives_up fails its job instead, naming the cause, and true is returned; a
-- validation run's Scan is ended by its own reaper (sync.reap_stalled_validations),
-- which names the cause kept here.
create function sync.note_failed_attempt(
  p_job bigint, p_segment integer, p_worker text, p_error text
) returns boolean
language plpgsql set search_path = ''
as $$
declare
  attempts integer;
  since timestamptz;
  backfill boolean;
begin
  update sync.backfill_segments s
  set error = p_error, takeovers = s.takeovers + 1,
      failing_since = coalesce(s.failing_since, now()), updated_at = now()
  from sync.backfill_jobs j
  where s.job_id = p_job and s.segment = p_segment and s.lease_owner = p_worker
    and s.status = 'running' and j.id = s.job_id
  returning s.takeovers, s.failing_since, j.checksum_run_id is null
  into attempts, since, backfill;
  if not found or not backfill or not sync.segment_gives_up(attempts, since) then
    return false;
  end if;
  perform sync.fail_segment(p_job, p_segment, p_worker, format(
    '%s attempts in a row since %s ended without a page written; the last: %s', attempts,
    to_char(since at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'), p_error));
  return true;
end
$$;

-- sync.backfill_progress, with this change (validation runs' Scans left out; an export
-- backfill says so, and how many items its files hold), is defined in
-- 20261128005200_status.sql (one place per view, after everything it reads).

-- Starts a backfill of `p_source_table` from its export `p_export_arn` (its items taken
-- as read at `p_read_at`: its export time less two minutes) in `p_bucket`: one segment per
-- data file of `p_files`, a JSON array of {"key", "itemCount", "md5"} in the manifest's
-- order. Returns the job's id.
--
-- The export's rows are stamped with its read time, and only a tombstone (or a deleted
-- observation) recorded after that time stops one of them from bringing back an item
-- deleted since. Those are kept for tombstone_retention (observation_retention), and
-- every one recorded after a running backfill's start is kept while it runs
-- (sync.purge_expired): so an export older than the shorter of the two periods is
-- refused (its deletes' tombstones may be gone), and the job is running from the start,
-- its started_at the read time, so that no tombstone it needs is purged from then on.
create function sync.start_export_backfill(
  p_source_table text,
  p_export_arn text,
  p_read_at timestamptz,
  p_bucket text,
  p_files jsonb,
  p_page_size integer default 1000
) returns bigint
language plpgsql set search_path = ''
as $$
declare
  job_id bigint;
  files integer := coalesce(jsonb_array_length(p_files), 0);
  kept interval;
begin
  if not exists (select from sync.source_tables s where s.source_table = p_source_table) then
    raise exception 'sync.start_export_backfill: % is not a registered DynamoDB table (known: %)',
      p_source_table,
      (select string_agg(s.source_table, ', ' order by s.source_table) from sync.source_tables s)
      using errcode = '22023';
  end if;
  if position(format(':table/%s/export/', p_source_table) in coalesce(p_export_arn, '')) = 0 then
    raise exception 'sync.start_export_backfill: % is not an export of %', p_export_arn, p_source_table
      using errcode = '22023';
  end if;
  if files = 0 then
    raise exception 'sync.start_export_backfill: the export % of % lists no data file',
      p_export_arn, p_source_table using errcode = '22023';
  end if;
  kept := least(sync.retention_setting('tombstone_retention'),
                sync.retention_setting('observation_retention'));
  -- An hour to spare: the export time is on DynamoDB's clock, the tombstones' on this
  -- database's, and the load takes time to start (found by a review of the clocks).
  if p_read_at is null or p_read_at < now() - kept + interval '1 hour' then
    raise exception 'sync.start_export_backfill: the export % of % is as of %, more than % ago (the shorter of tombstone_retention and observation_retention, less an hour): the tombstones of items deleted since may be purged, and its rows would bring those items back; export the table again',
      p_export_arn, p_source_table,
      coalesce(to_char(p_read_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'), 'no time'),
      kept - interval '1 hour'
      using errcode = '22023';
  end if;
  insert into sync.backfill_jobs
    (source_table, status, total_segments, page_size, started_at, export_arn, export_bucket)
  values (p_source_table, 'running', files, p_page_size, p_read_at, p_export_arn, p_bucket)
  returning id into job_id;
  insert into sync.backfill_segments (job_id, segment)
  select job_id, g from generate_series(0, files - 1) g;
  insert into sync.backfill_export_files (job_id, segment, data_key, item_count, md5, etag)
  select job_id, (f.n - 1)::integer, f.file ->> 'key', (f.file ->> 'itemCount')::bigint,
         f.file ->> 'md5', nullif(f.file ->> 'etag', '')
  from jsonb_array_elements(p_files) with ordinality as f (file, n);
  return job_id;
end
$$;
comment on function sync.start_export_backfill(text, text, timestamptz, text, jsonb, integer) is
  'Starts a backfill from a point-in-time export: one segment per data file, every row stamped with its read time (its export time less two minutes).';

-- Claims a data file of export backfill `p_job` for `p_worker`: a pending one, or one
-- whose lease expired (its worker died), with the line to go on from and the lease's
-- length (the loader renews it while a chunk is written: sync.renew_segment). No row when
-- every file is taken or done, or the job is over.
create function sync.claim_export_file(p_job bigint, p_worker text)
returns table (
  segment integer, data_key text, item_count bigint, md5 text, next_line bigint,
  source_table text, target_table text, page_size integer, etag text, lease_seconds integer
)
language plpgsql set search_path = ''
as $$
declare
  -- Takeovers in a row, without a chunk written, after which a file fails its job.
  max_takeovers constant integer := 3;
  taken record;
begin
  with candidate as (
    select s.segment, s.status = 'running' as lapsed
    from sync.backfill_segments s
    join sync.backfill_jobs j on j.id = s.job_id
    where s.job_id = p_job and j.export_arn is not null and j.status in ('pending', 'running')
      and (s.status = 'pending' or (s.status = 'running' and s.lease_expires_at < now()))
    order by s.segment
    limit 1
    for update of s skip locked
  ),
  claimed as (
    update sync.backfill_segments s
    set status = 'running', lease_owner = p_worker,
        lease_expires_at = now() + make_interval(secs => j.lease_seconds),
        started_at = coalesce(s.started_at, now()), updated_at = now(),
        takeovers = s.takeovers + case when c.lapsed then 1 else 0 end
    from candidate c, sync.backfill_jobs j
    where s.job_id = p_job and s.segment = c.segment and j.id = p_job
    returning s.segment, s.exclusive_start_key, s.takeovers, j.lease_seconds
  ),
  -- Only a job still pending or running (as in sync.claim_segment).
  started as (
    update sync.backfill_jobs j set status = 'running'
    where j.id = p_job and exists (select from claimed) and j.status in ('pending', 'running')
    returning j.source_table, j.page_size
  )
  select c.segment, c.exclusive_start_key, c.takeovers, c.lease_seconds, st.source_table,
         st.page_size
  into taken
  from claimed c cross join started st;
  if not found then
    return;
  end if;
  -- A file taken over again and again, no chunk written in between, has loaders that
  -- stop or die on it every time (a loader renews its lease while a chunk is written):
  -- loading it again would never end. Its job fails, saying so.
  if taken.takeovers > max_takeovers then
    perform sync.fail_segment(p_job, taken.segment, p_worker, format(
      'export data file %s: its lease (%s s) ran out %s times in a row before a chunk of it was written; '
      'each loader that took it stopped or died before its chunk was written (their logs say why)',
      (select f.data_key from sync.backfill_export_files f
       where f.job_id = p_job and f.segment = taken.segment),
      taken.lease_seconds, taken.takeovers));
    return;
  end if;
  return query
  select taken.segment, f.data_key, f.item_count, f.md5,
         coalesce((taken.exclusive_start_key ->> 'line')::bigint, 0), taken.source_table,
         t.target_table, taken.page_size, f.etag, taken.lease_seconds
  from sync.backfill_export_files f
  join sync.source_tables t on t.source_table = taken.source_table
  where f.job_id = p_job and f.segment = taken.segment;
end
$$;
comment on function sync.claim_export_file(bigint, text) is
  'Claims a data file of an export backfill (pending, or its lease expired), with the line to go on from; a file taken over more than three times in a row without a chunk written fails its job instead.';

revoke all on table sync.backfill_export_files from public;
revoke all on function sync.claim_segment(text, bigint),
  sync.segment_gives_up(integer, timestamptz),
  sync.note_failed_attempt(bigint, integer, text, text),
  sync.start_export_backfill(text, text, timestamptz, text, jsonb, integer),
  sync.claim_export_file(bigint, text) from public;
