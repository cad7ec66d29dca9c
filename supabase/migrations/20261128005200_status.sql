-- The control panel's view, sync.status, and what it shows of the scheduled work
-- (docs/interfaces.md, "SQL"; docs/sync-semantics.md, "Nothing waits unseen").
--
-- Work that is scheduled can stop without an error anyone reads. pg_cron records a run as
-- succeeded once its SQL has run, and its SQL only queues the Edge Function's call
-- (pg_net); and a job whose SQL fails every time (a setting row out of range, a lock
-- never granted) shows only in cron.job_run_details. So sync.status shows, besides what
-- each table's own queues and checks say:
-- * scheduler_problem: each pg_cron job of this project (`sync-*`) whose latest run
--   failed, with its message, and each one paused but those the cutover pauses on
--   purpose (the same on every row; null when none);
-- * write_backs_overdue: admins' edits due for 10 minutes while no run of the write-back
--   function touched any edit in those 10 minutes (the sweep calls it every 10 seconds,
--   or every minute on pg_cron before 1.5), so their attempts, which count only claims,
--   never reach the give-up: the function is not deployed, its calls are refused, or it
--   fails at its cold start (net._http_response shows the answers);
-- * function_problem: each Edge Function whose latest answered call failed (404: not
--   deployed; 401: the key in Vault; 500 or 503: its cold start, a setting), or that
--   could not be called (Vault), with when and how (the same on every row; null when
--   none);
-- * stream_check_overdue (20261128001300_stream_progress.sql) for the lost-record check.
-- A collapsed key's re-read due for an hour while no key is claimed is given up to a
-- healing backfill (sync.wake_rereads, 20261128002900_collapsed_rereads.sql), which shows
-- as stale.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- The jobs that read DynamoDB into Supabase, which the cutover pauses (README, "The
-- cutover", step 4, pauses exactly these; "Rolling back" starts them again): from then on
-- Supabase is ahead of DynamoDB on purpose, and each of them would write DynamoDB's state
-- over it, or report it as a mismatch.
-- The Edge Functions whose latest answered call failed, each with when and how: its
-- answer's status and body (cut at 200 characters), pg_net's error (no connection, its
-- timeout), no request made (Vault), or a call pg_net has not answered in 5 minutes (its
-- worker stopped: net.http_request_queue holds what it has not sent). A call not yet
-- answered leaves the verdict to the one before it; one older than pg_net keeps answers
-- gives none. Null when none. Both tables hold about that long (sync.function_calls and
-- sync.pg_net_ttl(), 20261128004500_wake_keys.sql);
-- net._http_response has no index on its id, so the two are joined whole, by hash.
create function sync.function_problem() returns text
language sql stable set search_path = ''
as $$
  select string_agg(x.problem, '; ' order by x.problem)
  from (
    select distinct on (c.function_name) c.function_name, case
      when c.request_id is null then format('%s was not called at %s: %s', c.function_name,
        to_char(c.called_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), c.problem)
      when r.id is null then format(
        '%s: its call at %s has no answer after 5 minutes (is pg_net''s worker running? net.http_request_queue holds what it has not sent)',
        c.function_name, to_char(c.called_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
      when r.status_code between 200 and 299 then null
      when r.status_code is null then format('%s: its call at %s failed: %s', c.function_name,
        to_char(c.called_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        left(coalesce(r.error_msg, case when r.timed_out then 'timed out' end, 'no answer'), 200))
      else format('%s answered %s to its call at %s: %s', c.function_name, r.status_code,
        to_char(c.called_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        left(coalesce(nullif(r.content, ''), 'no body'), 200))
    end as problem
    from sync.function_calls c
    left join net._http_response r on r.id = c.request_id
    where c.called_at > now() - sync.pg_net_ttl()
      and (c.request_id is null or r.id is not null or c.called_at < now() - interval '5 minutes')
    order by c.function_name, c.id desc
  ) x
$$;
comment on function sync.function_problem() is
  'The Edge Functions whose latest answered call (through sync.call_edge_function) failed, with when and how; null when none.';

-- Whether a run of the write-back function ended or touched an edit in the last 10
-- minutes: a claim, a retry's backoff, an edit given back untried or ended. While runs
-- go on, edits due for 10 minutes are a backlog being worked (a bulk edit), not overdue.
create function sync.write_back_runs_seen() returns boolean
language sql stable set search_path = ''
as $$
  select exists (select from sync.write_backs w
                 where w.status <> 'pending' and w.updated_at > now() - interval '10 minutes')
      or exists (select from sync.write_backs w
                 where w.status = 'pending' and w.updated_at > now() - interval '10 minutes'
                   and w.updated_at > w.created_at)
$$;
comment on function sync.write_back_runs_seen() is
  'Whether a run of the write-back function ended or touched an edit in the last 10 minutes.';

create function sync.cutover_paused_jobs() returns text[]
language sql immutable set search_path = ''
as $$
  select array['sync-stream-check', 'sync-validate-all', 'sync-validator', 'sync-import-worker',
               'sync-collapsed-rereads']
$$;
comment on function sync.cutover_paused_jobs() is
  'The pg_cron jobs that read DynamoDB into Supabase, which the cutover pauses and a rollback starts again.';

-- The project's pg_cron jobs (`sync-*`) that need an operator: each active one whose
-- latest ended run failed (when, and pg_cron's message, cut at 300 characters), shown
-- until a later run of it succeeds, and each paused one, but those of
-- sync.cutover_paused_jobs() once cut over (write_back = 'cutover',
-- 20261128002500_write_back.sql); null when none. The postgres role, which the migrations
-- schedule the jobs as, reads pg_cron's tables whole (it bypasses their row security).
-- cron.job_run_details has no index but its run id's: a job's latest run is found by
-- walking back from the newest, through a day of the others' runs for the daily job.
create function sync.scheduler_problem() returns text
language sql stable set search_path = ''
as $$
  select string_agg(x.problem, '; ' order by x.problem)
  from (
    select case
      when not j.active then format(
        'pg_cron job %s is paused (cron.job.active is false): select cron.alter_job(%s, active => true) runs it again',
        j.jobname, j.jobid)
      else format('pg_cron job %s failed at %s: %s', j.jobname,
        to_char(r.start_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        left(coalesce(nullif(r.return_message, ''), 'no message'), 300))
    end as problem
    from cron.job j
    left join lateral (
      select d.start_time, d.status, d.return_message from cron.job_run_details d
      where j.active and d.jobid = j.jobid and d.status in ('succeeded', 'failed')
      order by d.runid desc
      limit 1
    ) r on true
    where j.jobname like 'sync-%'
      and case
            when j.active then r.status = 'failed'
            else not (j.jobname = any (sync.cutover_paused_jobs())
                      and exists (select from sync.settings s
                                  where s.key = 'write_back' and s.value = 'cutover'))
          end
  ) x
$$;
comment on function sync.scheduler_problem() is
  'The project''s pg_cron jobs (sync-*) whose latest run failed, with when and why, and those paused (but the cutover''s, once cut over); null when none.';
revoke all on function sync.function_problem(), sync.write_back_runs_seen(),
  sync.cutover_paused_jobs(), sync.scheduler_problem() from public;

-- One row per target table (docs/interfaces.md, "SQL"): its rows, exact or estimated
-- (sync.table_counts), last change, open dead letters, last checksum result, whether it
-- is stale, its write-backs pending, in conflict, failed (20261128002500_write_back.sql)
-- and overdue (above), its keys waiting for a re-read, and of those the ones whose last
-- re-read failed (20261128002900_collapsed_rereads.sql), when the lost-record check last
-- ran on it (sync.stream_checks, 20261128001300_stream_progress.sql: a check, or a
-- failure to check, which itself reports a gap past the 3 hours) and whether that is
-- overdue: longer ago than the check vouches across, counted before its first run from
-- the table's oldest backfill or validation Scan still kept (a table never read is not
-- synced yet; after the cutover the stream is no longer read), and, the same on every
-- row, what is wrong with the scheduled jobs and the functions they call (above).
-- (20261128001200 dropped the first version of the view; this is its one definition
-- since, here, after the last table and function it reads.)
create view sync.status as
select
  s.target_table,
  s.source_table,
  s.region,
  c.row_count as rows,
  c.rows_estimated,
  c.last_change_at,
  (select count(*) from sync.dead_letters d
    where d.target_table = s.target_table and d.replayed_at is null) as dead_letters,
  k.checked_at as last_checksum_at,
  k.match as last_checksum_match,
  k.status as last_checksum_status,
  jsonb_array_length(k.unmappable) as last_checksum_unmappable,
  -- The latest run that finished: while the next runs queue or run (hours at scale),
  -- or after one was reaped, this is the last verdict there is.
  r.checked_at as last_result_at,
  r.match as last_result_match,
  ts.stale_since is not null as stale,
  case when ts.stale_since is not null then ts.stale_reason end as stale_reason,
  coalesce(wb.pending, 0) as write_backs_pending,
  coalesce(wb.conflict, 0) as write_backs_conflict,
  coalesce(wb.failed, 0) as write_backs_failed,
  case when (select sync.write_back_runs_seen()) then 0 else coalesce(wo.overdue, 0) end
    as write_backs_overdue,
  coalesce(rr.waiting, 0) as rereads_waiting,
  coalesce(rr.failing, 0) as rereads_failing,
  sc.checked_at as stream_checked_at,
  coalesce(coalesce(sc.checked_at, fb.first_requested_at)
           < now() - sync.stream_check_max_interval(), false)
    and not exists (select from sync.settings x where x.key = 'write_back' and x.value = 'cutover')
    as stream_check_overdue,
  (select sync.scheduler_problem()) as scheduler_problem,
  (select sync.function_problem()) as function_problem
from sync.source_tables s
join sync.table_counts() c on c.target_table = s.target_table
left join lateral (
  select x.checked_at, x.match, x.status, x.unmappable from public.sync_checksums x
  where x.target_table = s.target_table
  order by x.started_at desc limit 1
) k on true
left join lateral (
  select x.checked_at, x.match from public.sync_checksums x
  where x.target_table = s.target_table and x.status = 'done'
  order by x.started_at desc limit 1
) r on true
left join sync.table_state ts on ts.target_table = s.target_table
left join lateral (
  select count(*) filter (where w.status = 'pending') as pending,
         count(*) filter (where w.status = 'conflict') as conflict,
         count(*) filter (where w.status = 'failed') as failed
  from sync.write_backs w where w.target_table = s.target_table and w.status <> 'applied'
) wb on true
left join lateral (
  select count(*) as overdue from sync.write_backs w
  where w.target_table = s.target_table and w.status = 'pending'
    and w.next_attempt_at < now() - interval '10 minutes'
    and coalesce(w.lease_expires_at, '-infinity') < now()
    and not exists (select from sync.write_backs e
                    where e.target_table = w.target_table and e.row_key = w.row_key
                      and e.id < w.id and e.status = 'pending')
) wo on true
left join lateral (
  select count(*) as waiting, count(*) filter (where q.error is not null) as failing
  from sync.collapsed_rereads q where q.target_table = s.target_table
) rr on true
left join sync.stream_checks sc on sc.target_table = s.target_table
left join lateral (
  select min(j.requested_at) as first_requested_at from sync.backfill_jobs j
  where j.source_table = s.source_table
) fb on true;
comment on view sync.status is
  'One row per target table: rows (an estimate above status_exact_count_limit: rows_estimated), last change applied, open dead letters, the latest checksum run (its status, result and unmappable source items) and the latest result of a finished one, stale, write-backs pending, in conflict, failed and overdue (due 10 minutes with no run seen in them), collapsed keys waiting for a re-read and those whose last re-read failed, and when the lost-record check last ran on it and whether that is overdue (over sync.stream_check_max_interval() ago; before its first run, since the table''s oldest backfill or validation Scan kept; never after the cutover), and what is wrong with the scheduled jobs and the functions they call (sync.scheduler_problem(), sync.function_problem(), the same on every row).';

