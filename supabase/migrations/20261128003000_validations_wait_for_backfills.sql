-- A validation does not start while a backfill of its table is under way
-- (docs/sync-semantics.md, "Verification"). A validation that compared while a backfill
-- of its table was still copying reported every key the backfill had not reached yet as
-- missing (and, past 200 divergent keys, without reading them again): a mismatch for a
-- table that was only being filled, e.g. the daily validation during a healing backfill.
--
-- So a run whose Scan has not begun (every segment of its own Scan job still pending)
-- waits while a backfill of its table (not a validation's own Scan) is under way:
-- pending or running, and alive, i.e. queued within the last 15 minutes, or with a
-- segment that checkpointed within them or holds a lease now. A backfill that shows no
-- life for 15 minutes (an export whose loader died, a job no worker claims) is not
-- waited for: the run then compares, and reports what it finds. A run that has begun
-- goes on whatever starts meanwhile, as before: pausing it would leave its compared pages
-- or staged items stale.
--
-- sync.claim_validation gives a waiting run to no request, the sync-validator heartbeat
-- calls no request for it, sync.start_queued_validations does not count it against
-- validation_concurrency, and sync.reap_stalled_validations leaves it alone
-- (20261128001100_validator_segments.sql). When the backfill ends (done, failed or
-- cancelled), the trigger below calls the validator for each run that waited and marks
-- its progress, so the reaper's 15 minutes count from then.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- Whether validation run p_run is running and its Scan has not begun: every segment of
-- its own Scan job still pending (the runs that may wait, above).
create function sync.validation_scan_unbegun(p_run bigint) returns boolean
language sql stable set search_path = ''
as $$
  select exists (
    select from public.sync_checksums c
    where c.id = p_run and c.status = 'running' and c.phase = 'scan'
      and not exists (
        select from sync.backfill_jobs v join sync.backfill_segments s on s.job_id = v.id
        where v.checksum_run_id = c.id and s.status <> 'pending'))
$$;
revoke all on function sync.validation_scan_unbegun(bigint) from public;

-- sync.validation_waits_for_backfill, whether validation run p_run waits for a backfill
-- of its table (see above), is defined in 20261128003600_sweep_in_chunks.sql (one place
-- per function).

-- At the end of a backfill: calls the validator for each run of the table that waited.
create function sync.wake_waiting_validations() returns trigger
language plpgsql set search_path = ''
as $$
declare
  r bigint;
begin
  for r in
    select c.id from public.sync_checksums c
    join sync.source_tables t on t.target_table = c.target_table
    where t.source_table = new.source_table and c.status = 'running'
      and sync.validation_scan_unbegun(c.id) and not sync.validation_waits_for_backfill(c.id)
  loop
    update public.sync_checksums set progress_at = now() where id = r;
    perform sync.call_edge_function('data-checksum-validator', jsonb_build_object('runId', r), 60000);
  end loop;
  return null;
end
$$;
revoke all on function sync.wake_waiting_validations() from public;

create trigger backfill_jobs_wake_waiting_validations
  after update of status on sync.backfill_jobs
  for each row
  when (old.status in ('pending', 'running') and new.status not in ('pending', 'running')
        and new.checksum_run_id is null)
  execute function sync.wake_waiting_validations();
