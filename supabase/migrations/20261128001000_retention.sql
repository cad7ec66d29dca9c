-- Retention: nothing the sync keeps grows without bound (docs/sync-semantics.md, "Deletes
-- leave tombstones"; README, "Retention"). Tombstones and deleted or superseded
-- observations are kept past the stream's 24 h retention (48 h by default), then purged;
-- replayed dead letters after 30 days; pg_cron's history after 7 days; accepted
-- webhook-ids after twice the signature's 300 s window. Each period is a row of
-- sync.settings, read at every run:
--
--   update sync.settings set value = '72 hours' where key = 'tombstone_retention';
--
-- sync.purge_expired() deletes in bounded batches (an indexed time column, a LIMIT per
-- statement, a bounded number of statements and a time budget per run), so that a run
-- stays well under the hosted 2-minute statement timeout however much has piled up;
-- what is left is taken by the next hourly run.

insert into sync.settings (key, value, description) values
  ('tombstone_retention', '48 hours',
   'How long a tombstone (a deleted key of a plain table) is kept: past the stream''s 24 h retention, and never while a backfill that started before it runs.'),
  ('observation_retention', '48 hours',
   'How long deleted observations, and live observations superseded by the one a collapsed row holds, are kept.'),
  ('dead_letter_retention', '30 days',
   'How long a replayed dead letter is kept after its replay; open dead letters are never purged.'),
  ('cron_history_retention', '7 days',
   'How long pg_cron keeps the history of job runs (cron.job_run_details).'),
  ('webhook_id_retention', '10 minutes',
   'How long an accepted webhook-id is kept against replays: at least twice the 300 s signature window.'),
  ('backfill_job_retention', '30 days',
   'How long a finished backfill job and its segments are kept; the latest of each table is always kept.'),
  ('checksum_run_retention', '30 days',
   'How long a finished checksum validator run (public.sync_checksums) is kept; the latest run and the latest done run of each table are always kept.');

-- A retention period from sync.settings, with an error naming the setting and the cause
-- when it is missing or not a usable interval.
create function sync.retention_setting(p_key text) returns interval
language plpgsql stable set search_path = ''
as $$
declare
  raw text;
  period interval;
begin
  select s.value into raw from sync.settings s where s.key = p_key;
  if not found then
    raise exception 'sync.purge_expired: sync.settings has no row %; insert it again (README, "Retention")', p_key
      using errcode = '22023';
  end if;
  begin
    period := raw::interval;
  exception when invalid_datetime_format or datetime_field_overflow or interval_field_overflow then
    raise exception 'sync.purge_expired: sync.settings % = % is not an interval (e.g. ''48 hours'')',
      p_key, quote_literal(raw)
      using errcode = '22023';
  end;
  if period < interval '0' then
    raise exception 'sync.purge_expired: sync.settings % = % is negative', p_key, quote_literal(raw)
      using errcode = '22023';
  end if;
  -- A webhook-id dropped while its signed request could still be accepted (a timestamp
  -- up to 300 s ahead stays valid for 600 s) would let that request be replayed.
  if p_key = 'webhook_id_retention' and period < interval '10 minutes' then
    raise exception 'sync.purge_expired: sync.settings webhook_id_retention = % is shorter than 10 minutes, twice the webhook''s 300 s signature window, so a captured request could be replayed',
      quote_literal(raw) using errcode = '22023';
  end if;
  return period;
end
$$;
comment on function sync.retention_setting(text) is
  'A retention period from sync.settings; names the setting when it is missing, not an interval or too short.';

-- Purges the live observations of one collapsed table that the row no longer needs:
-- those with a smaller range key than the observation the row holds (sync_range_key),
-- recorded before p_cutoff, of a row last written before p_cutoff (synced_at: the row is
-- rewritten whenever it takes another observation, so the held one has held it for the
-- whole retention, past the stream's 24 h in which a late delete of it may still come).
-- The held observation itself is never purged, nor a live observation of a key without
-- a row, so no row changes.
--
-- What a purge gives up: if the held observation is removed later (the source deletes
-- that item), the merge falls back to the latest live observation it still has. Once the
-- older ones are purged there is none, and the row goes away although the source still
-- has older items of that key; the validator reports the key missing, and a backfill or
-- the validator's repair restores the row from the source through the merge.
--
-- Merges of the table are held off (the merge's own advisory lock) until the caller's
-- transaction ends: a merge that removed the held observation at the same time could
-- otherwise fall back to an observation this purge deletes. The table's live
-- observations are walked in recorded_at order with a cursor, p_batch at a time.
create function sync.purge_superseded_observations(
  p_target text, p_cutoff timestamptz, p_batch integer, p_max_batches integer,
  p_deadline timestamptz
) returns table (removed bigint, complete boolean)
language plpgsql set search_path = ''
-- Each batch must walk the index in order from its cursor: with statistics from before
-- the table grew, the planner would rather read every match and sort it, every batch.
set enable_seqscan = off set enable_bitmapscan = off
as $fn$
declare
  key_match text;
  statement text;
  after_at timestamptz := '-infinity'::timestamptz;
  after_key jsonb := 'null'::jsonb;
  after_range numeric := 0;
  scanned bigint;
  purged bigint;
begin
  select string_agg(format('t.%I = (s.row_key ->> %L)::%s', k.name, k.name,
                           format_type(a.atttypid, a.atttypmod)), ' and ')
    into key_match
  from sync.source_tables st
  cross join lateral unnest(st.key_columns) as k(name)
  join pg_attribute a on a.attrelid = format('public.%I', st.target_table)::regclass
                     and a.attname = k.name
  where st.target_table = p_target and st.collapsed;
  if key_match is null then
    raise exception 'sync.purge_superseded_observations: % is not a collapsed target table', p_target
      using errcode = '22023';
  end if;
  statement := format($sql$
    with scanned as (
      select o.ctid, o.row_key, o.range_key, o.recorded_at
      from sync.observations o
      where o.target_table = %1$L and not o.deleted and o.recorded_at < $1
        and (o.recorded_at, o.row_key, o.range_key) > ($2, $3, $4)
      order by o.recorded_at, o.row_key, o.range_key
      limit $5
    ),
    doomed as (
      select s.ctid
      from scanned s
      -- A lateral lookup by the primary key, so that the plan is one index probe per
      -- observation whatever the statistics say about the table's size.
      cross join lateral (
        select t.sync_range_key, t.synced_at from public.%2$I t
        where %3$s and %4$s = s.row_key
        limit 1
      ) t
      where s.range_key < t.sync_range_key and t.synced_at < $1
    ),
    purged as (
      -- By ctid alone, a TID scan: the merges of the table wait for this transaction,
      -- so nothing changed these observations since they were read.
      delete from sync.observations o
      where o.ctid = any (array(select d.ctid from doomed d))
      returning 1
    ),
    last_scanned as (
      select s.recorded_at, s.row_key, s.range_key from scanned s
      order by s.recorded_at desc, s.row_key desc, s.range_key desc
      limit 1
    )
    select (select count(*) from scanned), (select count(*) from purged),
           l.recorded_at, l.row_key, l.range_key
    from (select) as one
    left join last_scanned l on true
    $sql$, p_target, p_target, key_match, sync.key_json_sql(p_target, 't'));

  perform pg_advisory_xact_lock(hashtext('sync.merge_changes'), hashtext(p_target));
  removed := 0;
  for i in 1 .. p_max_batches loop
    exit when clock_timestamp() >= p_deadline;
    execute statement into scanned, purged, after_at, after_key, after_range
      using p_cutoff, after_at, after_key, after_range, p_batch;
    removed := removed + purged;
    if scanned < p_batch then
      complete := true;
      return next;
      return;
    end if;
  end loop;
  complete := false;
  return next;
end
$fn$;

-- Deletes what has expired, kind by kind, in batches; returns the rows removed per kind
-- and, under "incomplete", the kinds that stopped at the run's bounds (the next run goes
-- on with them). Each kind deletes by its indexed time column, oldest first, and
-- re-checks the condition on the row it deletes, so that a row a merge refreshed
-- meanwhile stays. The big kinds delete by ctid (a TID scan), whatever the planner's
-- statistics say about tables that grew since they were last analyzed; their re-check
-- is written `(...) is true` so that it stays a filter on those rows and never becomes
-- an index condition that would test every row of the index against the batch.
create function sync.purge_expired() returns jsonb
language plpgsql set search_path = ''
-- Batches walk their index oldest first and stop at the LIMIT, however stale the
-- statistics (see sync.purge_superseded_observations).
set enable_seqscan = off set enable_bitmapscan = off
as $fn$
declare
  -- Rows per statement and statements per kind: a statement of 5,000 rows takes about
  -- half a second on a busy 2-core machine, whatever the table's size (an index range
  -- and a TID scan). No statement starts after the time budget, so a run ends within
  -- about 31 s, far from the hosted 2-minute statement timeout; the superseded
  -- observations of each collapsed table get at most 10 s of it, as they hold off that
  -- table's merges until the run ends.
  batch constant integer := 5000;
  max_batches constant integer := 50;
  deadline constant timestamptz := clock_timestamp() + interval '30 seconds';
  kinds constant text[] := array['webhook_deliveries', 'cron_history', 'dead_letters',
    'sync_checksums', 'backfill_jobs', 'tombstones', 'deleted_observations'];
  kind text;
  cutoff timestamptz;
  oldest_running_backfill timestamptz;
  n bigint;
  total bigint;
  finished boolean;
  removed jsonb := '{}'::jsonb;
  incomplete text[] := '{}'::text[];
  collapsed_table text;
begin
  -- A backfill page read before a delete and written after its tombstone was purged
  -- would bring the row back, so nothing deleted after the start of the oldest running
  -- backfill loses its tombstone (or its deleted observation).
  select min(j.started_at) into oldest_running_backfill
  from sync.backfill_jobs j where j.status = 'running';

  foreach kind in array kinds loop
    cutoff := now() - sync.retention_setting(case kind
      when 'webhook_deliveries' then 'webhook_id_retention'
      when 'cron_history' then 'cron_history_retention'
      when 'dead_letters' then 'dead_letter_retention'
      when 'sync_checksums' then 'checksum_run_retention'
      when 'backfill_jobs' then 'backfill_job_retention'
      when 'tombstones' then 'tombstone_retention'
      when 'deleted_observations' then 'observation_retention'
    end);
    if kind in ('tombstones', 'deleted_observations') then
      cutoff := least(cutoff, coalesce(oldest_running_backfill, 'infinity'));
    end if;
    total := 0;
    finished := false;
    for i in 1 .. max_batches loop
      exit when clock_timestamp() >= deadline;
      case kind
      when 'webhook_deliveries' then
        with doomed as (
          select w.webhook_id from sync.webhook_deliveries w
          where w.received_at < cutoff order by w.received_at limit batch
        ), purged as (
          delete from sync.webhook_deliveries w using doomed d
          where w.webhook_id = d.webhook_id and w.received_at < cutoff
          returning 1
        )
        select count(*) into n from purged;
      when 'cron_history' then
        -- Every job's history: the heartbeat's runs are most of it. runid grows with
        -- time, so the oldest runs come first along the primary key.
        with doomed as (
          select r.runid from cron.job_run_details r
          where coalesce(r.end_time, r.start_time) < cutoff order by r.runid limit batch
        ), purged as (
          delete from cron.job_run_details r using doomed d
          where r.runid = d.runid returning 1
        )
        select count(*) into n from purged;
      when 'dead_letters' then
        -- Replayed ones only: an open dead letter waits for its fix however old it is.
        with doomed as (
          select dl.id from sync.dead_letters dl
          where dl.replayed_at < cutoff order by dl.replayed_at limit batch
        ), purged as (
          delete from sync.dead_letters dl using doomed d
          where dl.id = d.id and dl.replayed_at < cutoff returning 1
        )
        select count(*) into n from purged;
      when 'sync_checksums' then
        -- Finished runs only (a running one is the validator's), and never the latest
        -- run or the latest done run of a table: sync.status shows them.
        with doomed as (
          select c.id from public.sync_checksums c
          where c.status in ('done', 'failed') and c.started_at < cutoff
            and c.id <> (select l.id from public.sync_checksums l
                         where l.target_table = c.target_table
                         order by l.started_at desc, l.id desc limit 1)
            and c.id is distinct from (select l.id from public.sync_checksums l
                                       where l.target_table = c.target_table and l.status = 'done'
                                       order by l.started_at desc, l.id desc limit 1)
          order by c.id limit batch
        ), purged as (
          delete from public.sync_checksums c using doomed d
          where c.id = d.id and c.status in ('done', 'failed') returning 1
        )
        select count(*) into n from purged;
      when 'backfill_jobs' then
        -- Finished jobs (their segments go with them), except the latest of each table
        -- and one a stale table still points at. A job holds up to a million segments,
        -- so fewer jobs go per statement.
        with doomed as (
          select j.id from sync.backfill_jobs j
          where j.status in ('done', 'failed', 'cancelled') and j.finished_at < cutoff
            and j.id <> (select l.id from sync.backfill_jobs l
                         where l.source_table = j.source_table
                         order by l.requested_at desc, l.id desc limit 1)
            and not exists (select from sync.table_state ts where ts.backfill_job_id = j.id)
          order by j.id limit batch / 100
        ), purged as (
          delete from sync.backfill_jobs j using doomed d
          where j.id = d.id and j.status in ('done', 'failed', 'cancelled') returning 1
        )
        select count(*) into n from purged;
      when 'tombstones' then
        with purged as (
          delete from sync.tombstones t
          where t.ctid = any (array(
              select x.ctid from sync.tombstones x
              where x.recorded_at < cutoff order by x.recorded_at limit batch))
            and (t.recorded_at < cutoff) is true
          returning 1
        )
        select count(*) into n from purged;
      when 'deleted_observations' then
        -- A deleted observation is its own tombstone; no row holds it.
        with purged as (
          delete from sync.observations o
          where o.ctid = any (array(
              select x.ctid from sync.observations x
              where x.deleted and x.recorded_at < cutoff order by x.recorded_at limit batch))
            and (o.deleted and o.recorded_at < cutoff) is true
          returning 1
        )
        select count(*) into n from purged;
      end case;
      total := total + n;
      if n < (case kind when 'backfill_jobs' then batch / 100 else batch end) then
        finished := true;
        exit;
      end if;
    end loop;
    removed := removed || jsonb_build_object(kind, total);
    if not finished then
      incomplete := incomplete || kind;
    end if;
  end loop;

  -- Last, as it holds off the table's merges until this transaction ends.
  cutoff := now() - sync.retention_setting('observation_retention');
  total := 0;
  finished := true;
  for collapsed_table in
    select s.target_table from sync.source_tables s where s.collapsed order by s.target_table
  loop
    select p.removed, finished and p.complete into n, finished
    from sync.purge_superseded_observations(collapsed_table, cutoff, batch, max_batches,
                                            least(deadline, clock_timestamp() + interval '10 seconds')) p;
    total := total + n;
  end loop;
  removed := removed || jsonb_build_object('superseded_observations', total);
  if not finished then
    incomplete := incomplete || 'superseded_observations'::text;
  end if;

  return removed || jsonb_build_object('incomplete', to_jsonb(incomplete));
end
$fn$;
comment on function sync.purge_expired() is
  'Deletes, in bounded batches, what outlived its retention in sync.settings; returns the rows removed per kind.';

revoke all on function sync.retention_setting(text),
  sync.purge_superseded_observations(text, timestamptz, integer, integer, timestamptz),
  sync.purge_expired() from public;

-- Hourly, off the full hour that other jobs crowd.
select cron.schedule('sync-retention', '23 * * * *', 'select sync.purge_expired()');
