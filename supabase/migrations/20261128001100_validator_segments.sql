-- One resumable scan for the backfill and the validator (docs/sync-semantics.md,
-- "Verification"; docs/interfaces.md, "data-checksum-validator").
--
-- Until now a validation run kept its Scan checkpoints in a jsonb (sync_checksums.
-- scan_state) written by one request at a time, and a request killed mid-way (the Edge
-- Runtime's CPU limit) left its run 'running' for ever. Now a validation run scans on the
-- backfill's own machinery: a sync.backfill_jobs row that belongs to the run
-- (checksum_run_id), its leased segments, sync.claim_segment, sync.checkpoint_segment
-- (committed in the transaction that stages the page; redefined for validation runs in
-- 20261128002300_export_backfills.sql and 20261128001800_backfill_turns.sql), release and
-- lease expiry. The
-- steps after the Scan (compare, recheck, report, repair) hold a lease on the run row
-- and checkpoint too: the compare works in slices of keys, one statement per slice.
-- A killed request is resumed by the next call or by the pg_cron tick.
--
-- Functions of 20261128000500_backfill.sql and 20261128000600_validator.sql that must
-- know about validation runs are replaced here (create or replace, or drop and create
-- where the signature grows); each is defined here from now on.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- A job scans either for a backfill (checksum_run_id null) or for a validation run.
alter table sync.backfill_jobs
  add column checksum_run_id bigint unique references public.sync_checksums (id) on delete cascade;
comment on column sync.backfill_jobs.checksum_run_id is
  'The validation run this Scan stages for (null: a backfill that writes through the merge).';

-- The run's steps, their checkpoint and the lease of the steps after the Scan; queued
-- runs wait for a slot (sync.validate_all staggers). scan_state is gone: the segments
-- keep the checkpoints.
alter table public.sync_checksums drop constraint sync_checksums_status_check;
alter table public.sync_checksums
  add constraint sync_checksums_status_check check (status in ('queued', 'running', 'done', 'failed')),
  add column phase text not null default 'scan'
    check (phase in ('scan', 'compare', 'recheck', 'report', 'repair', 'done')),
  add column compare_after jsonb,
  add column looks integer not null default 0,
  add column compared_at timestamptz,
  add column lease_owner text,
  add column lease_expires_at timestamptz,
  add column revalidation_run_id bigint references public.sync_checksums (id) on delete set null,
  add column healing_backfill_job_id bigint,
  drop column scan_state;
-- ON DELETE SET NULL of the run a re-validation follows looks it up by this column.
create index sync_checksums_revalidation_idx on public.sync_checksums (revalidation_run_id);
comment on column public.sync_checksums.phase is
  'Where the run is: scan (its segments), compare (slices of keys), recheck, report, repair, done.';
comment on column public.sync_checksums.compare_after is
  'The compare''s checkpoint: {"expected": key} after a slice of a staged run''s expected rows, {"target": key} after a slice of the target''s rows (the key last compared; null: the side''s start); null before the first slice.';
comment on column public.sync_checksums.looks is 'Rechecks of the divergent keys done so far (at most 3).';
comment on column public.sync_checksums.compared_at is
  'When the compare began: the divergences were seen after it, and a repair reads the source later.';
comment on column public.sync_checksums.lease_owner is
  'The request doing the run''s steps after the Scan; another takes over when the lease lapses.';
comment on column public.sync_checksums.revalidation_run_id is
  'For a run that repaired: the run that validated the table again afterwards.';
comment on column public.sync_checksums.healing_backfill_job_id is
  'For a repair with more divergent keys than it re-reads one by one: the backfill (sync.backfill_jobs) that heals the table instead.';
comment on column public.sync_checksums.missing is
  'Keys expected but not in the target (while the run compares: the slices compared so far).';

-- Settings that are whole numbers carry their bounds, set by the migration that adds the
-- setting (one place for each): a value out of them is refused in the statement that
-- writes it, naming the setting, its value and the range (sync.check_bounded_setting,
-- below), as a retention setting is (20261128003200_retention_floor.sql), and such a row
-- cannot be deleted. Before, a bad value was found only by its readers: a pg_cron job
-- that failed every minute, a function that answered 500, every validation stopped (a
-- helper's review).
alter table sync.settings
  add column min_value bigint,
  add column max_value bigint,
  add constraint settings_bounds check ((min_value is null) = (max_value is null)
                                        and (min_value is null or min_value <= max_value));
comment on column sync.settings.min_value is
  'For a whole-number setting: the least value it may take (with max_value); null for the others.';
comment on column sync.settings.max_value is
  'For a whole-number setting: the greatest value it may take (with min_value); null for the others.';

-- p_raw as a whole number from p_min to p_max, or an error (22023) naming the setting,
-- its value and the range, rather than a run that never ends (a slice of 0 rows never
-- moves on) or a cast error naming nothing.
create function sync.whole_number_setting(p_key text, p_raw text, p_min bigint, p_max bigint)
returns bigint
language plpgsql immutable set search_path = ''
as $$
begin
  if p_raw is not null and p_raw ~ '^\s*-?\d{1,18}\s*$' then
    if p_raw::bigint between p_min and p_max then
      return p_raw::bigint;
    end if;
  end if;
  raise exception 'sync.settings % = % is not a whole number from % to %; set it again (update sync.settings set value = ''...'' where key = %)',
    p_key, coalesce(quote_literal(p_raw), 'missing'), p_min, p_max, quote_literal(p_key)
    using errcode = '22023';
end
$$;

-- A whole-number setting of sync.settings, within the bounds its row carries; an error
-- naming it when the row is missing, has no bounds, or (its check bypassed) is out of them.
create function sync.integer_setting(p_key text)
returns integer
language plpgsql stable set search_path = ''
as $$
declare
  s sync.settings;
begin
  select * into s from sync.settings x where x.key = p_key;
  if not found or s.min_value is null then
    raise exception 'sync.settings has no whole-number setting % (a row with min_value and max_value); set its bounds again (update sync.settings set min_value = ..., max_value = ... where key = %), as the migration that added it did',
      quote_literal(p_key), quote_literal(p_key) using errcode = '22023';
  end if;
  return sync.whole_number_setting(p_key, s.value, s.min_value, s.max_value)::integer;
end
$$;

-- Checks a whole-number setting as it is written, and keeps it from being deleted.
create function sync.check_bounded_setting() returns trigger
language plpgsql set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    if old.min_value is not null then
      raise exception 'sync.settings % cannot be deleted: it is read as a whole number from % to %; set its value instead',
        old.key, old.min_value, old.max_value using errcode = '22023';
    end if;
    return old;
  end if;
  if new.min_value is not null then
    perform sync.whole_number_setting(new.key, new.value, new.min_value, new.max_value);
  end if;
  return new;
end
$$;
create trigger settings_bounded_checked
  before insert or update or delete on sync.settings
  for each row execute function sync.check_bounded_setting();
revoke all on function sync.whole_number_setting(text, text, bigint, bigint),
  sync.integer_setting(text), sync.check_bounded_setting() from public;

insert into sync.settings (key, value, description, min_value, max_value) values
  ('validation_concurrency', '2',
   'How many validation runs scan at once; sync.validate_all queues the others.', 1, 100),
  ('validation_lease_seconds', '60',
   'How long a request holds a validation run''s steps after the Scan without checkpointing (at least 30: a look renews it every 20 s, validator_looks.ts).',
   30, 3600);

-- sync.backfill_work_pending, which leaves validation runs' Scans out, is defined in
-- 20261128003600_sweep_in_chunks.sql.

-- 20261128000500's claim_segment(text) goes: 20261128002300_export_backfills.sql defines
-- claim_segment(text, bigint), which with p_run claims a segment of that validation
-- -- run's Scan; 20261128001800_backfill_turns.sql defines sync.checkpoint_segment, whose
-- last segment of a validation run's Scan moves the run on to its compare instead of
-- sweeping. Each is defined only there. Until both are pushed no segment can be claimed,
-- so no Scan ends through the released version, which sweeps.
drop function sync.claim_segment(text);

-- sync.start_validation, sync.compare_checksum_range and sync.end_validation are defined
-- in 20261128001600_validator_streaming.sql, beside the streamed comparison they start,
-- finish and clean up after.

-- Takes the lease of a run's steps after the Scan. Returns the run's phase: 'scan' (its
-- segments have leases of their own; no run lease is taken), the step now leased to
-- p_worker, or null when the run is not running, another request holds it, or it waits
-- for a backfill of its table (sync.validation_waits_for_backfill,
-- 20261128003000_validations_wait_for_backfills.sql).
create function sync.claim_validation(p_run bigint, p_worker text) returns text
language plpgsql set search_path = ''
as $$
declare
  claimed text;
  taken integer;
  target text;
begin
  update public.sync_checksums c
  set lease_owner = case when c.phase = 'scan' then c.lease_owner else p_worker end,
      lease_expires_at = case when c.phase = 'scan' then c.lease_expires_at
        else now() + make_interval(secs => sync.integer_setting('validation_lease_seconds')) end,
      takeovers = case
        when c.phase = 'scan' or c.lease_owner is null or c.lease_owner = p_worker then c.takeovers
        when c.taken_over_at is null or c.progress_at > c.taken_over_at then 1
        else c.takeovers + 1 end,
      taken_over_at = case
        when c.phase = 'scan' or c.lease_owner is null or c.lease_owner = p_worker then c.taken_over_at
        else now() end
  where c.id = p_run and c.status = 'running'
    and (c.phase = 'scan' or c.lease_owner is null or c.lease_owner = p_worker
         or c.lease_expires_at < now())
    and not sync.validation_waits_for_backfill(c.id)
  returning c.phase, c.takeovers, c.target_table into claimed, taken, target;
  if claimed is not null and claimed <> 'scan' and taken >= 5 then
    perform sync.end_validation(p_run, 'failed', format(
      'validation run %s of %s: its %s step was taken over %s times in a row with no progress between: each request that held it stopped without giving it back (killed at the Edge Runtime''s CPU, memory or wall-clock limit, say); see the data-checksum-validator''s logs',
      p_run, target, claimed, taken));
    return null;
  end if;
  return claimed;
end
$$;

-- Gives a run's steps back (the request's budget ran out); the next request goes on.
create function sync.release_validation(p_run bigint, p_worker text) returns void
language sql set search_path = ''
as $$
  update public.sync_checksums set lease_owner = null, lease_expires_at = null
  where id = p_run and lease_owner = p_worker
$$;

-- Checks, in the transaction of a step's checkpoint, that p_worker still holds the run;
-- else raises SY001 (the lost lease), which rolls the step back.
create function sync.hold_validation(p_run bigint, p_worker text) returns void
language plpgsql set search_path = ''
as $$
begin
  update public.sync_checksums
  set progress_at = now(),
      lease_expires_at = now() + make_interval(secs => sync.integer_setting('validation_lease_seconds'))
  where id = p_run and status = 'running' and lease_owner = p_worker;
  if not found then
    raise exception 'validation run %: request % no longer holds it; another took over',
      p_run, p_worker using errcode = 'SY001';
  end if;
end
$$;

-- A table's key in SQL, for a statement about one table (format()'s text): its key columns
-- of p_alias, comma-separated in the key's order (the primary key's), e.g. `t.pk, t.sk`;
-- with p_json, the same key read from that JSON row key (e.g. `{"pk": .., "sk": ..}`),
-- each column as its own type. `row(<columns>) = row(<from the JSON>)` finds a key's row
-- by the primary key, `row(..) > row(..)` the rows after it, in the index's order.
create function sync.key_columns_sql(p_target text, p_alias text, p_json text default null)
returns text
language sql stable set search_path = ''
as $$
  select string_agg(
    case when p_json is null then format('%s.%I', p_alias, k.name)
         else format('(%s ->> %L)::%s', p_json, k.name, format_type(a.atttypid, a.atttypmod)) end,
    ', ' order by k.ordinality)
  from sync.source_tables s
  cross join lateral unnest(s.key_columns) with ordinality as k(name, ordinality)
  join pg_catalog.pg_attribute a
    on a.attrelid = format('public.%I', s.target_table)::regclass and a.attname = k.name
  where s.target_table = p_target
