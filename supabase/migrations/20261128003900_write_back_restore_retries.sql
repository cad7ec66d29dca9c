-- A write-back's restore that fails is tried again; the sweep wakes the function only for
-- an edit it can claim; an edit is named by its table and key whoever ends it; a
-- phone-only admin is named as its editor (docs/sync-semantics.md, "Admin edits"). Found
-- by a review of the write-back path:
--
-- * When an edit ended in a conflict or failed, its row was put back to the source's
--   state by a read of the item and the one merge. That read fails for the reasons the
--   edit failed (throttling, the pooler): the restore's failure was written into the
--   detail and the edit ended, its row showing a value DynamoDB does not hold, for good
--   (a failed edit changed no item, so no stream record comes to mend it). Now such a
--   restore is left due (sync.leave_write_back_restore): the next run's claim takes it
--   once a minute has passed, as it takes one a stopped function left due, three times
--   at most. A conflict keeps its status through it.
-- * sync.write_back_work_pending counted an edit waiting behind an older pending edit of
--   its row, which no claim hands out: the sweep woke the function every 10 s for
--   nothing while the older one waited out its backoff (up to 10 minutes).
-- * An edit given up by the claim (its function stopped every time) had a detail that
--   named neither its table nor its key when no run had named them before.
-- * sync.record_write_back took the JWT's `email` claim as the editor, and Supabase Auth
--   gives a user who signed up by phone an empty one: such an admin's edits were
--   recorded as made by ''. Now an empty claim is skipped (email, phone, then sub).

