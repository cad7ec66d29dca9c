-- A stale table follows its newest healer (docs/sync-semantics.md, "Lost stream
-- records"). Found by a review of stream-check: sync.record_stream_check linked a table
-- to the backfill that heals a problem only when the table was not stale already. A
-- table left stale by a failed job, then healed by a later one (an operator's backfill),
-- stayed stale for good, naming the failed job; and a table stale and linked to a
-- running job was cleared by it while a newer problem's healer, still to run, could
-- fail with nothing saying so. It is now linked to the newer job, its mark and reason
-- kept.

-- Replaces 20261128003700_stream_check_healers.sql's (whole; the same signature).
create or replace function sync.record_stream_check(
  p_target text,
  p_stream_arn text,
  p_shards jsonb,
  p_problem text,
  p_covers_until timestamptz
) returns bigint
language plpgsql set search_path = ''
as $$
declare
  job_id bigint;
  healer sync.backfill_jobs;
begin
  if not exists (select from sync.source_tables s where s.target_table = p_target) then
    raise exception 'sync.record_stream_check: % is not a registered target table', p_target
      using errcode = '22023';
  end if;
  if p_problem is not null then
    -- A done one first: then nothing is left to heal.
    select j.* into healer
    from sync.backfill_jobs j
    join sync.source_tables s on s.source_table = j.source_table
    where s.target_table = p_target and j.status in ('pending', 'running', 'done')
      and j.checksum_run_id is null -- a validation run's Scan writes nothing
      -- A record's time is ApproximateCreationDateTime, rounded down to the clock's
      -- granularity: the change may be up to that much later.
      -- A job not started yet will read the table as it is then: it covers any time. One
      -- started covers from its start (an export's started_at is its export time).
      and coalesce(j.started_at, 'infinity') >= coalesce(p_covers_until, now())
            + (select value::interval from sync.settings where key = 'stream_clock_granularity')
    order by j.status = 'done' desc, j.id desc
    limit 1;
    if healer.id is null then
      job_id := sync.mark_stale(p_target, p_problem);
    elsif healer.status <> 'done' then
      -- Healing, not healed: the table is stale until that job is done (which clears
      -- it), and stays so, naming the problem, if the job fails or is cancelled.
      -- A table stale already keeps its mark and reason, and is linked to this healer
      -- when it is a newer job than the one it names (or it names none): that job clears
      -- the mark when done, and a newer one covers all the older one did. Before, the link
      -- stayed on the older job: one that had failed left the table stale for good, and
      -- one that finished cleared the mark while this healer, still to run, might fail.
      insert into sync.table_state (target_table, stale_since, stale_reason, backfill_job_id)
      values (p_target, now(), p_problem, healer.id)
      on conflict (target_table) do update
        set stale_since = coalesce(sync.table_state.stale_since, now()),
            stale_reason = case when sync.table_state.stale_since is null
                                then excluded.stale_reason
                                else sync.table_state.stale_reason end,
            backfill_job_id = excluded.backfill_job_id
        where sync.table_state.stale_since is null
           or sync.table_state.backfill_job_id is null
           or excluded.backfill_job_id > sync.table_state.backfill_job_id;
    end if;
  end if;
  insert into sync.stream_checks (target_table, stream_arn, checked_at, shards, problem, backfill_job_id)
  values (p_target, p_stream_arn, now(), coalesce(p_shards, '{}'::jsonb), p_problem, job_id)
  on conflict (target_table) do update
    set stream_arn = excluded.stream_arn, checked_at = excluded.checked_at,
        shards = excluded.shards, problem = excluded.problem,
        backfill_job_id = coalesce(excluded.backfill_job_id, sync.stream_checks.backfill_job_id);
  return job_id;
end
$$;
