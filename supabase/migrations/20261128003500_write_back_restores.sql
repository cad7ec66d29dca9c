-- A write-back that gives up always has its row put back to the source's state, even when
-- the function stops between the two (docs/sync-semantics.md, "Admin edits").
--
-- Until now two paths failed a write-back and committed that before the function
-- restored its row from the source: the claim of one whose attempts were spent by runs
-- that never answered, and sync.finish_write_back ending a last attempt that might have
-- passed later. An isolate killed in between (the restore reads the source and merges,
-- the likeliest place to hit a limit) left the row showing an edit DynamoDB may not hold,
-- with nothing to claim it again.
--
-- Now such a write-back is failed with restore_due set and the run's lease kept; the
-- function clears it with sync.end_write_back_restore once the restore has run (whether
-- it put the row back or said why it could not). A claim takes one whose lease ran out
-- with its restore still due, as it takes a spent one, and the sweep wakes the function
-- for it.

-- sync.write_backs' columns for it (restore_due, restores) and their index are defined
-- with the table in 20261128002500_write_back.sql (one place per table).

-- sync.claim_write_backs, with this change (the spent ones keep the run's lease and are
-- marked restore_due; a restore still due after its lease ran out is claimed again, three
-- times at most), is defined in 20261128003900_write_back_restore_retries.sql (one place
-- per function).

-- sync.finish_write_back, with this change, is defined in
-- 20261128002500_write_back.sql (one place per function).
-- Ends the restore of a failed write-back that p_worker holds: its status (failed, or
-- applied when the item turned out to hold the edit) and detail (p_detail, or the one it
-- has when null, followed by p_suffix). Returns whether p_worker still held it.
create function sync.end_write_back_restore(p_id bigint, p_worker text, p_status text,
  p_detail text, p_suffix text default '')
returns boolean
language plpgsql set search_path = ''
as $$
begin
  if p_status not in ('applied', 'conflict', 'failed') then
    raise exception 'sync.end_write_back_restore(%): a restore ends applied, conflict or failed, not %', p_id, p_status
      using errcode = 'SY002';
  end if;
  update sync.write_backs w
  set status = p_status, detail = coalesce(p_detail, w.detail) || coalesce(p_suffix, ''),
      restore_due = false, lease_owner = null, lease_expires_at = null, updated_at = now()
  where w.id = p_id and w.lease_owner = p_worker and w.restore_due;
  return found;
end
$$;

-- sync.write_back_work_pending, with this change (a restore due after its lease ran out
-- is work too), is defined in 20261128003900_write_back_restore_retries.sql (one place
-- per function).

-- The purge of ended write-backs (sync.purge_expired_batch, kind write_backs, in
-- 20261128002700_retention_progress.sql) never takes one whose restore is due.
revoke all on function sync.end_write_back_restore(bigint, text, text, text, text) from public;