-- Claims up to p_limit due write-backs for p_worker for p_lease: pending ones whose time
-- has come and whose lease is free or lapsed, the oldest of each row only (edits of one
-- row are written in the order they were made: a later one's condition expects the
-- earlier one's values). Each claim counts an attempt. One whose attempts are spent and
-- whose last run ended without an answer (the function stopped: a killed isolate) is
-- failed here, not claimed again (sync.finish_write_back, which fails the others, was
-- never called for it), and returned with the claimed ones, failed: the function
-- restores its row from the source and names its table and key in its detail. So is one
-- that waits for its next attempt when write_back_max_attempts was lowered below the
-- attempts it has made: no claim takes it any more, and it would block every later edit
-- of its row. At most p_limit of those a claim too: each costs the function reads and a
-- merge, whatever its budget, and thousands (after a run of killed isolates, or the
-- setting lowered) would pass its isolate's CPU limit in one run.
--
-- The spent ones keep the run's lease and are marked restore_due, and ones whose restore
-- is still due after their lease ran out (a conflict's too) are returned with them
-- (failed; their detail as it was), three times at most: a restore whose function stops
-- every time (a partition too big to read, say) is given up, saying so and naming its
-- table and key, rather than claimed for ever with a batch of edits each time
-- (20261128003500_write_back_restores.sql). Each batch is picked once, as an array (`= any (array(...))`,
-- an init plan): as `w.id in (select ... limit p_limit for update skip locked)` the
-- planner may join it in a nested loop that runs the subquery again for every row, and
-- a claim of 2 then failed 3 spent write-backs (seen in pgTAP 090 once the table's
-- statistics changed).
create function sync.claim_write_backs(p_worker text, p_limit integer default 10,
  p_lease interval default '2 minutes')
returns setof sync.write_backs
language sql set search_path = ''
as $$
  with given_up as (
    update sync.write_backs w
    set restore_due = false, lease_owner = null, lease_expires_at = null, updated_at = now(),
        detail = case when coalesce(w.detail, '') like w.target_table || ' %' then w.detail
                      else format('%s %s: %s', w.target_table, w.row_key, coalesce(w.detail, ''))
                 end || format(
          '; its row was not put back to the source''s state in %s more tries (each failed, above, or the write-back function stopped: see its logs): compare the item with the row',
          w.restores)
    where w.status in ('failed', 'conflict') and w.restore_due and w.restores >= 3
      and coalesce(w.lease_expires_at, '-infinity') < now()
    returning w.id
  ),
  spent as (
    update sync.write_backs w
    set status = case when w.status = 'conflict' then 'conflict' else 'failed' end,
        restore_due = true, lease_owner = p_worker,
        restores = w.restores + 1,
        lease_expires_at = now() + p_lease, updated_at = now(),
        detail = case
          when w.status in ('failed', 'conflict') then w.detail
          when w.lease_expires_at is null then
            format('gave up after %s attempts: write_back_max_attempts is now %s%s',
                   w.attempts, sync.integer_setting('write_back_max_attempts'),
                   coalesce('; the last attempt: ' || w.detail, ''))
          else
            format('gave up after %s attempts; the last run ended without an answer (the write-back function stopped: see its logs), so it may or may not have been applied: compare the item with the row%s',
                   w.attempts, coalesce('; the attempt before it: ' || w.detail, ''))
        end
    where w.id = any (array(
      select d.id from sync.write_backs d
      where ((d.status = 'pending'
              and d.attempts >= sync.integer_setting('write_back_max_attempts'))
             or (d.status in ('failed', 'conflict') and d.restore_due and d.restores < 3))
        and coalesce(d.lease_expires_at, '-infinity') < now()
      order by d.id
      limit p_limit
      for update skip locked))
    returning w.*
  ),
  claimed as (
    update sync.write_backs w
    set lease_owner = p_worker, lease_expires_at = now() + p_lease,
        attempts = w.attempts + 1, updated_at = now()
    where w.id = any (array(
      select d.id from sync.write_backs d
      where d.status = 'pending' and d.next_attempt_at <= now()
        and (d.lease_expires_at is null or d.lease_expires_at < now())
        and d.attempts < sync.integer_setting('write_back_max_attempts')
        and not exists (select from sync.write_backs e
                        where e.target_table = d.target_table and e.row_key = d.row_key
                          and e.id < d.id and e.status = 'pending')
      order by d.id
      limit p_limit
      for update skip locked))
    returning w.*
  )
  select * from spent
  union all
  select * from claimed
$$;

-- Ends p_worker's write-back p_id as p_status (conflict or failed), its detail p_detail
-- (or the one it has when null) followed by p_suffix, a conflict's source values kept, and
-- its restore left due: the restore failed (the item could not be read, the merge met the
-- pooler), and the next run's claim tries it again once p_retry_in has passed. Returns
-- whether p_worker still held it.
create function sync.leave_write_back_restore(p_id bigint, p_worker text, p_status text,
  p_detail text, p_suffix text default '', p_source_values jsonb default null,
  p_retry_in interval default '1 minute')
returns boolean
language plpgsql set search_path = ''
as $$
begin
  if p_status not in ('conflict', 'failed') then
    raise exception 'sync.leave_write_back_restore(%): a restore is left due by a conflict or a failure, not %', p_id, p_status
      using errcode = 'SY002';
  end if;
  update sync.write_backs w
  set status = p_status, detail = coalesce(p_detail, w.detail) || coalesce(p_suffix, ''),
      restore_due = true, source_values = coalesce(p_source_values, w.source_values),
      lease_owner = p_worker, lease_expires_at = now() + p_retry_in, updated_at = now()
  where w.id = p_id and w.lease_owner = p_worker;
  return found;
end
$$;

-- sync.end_write_back_restore, with this change, is defined in
-- 20261128003500_write_back_restores.sql (one place per function).
-- Whether a write-back is due (the sweep calls the function only then): what a claim
-- hands out (an edit waiting behind an older pending edit of its row is not), and a
-- restore due after its lease ran out (20261128003500_write_back_restores.sql).
create function sync.write_back_work_pending() returns boolean
language sql stable set search_path = ''
as $$
  select exists (select from sync.write_backs w
                 where w.status = 'pending' and w.next_attempt_at <= now()
                   and (w.lease_expires_at is null or w.lease_expires_at < now())
                   and not exists (select from sync.write_backs e
                                   where e.target_table = w.target_table
                                     and e.row_key = w.row_key
                                     and e.id < w.id and e.status = 'pending'))
      or exists (select from sync.write_backs w
                 where w.restore_due and w.lease_expires_at < now())
$$;

-- sync.record_write_back, with this change, is defined in
-- 20261128002500_write_back.sql (one place per function).
revoke all on function sync.leave_write_back_restore(bigint, text, text, text, text, jsonb, interval),
  sync.claim_write_backs(text, integer, interval), sync.write_back_work_pending() from public;
