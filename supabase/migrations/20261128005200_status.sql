-- The control panel's views, sync.status and sync.backfill_progress, and what they show of
-- the scheduled work (docs/interfaces.md, "SQL"; docs/sync-semantics.md, "Nothing waits
-- unseen").
--
-- Work that is scheduled can stop without an error anyone reads. pg_cron records a run as
-- succeeded once its SQL has run, and its SQL only queues the Edge Function's call
-- (pg_net); and a job whose SQL fails every time (a lock never granted, a function a
-- push stopped partway left out) shows only in cron.job_run_details. So sync.status
-- shows, besides what each table's own queues and checks say:
-- * scheduler_problem: each pg_cron job of this project (`sync-*`) whose latest run
--   failed, with its message, and each one paused but those the cutover pauses on
--   purpose (the same on every row; null when none);
-- * write_backs_overdue: admins' edits due for 10 minutes while no run of the write-back
--   function touched any edit in those 10 minutes (the sweep calls it every 10 seconds,
--   or every minute on pg_cron before 1.5), so their attempts, which count only claims,
--   never reach the give-up: the function is not deployed, its calls are refused, or it
--   fails at its cold start (net._http_response shows the answers);
-- * function_problem: each Edge Function whose calls fail (404: not deployed; 401: the
--   key in Vault; 500 or 503 twice in a row: its cold start, a setting), or that could
--   not be called (Vault), with when and how (the same on every row; null when none);
-- * stream_check_overdue (20261128001300_stream_progress.sql) for the lost-record check.
-- A collapsed key's re-read due for an hour while no key is claimed is given up to a
-- healing backfill (sync.wake_rereads, 20261128002900_collapsed_rereads.sql), which shows
-- as stale. sync.backfill_progress shows when a worker last worked on each job.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- The Edge Functions whose calls through sync.call_edge_function fail, each with when and
-- how: its answer's status and body (cut at 200 characters), pg_net's error (no
-- connection), no request made (Vault), or a call pg_net has not answered in 5 minutes
-- (its worker stopped: net.http_request_queue holds what it has not sent). Null when
-- none. From each function's latest calls that give a verdict:
-- * a call not answered yet gives none (its verdict is the one before it's), nor does
--   one that pg_net gave up waiting for (its timeout: several functions answer only when
--   their run ends, and go on after pg_net stops waiting), nor one older than pg_net
--   keeps answers (sync.pg_net_ttl()); pg_net's tables are unlogged, so after a crash a
--   call from before shows unanswered until the function's next call is answered;
-- * a 4xx but 429 (404: not deployed; 401: the key in Vault, or a function deployed to
--   check a JWT), no request made, or no answer from pg_net in 5 minutes is named at
--   once; a 429, a 5xx, a 546 or a failed connection only when the call before it
--   failed too (an isolate killed now and then, a cold start's hiccup, is not an
--   operator's problem; a bad setting fails every call);
-- * no request made is no longer named once a later call of any function was made:
--   Vault's secrets are the same for all.
-- Calls within 5 minutes of pg_net's ttl give no verdict: pg_net prunes an answer by its
-- stamp, which may come before its call's time (below), so the answer of such a call may
-- be gone while the call is not, and it would read as unanswered (found by a review).
-- pg_net's net._http_response has no index on its id: each function's latest 20 calls,
-- and its latest 2 older than 5 minutes (a function called every 10 s whose calls pg_net
-- no longer sends), are joined with the answers created since the oldest of them (less
-- 5 minutes: pg_net stamps an answer with its batch's start, which may come before a
-- short call's), along its index on created.
create function sync.function_problem() returns text
language sql stable set search_path = ''
as $$
  with recursive names (name) as (
    select min(f.function_name) from sync.function_calls f
    union all
    select (select min(f.function_name) from sync.function_calls f where f.function_name > n.name)
    from names n
    where n.name is not null
  ),
  recent as (
    select c.* from names n
    cross join lateral (
      (select f.id, f.function_name, f.called_at, f.request_id, f.problem
       from sync.function_calls f
       where f.function_name = n.name
         and f.called_at > now() - sync.pg_net_ttl() + interval '5 minutes'
       order by f.id desc
       limit 20)
      union
      (select f.id, f.function_name, f.called_at, f.request_id, f.problem
       from sync.function_calls f
       where f.function_name = n.name
         and f.called_at > now() - sync.pg_net_ttl() + interval '5 minutes'
         and f.called_at < now() - interval '5 minutes'
       order by f.id desc
       limit 2)
    ) c
    where n.name is not null
  ),
  answered as (
    select rc.*, r.id is not null as has_answer, r.status_code, r.content,
           coalesce(r.error_msg, case when r.timed_out then 'timed out' end) as error
    from recent rc
    left join net._http_response r
      on r.id = rc.request_id and r.created >= rc.called_at - interval '5 minutes'
         and r.created >= (select min(x.called_at) from recent x) - interval '5 minutes'
  ),
  verdicts as (
    select a.*,
      case
        when a.request_id is null or not a.has_answer then 'hard'
        when a.status_code between 200 and 299 then 'ok'
        when a.status_code is null or a.status_code = 429 or a.status_code >= 500 then 'soft'
        else 'hard'
      end as kind,
      row_number() over (partition by a.function_name order by a.id desc) as nth
    from answered a
    where (a.request_id is null or a.has_answer or a.called_at < now() - interval '5 minutes')
      and not (a.has_answer and a.status_code is null and coalesce(a.error, '') ~* 'time(d)?[ _-]?out')
  )
  select string_agg(case
      when v.request_id is null then format('%s was not called at %s: %s', v.function_name,
        sync.utc_text(v.called_at), v.problem)
      when not v.has_answer then format(
        '%s: its call at %s has no answer after 5 minutes (is pg_net''s worker running? net.http_request_queue holds what it has not sent)',
        v.function_name, sync.utc_text(v.called_at))
      when v.status_code is null then format('%s: its calls failed, the last at %s: %s',
        v.function_name, sync.utc_text(v.called_at), left(coalesce(v.error, 'no answer'), 200))
      else format('%s answered %s to its call at %s: %s', v.function_name, v.status_code,
        sync.utc_text(v.called_at), left(coalesce(nullif(v.content, ''), 'no body'), 200))
    end, '; ' order by v.function_name)
  from verdicts v
  where v.nth = 1
    and case v.kind
          when 'hard' then not (
            v.request_id is null
            and exists (select from sync.function_calls l
                        where l.id > v.id and l.request_id is not null))
          when 'soft' then exists (select from verdicts w
                                   where w.function_name = v.function_name and w.nth = 2
                                     and w.kind <> 'ok' and w.request_id is not null)
          else false
        end
$$;
comment on function sync.function_problem() is
  'The Edge Functions whose calls through sync.call_edge_function fail (their latest verdict; a transient one twice in a row), with when and how; null when none.';

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

-- The pg_cron jobs the migrations schedule (pgTAP 087 holds this list equal to the jobs a
-- fresh push makes): one that is not scheduled any more (cron.unschedule by hand, a
-- restore without pg_cron's tables) is named too, as nothing else shows that it never
-- runs.
create function sync.scheduled_jobs() returns text[]
language sql immutable set search_path = ''
as $$
  select array['sync-collapsed-rereads', 'sync-import-worker', 'sync-reap-stalled-validations',
               'sync-retention', 'sync-retention-superseded', 'sync-stream-check',
               'sync-validate-all', 'sync-validator', 'sync-write-back']
$$;
comment on function sync.scheduled_jobs() is
  'The pg_cron jobs the migrations schedule; sync.scheduler_problem() names one that is not scheduled.';

-- The jobs that read DynamoDB into Supabase, which the cutover pauses (README, "The
-- cutover", step 4, pauses exactly these; "Rolling back" starts them again): from then on
-- Supabase is ahead of DynamoDB on purpose, and each of them would write DynamoDB's state
-- over it, or report it as a mismatch.
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
-- until a later run of it succeeds, each active one whose latest run has not ended 10
-- minutes after it began (every job's run takes seconds, and pg_cron starts one run of a
-- job at a time: "If a second instance is triggered before the first finishes, it's
-- queued", pg_cron's README; a run stuck on a lock or a hung connection stops the job
-- without an error), each paused one, but those of
-- sync.cutover_paused_jobs() once cut over (write_back = 'cutover',
-- 20261128002500_write_back.sql), and each of sync.scheduled_jobs() not scheduled; null
-- when none. The postgres role, which the migrations
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
        sync.utc_text(r.start_time),
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
            else not (j.jobname = any (sync.cutover_paused_jobs()) and sync.cut_over())
          end
    union all
    select format(
      'pg_cron job %s has been %s since %s%s (its runs take seconds, and pg_cron starts no other run of it until this one ends): %s',
      j.jobname, r.status, case when r.start_time is null then 'before ' else '' end,
      sync.utc_text(r.began),
      case when r.job_pid is null then 'it has no backend yet'
           else format('its backend is pid %s in pg_stat_activity', r.job_pid) end)
    from cron.job j
    cross join lateral (
      select d.runid, d.status, d.job_pid, d.start_time,
             -- a run not started yet has no start_time: it was made before any later run
             -- started (run ids grow); when none has (pg_cron starting nothing at all), a
             -- job due at least every minute made it within a minute of its previous
             -- run's end (pg_cron makes a job's next run at its first tick after that)
             coalesce(d.start_time,
                      (select l.start_time from cron.job_run_details l
                       where l.runid > d.runid and l.start_time is not null
                       order by l.runid limit 1),
                      case when j.schedule = '* * * * *' or j.schedule ~ '^[1-5]?[0-9] seconds$'
                           then (select p.end_time + interval '1 minute'
                                 from cron.job_run_details p
                                 where p.jobid = j.jobid and p.runid < d.runid
                                 order by p.runid desc limit 1) end) as began
      from cron.job_run_details d
      where d.jobid = j.jobid
      order by d.runid desc
      limit 1
    ) r
    where j.active and j.jobname like 'sync-%'
      and r.status not in ('succeeded', 'failed')
      and r.began < now() - interval '10 minutes'
    union all
    select format(
      'pg_cron job %s is not scheduled: schedule it again as the migration that adds it does (grep supabase/migrations for %L)',
      n.jobname, n.jobname)
    from unnest(sync.scheduled_jobs()) as n(jobname)
    where not exists (select from cron.job j where j.jobname = n.jobname)
  ) x
$$;
comment on function sync.scheduler_problem() is
  'The project''s pg_cron jobs (sync-*) whose latest run failed, with when and why, those paused (but the cutover''s, once cut over), and those not scheduled; null when none.';
revoke all on function sync.function_problem(), sync.write_back_runs_seen(),
  sync.scheduled_jobs(), sync.cutover_paused_jobs(), sync.scheduler_problem() from public;

-- One row per backfill job (docs/interfaces.md, "SQL"). Replaces
-- 20261128000900_status_views.sql's view: validation runs' Scans are not backfills (their
-- progress shows in public.sync_checksums); an export backfill says so (source 'export':
-- its segments are files, 20261128002300_export_backfills.sql) and how many items its
-- files hold (expected_items, for the ETA); the rate counts from the first segment's
-- start, as an export job's started_at is its read time, minutes before its loading
-- began. And, so that a job no worker claims, or whose workers die, shows more than
-- frozen counts (a helper's review): why it failed (error), and when a worker last worked
-- on it (last_worked_at: a page, a claim, a lease held, a failed attempt, a chunk of its
-- end, sync.backfill_jobs.sweep_state of 20261128003600_sweep_in_chunks.sql; before any,
-- the job's request).
create or replace view sync.backfill_progress as
select
  j.id as job_id,
  j.source_table,
  s.target_table,
  j.status,
  count(g.segment) filter (where g.status = 'done') as segments_done,
  j.total_segments,
  coalesce(sum(g.items_scanned), 0)::bigint as items_scanned,
  coalesce(sum(g.rows_written), 0)::bigint as rows_written,
  j.started_at,
  j.finished_at,
  round(
    coalesce(sum(g.items_scanned), 0)
      / nullif(extract(epoch from coalesce(j.finished_at, now())
                                  - coalesce(min(g.started_at), j.started_at)), 0),
    1
  ) as items_per_second,
  case when j.export_arn is null then 'scan' else 'export' end as source,
  (select sum(f.item_count) from sync.backfill_export_files f where f.job_id = j.id)::bigint
    as expected_items,
  j.error,
  greatest(max(g.updated_at), (j.sweep_state ->> 'at')::timestamptz, j.requested_at)
    as last_worked_at
from sync.backfill_jobs j
join sync.source_tables s on s.source_table = j.source_table
left join sync.backfill_segments g on g.job_id = j.id
where j.checksum_run_id is null
group by j.id, s.target_table;
comment on view sync.backfill_progress is
  'One row per backfill job (a Scan''s or an export''s; not a validation''s): segments done, items scanned, rows written, items a second, an export''s expected items, why it failed, and when a worker last worked on it.';

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
    and not (select sync.cut_over()) as stream_check_overdue,
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