$$;
revoke all on function sync.key_columns_sql(text, text, text) from public;

-- Replaces 20261128000600's compare_checksum(bigint, text, integer): the same comparison
-- restricted to buckets p_first .. p_last (all when null), or to the keys p_keys (a JSON
-- array of row keys; the rechecks). Counts are those of the range. Each call is one
-- statement over a range, so at 100x the report's volume none nears the hosted
-- 2-minute statement timeout (docs/sync-semantics.md, "Verification").
drop function sync.compare_checksum(bigint, text, integer);
create function sync.compare_checksum(
  p_run bigint, p_target text, p_buckets integer default 256,
  p_first integer default 0, p_last integer default null, p_keys jsonb default null
)
returns table (kind text, row_key jsonb, expected_rows bigint, target_rows bigint,
               seen_at timestamptz)
language plpgsql set search_path = ''
as $fn$
begin
  for kind, row_key, expected_rows, target_rows in execute format($sql$
    with expected as (
      -- Collapsed tables: the observation with the largest range key (then rank) is the row.
      select distinct on (i.row_key) i.row_key, i.digest
      from sync.checksum_items i
      where i.run_id = $1
        and ((hashtext(i.row_key::text)::bigint & 2147483647) %% $2) between $3 and $4
        %4$s
      order by i.row_key, i.range_key desc nulls last, i.rank desc
    ),
    target as (%3$s),
    expected_buckets as (
      select ((hashtext(row_key::text)::bigint & 2147483647) %% $2) as bucket,
             md5(string_agg(row_key::text || digest, ',' order by row_key::text)) as sum
      from expected group by 1
    ),
    target_buckets as (
      select ((hashtext(row_key::text)::bigint & 2147483647) %% $2) as bucket,
             md5(string_agg(row_key::text || digest, ',' order by row_key::text)) as sum
      from target group by 1
    ),
    differing as (
      select coalesce(e.bucket, t.bucket) as bucket
      from expected_buckets e full join target_buckets t using (bucket)
      where e.sum is distinct from t.sum
    ),
    divergent as (
      select case when t.row_key is null then 'missing'
                  when e.row_key is null then 'unexpected'
                  else 'different' end as kind,
             coalesce(e.row_key, t.row_key) as row_key
      from (select * from expected
            where ((hashtext(row_key::text)::bigint & 2147483647) %% $2) in (select bucket from differing)) e
      full join (select * from target
                 where ((hashtext(row_key::text)::bigint & 2147483647) %% $2) in (select bucket from differing)) t
        using (row_key)
      where e.digest is distinct from t.digest
    )
    select d.kind, d.row_key, (select count(*) from expected) as expected_rows,
           (select count(*) from target) as target_rows
    from divergent d
    union all
    -- Always one row carrying the counts, even when nothing diverges.
    select null, null, (select count(*) from expected), (select count(*) from target)
    order by 1 nulls last, 2
    $sql$, p_target, sync.key_json_sql(p_target, 't'),
    case when p_keys is null then format($t$
      select k.row_key, sync.canonical_digest(to_jsonb(t)) as digest
      from public.%1$I t cross join lateral (select %2$s as row_key) k
      where ((hashtext(k.row_key::text)::bigint & 2147483647) %% $2) between $3 and $4
      $t$, p_target, sync.key_json_sql(p_target, 't'))
    else format($t$
      -- The keys asked for (a look's few), each found by the table's primary key: the
      -- whole table read for them took 3.8 s at 100x the report's volume, four times a
      -- look (found by a review of the statements at scale).
      select k.row_key, sync.canonical_digest(to_jsonb(t)) as digest
      from (select distinct x as asked from jsonb_array_elements($5) x) a
      cross join lateral (select * from public.%1$I t where row(%3$s) = row(%4$s) limit 1) t
      cross join lateral (select %2$s as row_key) k
      where ((hashtext(k.row_key::text)::bigint & 2147483647) %% $2) between $3 and $4
      $t$, p_target, sync.key_json_sql(p_target, 't'), sync.key_columns_sql(p_target, 't'),
      sync.key_columns_sql(p_target, 't', 'a.asked'))
    end,
    -- The keys asked for, through the staged rows' index by key (checksum_items_run_key_latest_idx,
    -- 20261128001600_validator_streaming.sql).
    case when p_keys is null then ''
         else 'and i.row_key = any (array(select jsonb_array_elements($5)))' end)
  using p_run, p_buckets, p_first, coalesce(p_last, p_buckets - 1), p_keys
  loop
    seen_at := now();
    return next;
  end loop;
