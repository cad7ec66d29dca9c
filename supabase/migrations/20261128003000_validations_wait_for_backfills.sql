-- A validation compares only once its table's backfill has ended (docs/sync-semantics.md,
-- "Verification"). A validation that compared while a backfill of its table was still
-- copying reported every key the backfill had not reached yet as missing (and, past 200
-- divergent keys, without reading them again): a mismatch for a table that was only
-- being filled, e.g. the daily validation during a healing backfill.
--
-- So a run waits while a backfill of its table (not a validation's own Scan) is pending
-- or running:
-- * a collapsed table's run (which stages its Scan and compares after it) scans
--   meanwhile, and its steps after the Scan wait: the Scan's read overlaps the
--   backfill's, and the compare starts the moment the backfill ends;
-- * a run that compares page by page (a plain table; sync_checksums.streamed) does not
--   scan meanwhile: its pages would be compared with rows the backfill had not written.
-- sync.claim_validation gives such a run to no request, the sync-validator heartbeat
-- calls no request for it, and sync.reap_stalled_validations leaves it alone
-- (20261128001100_validator_segments.sql). When the backfill ends (done, failed or
-- cancelled), the trigger below calls the validator for each run that waited and marks
-- its progress, so the reaper's 15 minutes count from then.

-- Whether validation run p_run waits for a backfill of its table (see above).
create function sync.validation_waits_for_backfill(p_run bigint) returns boolean
language sql stable set search_path = ''
as $$
  select exists (
    select from public.sync_checksums c
    join sync.source_tables t on t.target_table = c.target_table
    join sync.backfill_jobs j on j.source_table = t.source_table
    where c.id = p_run and c.status = 'running' and (c.phase <> 'scan' or c.streamed)
      and j.checksum_run_id is null and j.status in ('pending', 'running'))
$$;
comment on function sync.validation_waits_for_backfill(bigint) is
  'Whether a validation run waits for a backfill of its table: its steps after the Scan (a run compared page by page: its Scan too) start once no backfill of the table is pending or running.';
revoke all on function sync.validation_waits_for_backfill(bigint) from public;

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
      and (c.phase <> 'scan' or c.streamed)
      and not sync.validation_waits_for_backfill(c.id)
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
