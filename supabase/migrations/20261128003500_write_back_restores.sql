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

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

alter table sync.write_backs
  add column restore_due boolean not null default false,
  add column restores integer not null default 0 check (restores >= 0);
comment on column sync.write_backs.restore_due is
  'Failed, and its row not yet put back to the source''s state: the next write-back run does it once the lease has run out.';
comment on column sync.write_backs.restores is
  'Claims of its restore: after 3 that never ended (the function stopped each time), it is given up, its detail saying so.';
create index write_backs_restore_due on sync.write_backs (id) where restore_due;

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
-- 20261128002500's value helper kept the default EXECUTE for every role: harmless (an
-- immutable conversion, in a schema no API role may use), but closed as everything of sync.
revoke all on function sync.write_back_value(anyelement) from public;
