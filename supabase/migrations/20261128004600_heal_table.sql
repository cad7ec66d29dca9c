-- One healing backfill of a table at a time, however often it is asked for (found by a
-- review of this round's diff). sync.mark_stale queues a new backfill at every call, and
-- each job reads at its own read budget: a repair, a write-back's restore or a collapsed
-- key's re-read that asks again for the same key (a key whose partition is too large to
-- read whole, asked for at every re-read of it) queued a full backfill each time, and
-- they read the application's table at that many times its budget.
--
-- sync.heal_table marks the table stale with the reason, as sync.mark_stale does, but
-- takes the table's backfill still waiting to start, when there is one, instead of
-- queuing another: a job that has read nothing yet reads every item after the problem,
-- so it heals this too. A job already reading may have passed the key: then a new one is
-- queued, once (the next call finds it waiting). Validation runs' Scans and export
-- backfills are not taken (neither heals the live table from now).

select set_config('lock_timeout', '5s', true);

create function sync.heal_table(p_target text, p_reason text) returns bigint
language plpgsql set search_path = ''
as $$
declare
  job_id bigint;
begin
  -- Two calls at once for a table (a re-read and a write-back's restore of one key, say)
  -- one after the other: with no job waiting there is no row for the second to wait on,
  -- and each would queue a backfill.
  perform pg_advisory_xact_lock(hashtext('sync.heal_table'), hashtext(p_target));
  select j.id into job_id
  from sync.backfill_jobs j
  join sync.source_tables s on s.source_table = j.source_table
  where s.target_table = p_target and j.status = 'pending'
    and j.checksum_run_id is null and j.export_arn is null
  order by j.id desc
  limit 1
  for update of j;
  if job_id is null then
    return sync.mark_stale(p_target, p_reason);
  end if;
  insert into sync.table_state (target_table, stale_since, stale_reason, backfill_job_id)
  values (p_target, now(), p_reason, job_id)
  on conflict (target_table) do update
    set stale_since = coalesce(sync.table_state.stale_since, excluded.stale_since),
        stale_reason = excluded.stale_reason, backfill_job_id = excluded.backfill_job_id;
  return job_id;
end
$$;
comment on function sync.heal_table(text, text) is
  'Marks a target table stale with the reason and returns the backfill that heals it: the table''s backfill still waiting to start, else a new one (sync.mark_stale).';
revoke all on function sync.heal_table(text, text) from public;
