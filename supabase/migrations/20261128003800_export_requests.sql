-- An export backfill remembers the export it asked for, loads one job per table at a
-- time, and keeps its file's lease while it reads its way back to a checkpoint
-- (docs/sync-semantics.md, "Backfills from an export"). Found by a review of the export
-- path:
--
-- * The command made its job only once the export had completed, and the export's
--   ClientToken changes with the hour. A run stopped while it waited (its wait's limit,
--   a Ctrl-C, a lost connection) and run again in a later hour asked for, and paid for,
--   a second export of the table; an export that takes longer than the wait was never
--   loaded at all. sync.export_requests remembers each export asked for, so a run takes
--   up the newest one of its table, bucket and prefix that no job has loaded yet.
-- * Two commands started together could each make a job of the same table: each
--   checked for an unfinished one before either had made its own. At most one export
--   job of a table is unfinished now (a unique index), and the second command is told.
-- * A file taken up from its checkpoint is read from its first line (gzip cannot seek),
--   and nothing renewed its lease while the lines before the checkpoint went by: deep in
--   a large file the lease ran out, another loader took the file over, and after three
--   takeovers the job failed. sync.renew_segment keeps the lease meanwhile.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- The exports the export backfill has asked DynamoDB for (scripts/export_backfill.ts).
create table sync.export_requests (
  export_arn text primary key,
  source_table text not null references sync.source_tables (source_table),
  bucket text not null,
  prefix text not null,
  requested_at timestamptz not null default now()
);
create index export_requests_newest_idx
  on sync.export_requests (source_table, bucket, prefix, requested_at desc);
comment on table sync.export_requests is
  'Exports an export backfill asked for, so that a run stopped while it waited takes its export up again.';

-- How long a remembered export may be taken up: half the shorter of tombstone_retention
-- and observation_retention (24 h by default). sync.start_export_backfill refuses an
-- export older than the whole of it; the other half is the time the export takes and
-- the load after it.
create function sync.export_request_window() returns interval
language sql stable set search_path = ''
as $$
  select least(sync.retention_setting('tombstone_retention'),
               sync.retention_setting('observation_retention')) / 2
$$;

-- Remembers export `p_export_arn` of `p_source_table`, asked for to `p_bucket` under
-- `p_prefix`, and forgets those too old to be taken up (the table does not grow).
create function sync.note_export_request(
  p_source_table text, p_bucket text, p_prefix text, p_export_arn text
) returns void
language sql set search_path = ''
as $$
  delete from sync.export_requests where requested_at < now() - sync.export_request_window();
  insert into sync.export_requests (export_arn, source_table, bucket, prefix)
  values (p_export_arn, p_source_table, p_bucket, p_prefix)
  on conflict (export_arn) do nothing;
$$;

-- The newest export of `p_source_table` to `p_bucket` under `p_prefix` that was asked
-- for within sync.export_request_window() and that no backfill job has loaded (or
-- begun to): the one a run stopped while it waited. Null when there is none.
create function sync.export_request_to_resume(
  p_source_table text, p_bucket text, p_prefix text
) returns text
language sql stable set search_path = ''
as $$
  select r.export_arn from sync.export_requests r
  where r.source_table = p_source_table and r.bucket = p_bucket and r.prefix = p_prefix
    and r.requested_at >= now() - sync.export_request_window()
    and not exists (select from sync.backfill_jobs j where j.export_arn = r.export_arn)
  order by r.requested_at desc
  limit 1
$$;

-- One unfinished export job per table: the second of two commands started together is
-- refused (23505) and takes the first one's job up when run again. A table that already
-- has two (the race this closes) keeps its newest; the others are cancelled, saying why
-- (what they loaded stays: it is the export's, and the newest job's end sweeps the rest).
update sync.backfill_jobs j
set status = 'cancelled', finished_at = now(),
    error = 'cancelled when one unfinished export job per table became the rule (20261128003800_export_requests.sql): a newer one of this table goes on'
where j.export_arn is not null and j.status in ('pending', 'running')
  and exists (select from sync.backfill_jobs k
              where k.source_table = j.source_table and k.export_arn is not null
                and k.status in ('pending', 'running') and k.id > j.id);
create unique index backfill_jobs_one_unfinished_export_idx
  on sync.backfill_jobs (source_table)
  where export_arn is not null and status in ('pending', 'running');

-- Keeps `p_worker`'s lease on segment `p_segment` of job `p_job` without moving its
-- checkpoint: for a loader reading its way back to the checkpoint of a file it took up.
-- Raises SY001 (as sync.checkpoint_segment does) when the lease is no longer its own.
create function sync.renew_segment(p_job bigint, p_segment integer, p_worker text)
returns void
language plpgsql set search_path = ''
as $$
begin
  update sync.backfill_segments s
  set lease_expires_at = now() + make_interval(secs => j.lease_seconds), updated_at = now()
  from sync.backfill_jobs j
  where s.job_id = p_job and s.segment = p_segment and j.id = s.job_id
    and s.status = 'running' and s.lease_owner = p_worker
    and j.status in ('pending', 'running');
  if not found then
    raise exception 'backfill job % segment %: worker % no longer holds the lease; another worker took over, or the job is over',
      p_job, p_segment, p_worker using errcode = 'SY001';
  end if;
end
$$;

revoke all on function sync.export_request_window(),
  sync.note_export_request(text, text, text, text),
  sync.export_request_to_resume(text, text, text),
  sync.renew_segment(bigint, integer, text) from public;