end
$fn$;

-- Starts queued runs while fewer than validation_concurrency scan at once (oldest
-- first; a run waiting for a backfill scans nothing), calling the validator for each.
-- Returns how many started.
create function sync.start_queued_validations() returns integer
language plpgsql set search_path = ''
as $$
declare
  slots integer;
  started integer := 0;
  r bigint;
begin
  -- One caller at a time decides, so two ending runs do not both fill the same slot.
  perform pg_advisory_xact_lock(hashtext('sync.start_queued_validations'));
  -- A run that waits for a backfill of its table (sync.validation_waits_for_backfill,
  -- 20261128003000_validations_wait_for_backfills.sql) reads nothing: it takes no slot.
  slots := sync.integer_setting('validation_concurrency')
           - (select count(*) from public.sync_checksums c
              where c.status = 'running' and not sync.validation_waits_for_backfill(c.id));
  for r in
    select id from public.sync_checksums where status = 'queued'
    order by started_at, id limit greatest(slots, 0)
  loop
    update public.sync_checksums set status = 'running', started_at = now(), progress_at = now()
    where id = r;
    perform sync.call_edge_function('data-checksum-validator', jsonb_build_object('runId', r), 60000);
    started := started + 1;
  end loop;
  return started;
end
$$;

-- The validator's heartbeat: starts queued runs that have a slot, and calls the
-- validator for every running run that waits for a request (in its Scan, a segment
-- pending or its lease lapsed while no segment is leased live: a request holding one
-- claims the pending ones as its lanes free up, one request scanning a run; a later step
-- unleased or its lease lapsed), so a killed request is resumed; not for one that waits
-- for a backfill of its table (the backfill's end calls it). Returns how many runs it
-- called. (Calling a run a request is scanning, as every 10 s on hosted, added a request
-- that shared the isolate's budget with it, or took its segments away from it.)
create function sync.wake_validations() returns integer
language plpgsql set search_path = ''
as $$
declare
  r bigint;
  calls integer := 0;
begin
  perform sync.start_queued_validations();
  for r in
    select c.id from public.sync_checksums c
    where c.status = 'running'
      and case when c.phase = 'scan' then exists (
            select from sync.backfill_jobs j join sync.backfill_segments s on s.job_id = j.id
            where j.checksum_run_id = c.id
              and (s.status = 'pending' or (s.status = 'running' and s.lease_expires_at < now())))
            and not exists (
            select from sync.backfill_jobs j join sync.backfill_segments s on s.job_id = j.id
            where j.checksum_run_id = c.id
              and s.status = 'running' and s.lease_expires_at >= now())
          else c.lease_owner is null or c.lease_expires_at < now() end
      and not sync.validation_waits_for_backfill(c.id)
  loop
    perform sync.call_edge_function('data-checksum-validator', jsonb_build_object('runId', r), 60000);
    calls := calls + 1;
  end loop;
  return calls;
end
$$;

-- The schedule of the sync's sweeps: every 10 seconds where pg_cron can (1.5 and later,
-- as on hosted Supabase), else every minute (Debian's 1.4).
create function sync.sweep_schedule() returns text
language sql stable set search_path = ''
as $$
  select case when string_to_array(split_part(e.extversion, '-', 1), '.')::int[] >= array[1, 5]
              then '10 seconds' else '* * * * *' end
  from pg_catalog.pg_extension e where e.extname = 'pg_cron'
$$;
revoke all on function sync.sweep_schedule() from public;

select cron.schedule('sync-validator', sync.sweep_schedule(), 'select sync.wake_validations()');

-- Replaces 20261128000600's: a stalled run is one that staged or compared nothing for
-- p_after and that nobody can resume (the heartbeat calls the validator for any run
-- whose leases lapsed, so this is a run whose requests keep failing), and that does not
-- wait for a backfill of its table (however long that takes). It is failed,
-- naming when it stopped and why its Scan last gave up (a table throttled for good),
-- through sync.end_validation (its staging rows then go by retention).
create or replace function sync.reap_stalled_validations(p_after interval default '15 minutes')
returns integer
language plpgsql set search_path = ''
as $$
declare
  r public.sync_checksums;
  reaped integer := 0;
begin
  for r in
    select c.* from public.sync_checksums c
    where c.status = 'running' and coalesce(c.progress_at, c.started_at) < now() - p_after
      and not (c.lease_expires_at is not null and c.lease_expires_at > now())
      -- A segment leased live is a request at work, unless its attempts keep ending
      -- without a page (sync.segment_gives_up): a page that kills its isolate every time
      -- is taken over within seconds of each lease's end, so the lease is live most of
      -- the time and the run would wait hours for a moment between two.
      and not exists (
        select from sync.backfill_jobs j join sync.backfill_segments s on s.job_id = j.id
        where j.checksum_run_id = c.id and s.status = 'running' and s.lease_expires_at > now()
          and s.updated_at >= now() - p_after
          and not sync.segment_gives_up(s.takeovers, s.failing_since))
      and not sync.validation_waits_for_backfill(c.id)
  loop
    perform sync.end_validation(r.id, 'failed',
      format('stopped making progress at %s%s',
             to_char(coalesce(r.progress_at, r.started_at) at time zone 'UTC',
                     'YYYY-MM-DD HH24:MI:SS "UTC"'),
             -- Why its Scan last gave up (functions-shared/segment_scan.ts keeps it on the
             -- segment it gave back), if it did.
             coalesce('; its Scan last gave up: ' || (
               select s.error from sync.backfill_jobs j
               join sync.backfill_segments s on s.job_id = j.id
               where j.checksum_run_id = r.id and s.error is not null and s.status <> 'done'
               order by s.updated_at desc limit 1), '')));
    reaped := reaped + 1;
  end loop;
  return reaped;
end
$$;

-- Replaces 20261128000600's: queues one run per table and starts as many as
-- validation_concurrency allows; the others start as earlier ones end, so the daily
-- validation never scans every table (8 segments each) at once. A table whose run is
-- still queued or running gets no second one: two runs of a table would read it twice
-- over, each at the whole read budget, and a day's runs that never got a slot would pile
-- up behind the next day's. Returns the runs queued. (A table has one run at a time,
-- sync_checksums_one_active_run: a run started by hand between the look and the start is
-- that table's run today, not a failure of the others'.)
create or replace function sync.validate_all() returns integer
language plpgsql set search_path = ''
as $$
declare
  queued integer := 0;
  t text;
begin
  for t in
    select s.target_table from sync.source_tables s
    where not exists (select from public.sync_checksums c
                      where c.target_table = s.target_table
                        and c.status in ('queued', 'running'))
    order by s.target_table
  loop
    begin
      perform sync.start_validation(t, false, 8, 1000, true);
      queued := queued + 1;
    exception when sqlstate 'SY006' then
      null;
    end;
  end loop;
  perform sync.start_queued_validations();
  return queued;
end
$$;

revoke all on function sync.claim_validation(bigint, text), sync.release_validation(bigint, text),
  sync.hold_validation(bigint, text),
  sync.compare_checksum(bigint, text, integer, integer, integer, jsonb),
  sync.start_queued_validations(), sync.wake_validations() from public;

-- sync.backfill_progress, which leaves validation runs' Scans out (their progress shows
-- in public.sync_checksums), is defined in 20261128005200_status.sql.
