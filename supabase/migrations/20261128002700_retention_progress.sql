-- Retention that always makes progress and never brings a deleted row back
-- (docs/sync-semantics.md, "Retention"). Replaces 20261128001000_retention.sql's
-- sync.purge_superseded_observations (the same signature) and sync.purge_expired (with a
-- time budget), and
-- takes over 20261128001300_stream_progress.sql's purge of noted stream records:
--
-- 1. The superseded observations of a collapsed table are walked from where the last run
--    stopped (sync.purge_cursors), not from the oldest every run: the observations a row
--    holds are never purged, and once there were more of them than a run walks (a
--    visitor who stopped visiting keeps hers for ever), no run got past them.
-- 2. A tombstone (or deleted observation) is kept while an open dead letter of its key
--    waits: the letter's change, older than the delete, would otherwise bring the row back
--    on its replay once the tombstone was gone. One whose record named no key holds every
--    tombstone of its table recorded after its record's position (the letter may name any
--    key once mended).
-- 3. A running backfill holds its own table's tombstones, not every table's; and one that
--    has made no progress for longer than tombstones are kept fails, saying so, rather
--    than hold them for ever.
-- 4. Noted stream records are purged here along their applied_at index (a batch costs
--    its rows, not the backlog's), whether or not the lost-record check runs.
-- 5. A run is short and frequent (3 s every minute, not 30 s every hour), each kind a
--    batch in turn, so that what it deletes, and a collapsed table's merge lock (its own
--    run's, every minute for 3 s, a table per run), are held a few seconds at most.
-- 6. An ended validation's staging rows (millions for a large table) are deleted here, a
--    batch at a time, not in the statement that ends the run.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- Tombstones and deleted observations are purged table by table, each up to its own
-- cutoff (a running backfill holds its table's): by table and time, an index range that
-- ends at the cutoff, so the rows a backfill holds stay outside every batch's walk (those
-- an open dead letter holds, few, are walked again).
create index tombstones_table_recorded_at_idx on sync.tombstones (target_table, recorded_at);
drop index sync.tombstones_recorded_at_idx;
create index observations_deleted_table_idx on sync.observations (target_table, recorded_at)
  where deleted;
drop index sync.observations_deleted_idx;
-- The open dead letters whose record named no key, by table: few, looked up by every
-- table's purge of its tombstones (dead_letters_open_idx would walk a table's keyed ones).
create index dead_letters_open_unkeyed_idx on sync.dead_letters (target_table, position_at)
  where replayed_at is null and row_key is null;

create table sync.purge_cursors (
  target_table text primary key references sync.source_tables (target_table),
  after_at timestamptz not null,
  after_key jsonb not null,
  after_range numeric not null
);
comment on table sync.purge_cursors is
  'Where the last purge of a collapsed table''s superseded observations stopped (live_since, row key, range key); none once a walk reached the end.';
revoke all on table sync.purge_cursors from public;

insert into sync.settings (key, value, description) values
  ('stream_note_retention', '48 hours',
   'How long the stream records of each applied webhook batch are noted for the lost-record check: past the stream''s 24 h, and one check interval more.');

create or replace function sync.purge_superseded_observations(
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
  after_at timestamptz;
  after_key jsonb;
  after_range numeric;
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
      select o.ctid, o.row_key, o.range_key, o.live_since
      from sync.observations o
      where o.target_table = %1$L and not o.deleted and o.live_since < $1
        and (o.live_since, o.row_key, o.range_key) > ($2, $3, $4)
      order by o.live_since, o.row_key, o.range_key
      limit $5
    ),
    doomed as (
      select s.ctid
      from scanned s
      -- A lateral lookup by the primary key, so that the plan is one index probe per
      -- observation whatever the statistics say about the table's size.
      cross join lateral (
        select t.sync_range_key from public.%2$I t
        where %3$s and %4$s = s.row_key
        limit 1
      ) t
      where s.range_key < t.sync_range_key
        -- Superseded for the whole retention: a live observation after it (the one that
        -- superseded it, or a later one) has been live since before the cutoff
        -- (live_since: a backfill reading it again does not change it). One superseded an
        -- hour ago stays, so that a removal of the newer ones falls back to it rather than
        -- to an older one; an active visitor's history is still purged, a retention after
        -- each of its observations was superseded. It must itself be live since before
        -- the cutoff, so that the walk reads only observations that old (the young ones,
        -- most of an active table, are not walked every run): one a backfill wrote again
        -- after it was purged (its item lives on) stays a retention more.
        -- (`is false`, not `not`: the probe goes by the primary key, never the live
        -- observations' partial index.)
        and exists (
          select from sync.observations n
          where n.target_table = %1$L and n.row_key = s.row_key and n.range_key > s.range_key
            and n.deleted is false and n.live_since < $1
        )
    ),
    purged as (
      -- By ctid alone, a TID scan: the merges of the table wait for this transaction,
      -- so nothing changed these observations since they were read.
      delete from sync.observations o
      where o.ctid = any (array(select d.ctid from doomed d))
      returning 1
    ),
    last_scanned as (
      select s.live_since, s.row_key, s.range_key from scanned s
      order by s.live_since desc, s.row_key desc, s.range_key desc
      limit 1
    )
    select (select count(*) from scanned), (select count(*) from purged),
           l.live_since, l.row_key, l.range_key
    from (select) as one
    left join last_scanned l on true
    $sql$, p_target, p_target, key_match, sync.key_json_sql(p_target, 't'));

  -- Waited for only until the run's deadline for the table (tried every 50 ms): behind a
  -- long merge (an export's chunk) a plain wait would pass the statement timeout and lose
  -- everything the run purged. A table still busy then is left to the next run.
  while not pg_try_advisory_xact_lock(hashtext('sync.merge_changes'), hashtext(p_target)) loop
    if clock_timestamp() >= p_deadline then
      removed := 0;
      complete := false;
      return next;
      return;
    end if;
    perform pg_sleep(0.05);
  end loop;
  -- Where the last run stopped, or the start.
  select c.after_at, c.after_key, c.after_range into after_at, after_key, after_range
  from sync.purge_cursors c where c.target_table = p_target;
  if not found then
    after_at := '-infinity'::timestamptz;
    after_key := 'null'::jsonb;
    after_range := 0;
  end if;
  removed := 0;
  for i in 1 .. p_max_batches loop
    exit when clock_timestamp() >= p_deadline;
    execute statement into scanned, purged, after_at, after_key, after_range
      using p_cutoff, after_at, after_key, after_range, p_batch;
    removed := removed + purged;
    if scanned < p_batch then
      -- The walk reached the end: the next run starts again from the oldest.
      delete from sync.purge_cursors c where c.target_table = p_target;
      complete := true;
      return next;
      return;
    end if;
  end loop;
  insert into sync.purge_cursors (target_table, after_at, after_key, after_range)
  values (p_target, after_at, after_key, after_range)
  on conflict (target_table) do update
    set after_at = excluded.after_at, after_key = excluded.after_key,
        after_range = excluded.after_range;
  complete := false;
  return next;
end
$fn$;

-- A backfill that has made no progress for longer than tombstones are kept (its workers
-- stopped: an export loader killed and never run again, a Scan backfill whose function
-- is not deployed) fails, saying so: otherwise it would hold its table's tombstones for
-- ever (sync.purge_expired_batch). Resumed after that long it could not be trusted
-- anyway. Its end's walk (sync.backfill_jobs.sweep_state, added by
-- 20261128003600_sweep_in_chunks.sql, stamped at each chunk) is progress too: a long
-- table's end may outlast the retention. Returns the jobs it failed.
create function sync.fail_stalled_backfills() returns jsonb
language plpgsql set search_path = ''
as $fn$
declare
  stalled jsonb;
begin
  with stalled_jobs as (
    update sync.backfill_jobs j
    set status = 'failed', finished_at = now(),
        error = format('no progress since %s, longer than tombstones are kept (tombstone_retention, %s): its workers stopped; start the backfill again',
                       to_char(p.at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
                       (select s.value from sync.settings s where s.key = 'tombstone_retention'))
    from (
      -- A job waiting for an older one of its table (sync.scan_waits_for_older) is not
      -- stalled: the older one's own test fails it, and this one counts from its end.
      select j2.id, greatest(sync.backfill_ready_since(j2),
               (select max(s.updated_at) from sync.backfill_segments s where s.job_id = j2.id),
               (j2.sweep_state ->> 'at')::timestamptz) as at
      from sync.backfill_jobs j2
      where j2.status in ('pending', 'running') and j2.checksum_run_id is null
        and not sync.scan_waits_for_older(j2)
    ) p
    where j.id = p.id and p.at < now() - sync.retention_setting('tombstone_retention')
      and j.status in ('pending', 'running')
    returning j.id, j.source_table
  )
  select coalesce(jsonb_agg(jsonb_build_object('job', s.id, 'table', s.source_table)), '[]')
  into stalled from stalled_jobs s;
  return stalled;
end
$fn$;
comment on function sync.fail_stalled_backfills() is
  'Fails the backfills without progress for longer than tombstone_retention, naming when they stopped; returns them.';

-- One batch of one kind of what outlived its retention: about p_batch rows at most, oldest
-- first along an index, whatever the table's size; `complete` once the kind has nothing
-- more. A statement of 5,000 expired rows took about 30 ms on a 2-core machine.
create function sync.purge_expired_batch(p_kind text, p_batch integer)
returns table (removed bigint, complete boolean)
language plpgsql set search_path = ''
-- Batches walk their index oldest first and stop at the LIMIT, however stale the
-- statistics (see sync.purge_superseded_observations). A small table with no index for
-- the walk (public.sync_checksums by status) is then costed as if huge, which made
-- Postgres compile the statement (JIT): 100 ms for a batch that found nothing, every minute.
set enable_seqscan = off set enable_bitmapscan = off set jit = off
as $fn$
declare
  setting text;
  cutoff timestamptz;
  jobs bigint[];
  staging text;
  held_since timestamptz;
  unkeyed_since timestamptz;
  purged_table text;
  table_cutoff timestamptz;
  m bigint;
  n bigint := 0;
begin
  -- Each kind's period (none for the staging of ended validations, which outlives nothing).
  setting := case p_kind
      when 'webhook_deliveries' then 'webhook_id_retention'
      when 'cron_history' then 'cron_history_retention'
      when 'dead_letters' then 'dead_letter_retention'
      when 'sync_checksums' then 'checksum_run_retention'
      when 'backfill_jobs' then 'backfill_job_retention'
      when 'tombstones' then 'tombstone_retention'
      when 'deleted_observations' then 'observation_retention'
      -- The stream keeps a record 24 hours; the lost-record check looks back at most one
      -- check interval (3 hours) further.
      when 'stream_notes' then 'stream_note_retention'
      when 'write_backs' then 'write_back_retention'
    end;
  if setting is null and p_kind is distinct from 'validation_staging' then
    raise exception 'sync.purge_expired_batch: % is not a kind of retention', p_kind
      using errcode = '22023';
  end if;
  if setting is not null then
    cutoff := now() - sync.retention_setting(setting);
  end if;
  case p_kind
  when 'webhook_deliveries' then
    with doomed as (
      select w.webhook_id from sync.webhook_deliveries w
      where w.received_at < cutoff order by w.received_at limit p_batch
    ), purged as (
      delete from sync.webhook_deliveries w using doomed d
      where w.webhook_id = d.webhook_id and w.received_at < cutoff
      returning 1
    )
    select count(*) into n from purged;
  when 'cron_history' then
    -- Every job's history: the heartbeat's runs are most of it. runid grows with time,
    -- so the oldest runs come first along the primary key: the batch reads the oldest
    -- p_batch dated runs and deletes, up to the last of them past the cutoff, those past
    -- it and the undated ones (a run pg_cron marked failed at a restart before it started
    -- keeps no time: older than a run after it, and never dated, it would otherwise sit
    -- at the head of every batch for good; found by a review). (Filtered by time, with no
    -- index on it, a run that found few to delete read the whole week's history.)
    with oldest as (
      select r.runid, coalesce(r.end_time, r.start_time) < cutoff as expired
      from cron.job_run_details r
      where coalesce(r.end_time, r.start_time) is not null
      order by r.runid limit p_batch
    ), purged as (
      delete from cron.job_run_details r
      where r.runid <= (select max(o.runid) from oldest o where o.expired)
        and (coalesce(r.end_time, r.start_time) < cutoff
             or coalesce(r.end_time, r.start_time) is null)
      returning 1
    )
    select count(*) into n from purged;
  when 'dead_letters' then
    -- Replayed ones only: an open dead letter waits for its fix however old it is. One
    -- seen again since (its record failed again: a backfill's end spares its key while
    -- it is, sync.sweep_unseen_chunk) is kept until that too is old.
    with doomed as (
      select dl.id from sync.dead_letters dl
      where dl.replayed_at < cutoff and dl.last_seen_at < cutoff
      order by dl.replayed_at limit p_batch
      for update skip locked
    ), purged as (
      delete from sync.dead_letters dl using doomed d
      where dl.id = d.id and dl.replayed_at < cutoff and dl.last_seen_at < cutoff
      returning 1
    )
    select count(*) into n from purged;
  when 'sync_checksums' then
    -- Finished runs only (a running one is the validator's), and never the latest run or
    -- the latest done run of a table: sync.status shows them. Nor one whose staging rows
    -- are not gone yet (validation_staging, below): they would go with it, by its
    -- foreign keys and trigger, in one statement, a million rows a run of a large table.
    with doomed as (
      select c.id from public.sync_checksums c
      where c.status in ('done', 'failed') and c.started_at < cutoff
        and not exists (select from sync.checksum_items x where x.run_id = c.id)
        and not exists (select from sync.checksum_seen x where x.run_id = c.id)
        and not exists (select from sync.checksum_divergent x where x.run_id = c.id)
        and not exists (select from sync.checksum_unmappable x where x.run_id = c.id)
        and c.id <> (select l.id from public.sync_checksums l
                     where l.target_table = c.target_table
                     order by l.started_at desc, l.id desc limit 1)
        and c.id is distinct from (select l.id from public.sync_checksums l
                                   where l.target_table = c.target_table and l.status = 'done'
                                   order by l.started_at desc, l.id desc limit 1)
      order by c.id limit p_batch
    ), purged as (
      delete from public.sync_checksums c using doomed d
      where c.id = d.id and c.status in ('done', 'failed') returning 1
    )
    select count(*) into n from purged;
  when 'backfill_jobs' then
    -- Finished jobs, except the latest of each table and one a stale table still points
    -- at. Their segments first, p_batch at a time (a job has up to a million, too many to
    -- go with it in one statement), then the jobs left with none.
    jobs := array(
      select j.id from sync.backfill_jobs j
      where j.status in ('done', 'failed', 'cancelled') and j.finished_at < cutoff
        and j.id <> (select l.id from sync.backfill_jobs l
                     where l.source_table = j.source_table
                     order by l.requested_at desc, l.id desc limit 1)
        and not exists (select from sync.table_state ts where ts.backfill_job_id = j.id)
      order by j.id limit p_batch);
    with purged as (
      delete from sync.backfill_segments s
      where s.ctid = any (array(
          select x.ctid from unnest(jobs) d(id)
          cross join lateral (select x.ctid from sync.backfill_segments x where x.job_id = d.id
                              limit p_batch) x
          limit p_batch))
      returning 1
    )
    select count(*) into n from purged;
    if n < p_batch then
      with purged as (
        delete from sync.backfill_jobs j
        where j.id = any (jobs) and j.status in ('done', 'failed', 'cancelled')
          and not exists (select from sync.backfill_segments s where s.job_id = j.id)
        returning 1
      )
      select n + count(*) into n from purged;
    end if;
  when 'tombstones', 'deleted_observations' then
    -- Table by table, each up to its own cutoff. A backfill page read before a delete and
    -- written after its tombstone was purged would bring the row back, so nothing of a
    -- table deleted after the start of its oldest running backfill loses its tombstone
    -- (or its deleted observation); one table's long backfill holds no other table's. (A
    -- validation run's Scan writes no row, so it holds nothing.) From ten minutes before
    -- that start: an export's started_at is its read time, on DynamoDB's clock, and a
    -- tombstone's recorded_at is on this database's, so a delete just after the read
    -- time could be recorded before it and go (found by a review of the clocks). And kept
    -- while an open dead letter of its key waits for a replay: the letter's change, older
    -- than the delete, would otherwise bring the row back when it is replayed. An open
    -- letter whose record named no key (its keys could not be read) may name any key of
    -- its table once an admin mends the record, and its replay stands where the record
    -- stood: nothing of the table deleted after that position (ten minutes before it, as
    -- the two clocks differ; all of it when the letter has none) loses its tombstone while
    -- it waits. A deleted observation is its own tombstone; no row holds it.
    for purged_table in select st.target_table from sync.source_tables st
                        order by st.target_table loop
      exit when n >= p_batch;
      select min(j.started_at) - interval '10 minutes' into held_since
      from sync.backfill_jobs j
      join sync.source_tables st on st.source_table = j.source_table
      where st.target_table = purged_table and j.status = 'running'
        and j.checksum_run_id is null;
      select min(coalesce(dl.position_at, '-infinity')) - interval '10 minutes'
      into unkeyed_since
      from sync.dead_letters dl
      where dl.target_table = purged_table and dl.row_key is null and dl.replayed_at is null;
      table_cutoff := least(cutoff, coalesce(held_since, 'infinity'),
                            coalesce(unkeyed_since, 'infinity'));
      if p_kind = 'tombstones' then
        with purged as (
          delete from sync.tombstones t
          where t.ctid = any (array(
              select x.ctid from sync.tombstones x
              where x.target_table = purged_table and x.recorded_at < table_cutoff
                and not exists (select from sync.dead_letters dl
                                where dl.target_table = x.target_table
                                  and dl.row_key = x.row_key and dl.replayed_at is null)
              order by x.target_table, x.recorded_at limit p_batch - n
              for update skip locked))
            and (t.recorded_at < table_cutoff) is true
          returning 1
        )
        select count(*) into m from purged;
      else
        with purged as (
          delete from sync.observations o
          where o.ctid = any (array(
              select x.ctid from sync.observations x
              where x.deleted and x.target_table = purged_table
                and x.recorded_at < table_cutoff
                and not exists (select from sync.dead_letters dl
                                where dl.target_table = x.target_table
                                  and dl.row_key = x.row_key and dl.replayed_at is null)
              order by x.target_table, x.recorded_at limit p_batch - n
              for update skip locked))
            and (o.deleted and o.recorded_at < table_cutoff) is true
          returning 1
        )
        select count(*) into m from purged;
      end if;
      n := n + m;
    end loop;
  when 'stream_notes' then
    -- Every stream's, not only the current one's (a replaced stream's, a table whose
    -- check keeps failing). Along their applied_at index: a batch walks its own rows and
    -- stops at the cutoff, however long the backlog and the notes kept.
    with purged as (
      delete from sync.stream_batches_applied b
      where b.ctid = any (array(
          select x.ctid from sync.stream_batches_applied x
          where x.applied_at < cutoff order by x.applied_at limit p_batch))
        and (b.applied_at < cutoff) is true
      returning 1
    )
    select count(*) into n from purged;
  when 'write_backs' then
    -- Ended ones (applied, conflict, failed) by their last change; never a pending one,
    -- nor one whose restore is due (20261128003500_write_back_restores.sql).
    with doomed as (
      select w.id from sync.write_backs w
      where w.status <> 'pending' and not w.restore_due and w.updated_at < cutoff
      order by w.updated_at limit p_batch
    ), purged as (
      delete from sync.write_backs w using doomed d
      where w.id = d.id and w.status <> 'pending' and not w.restore_due
      returning 1
    )
    select count(*) into n from purged;
  when 'validation_staging' then
    -- The rows a validation run staged, once it ended (done or failed): sync.end_validation
    -- leaves them here, as a run of a large table staged millions (a key each in
    -- sync.checksum_seen), too many to delete in the statement that ends it. Each ended
    -- run's rows along its run's index; a request of the run still writing when it ended
    -- leaves rows the next batch takes.
    foreach staging in array array['checksum_seen', 'checksum_items', 'checksum_divergent',
                                   'checksum_unmappable'] loop
      exit when n >= p_batch;
      execute format($sql$
        with purged as (
          delete from sync.%1$I s
          where s.ctid = any (array(
              select x.ctid from public.sync_checksums c
              cross join lateral (select x.ctid from sync.%1$I x where x.run_id = c.id
                                  limit $1) x
              where c.status in ('done', 'failed')
              limit $1))
          returning 1
        )
        select count(*) from purged
        $sql$, staging)
      into m using p_batch - n;
      n := n + m;
    end loop;
  end case;
  return query select n, n < p_batch;
end
$fn$;
comment on function sync.purge_expired_batch(text, integer) is
  'Deletes at most p_batch rows of one kind that outlived its retention in sync.settings (or of ended validations'' staging, kind validation_staging); returns how many and whether the kind has nothing more.';

-- Retention's run: the stalled backfills failed, then every kind a batch at a time, in
-- turn (each pass a batch of each kind not yet complete, so that no kind's backlog holds
-- back the others), starting no batch after p_budget but the first pass's. pg_cron runs
-- it every minute with 3 s, so that the rows it deletes are held a few seconds at most (a merge that must
-- write a tombstone or a webhook id being purged waits that long), not the 30 s an hourly
-- run took. It keeps up: on a 2-core machine one run deleted 400,000 expired rows
-- (tombstones and webhook ids) in 2.3 s, about 30 ms a batch; a run with nothing to
-- delete takes about 20 ms.
-- (A procedure could commit after each batch, but not with a fixed search_path: a SET
-- clause forbids its commits, and Supabase's security advisor flags any routine without
-- one.) The superseded observations are purged apart (sync.purge_superseded_turn).
drop function sync.purge_expired();
create function sync.purge_expired(p_budget interval default '30 seconds') returns jsonb
language plpgsql set search_path = ''
as $fn$
declare
  deadline constant timestamptz := clock_timestamp() + p_budget;
  stalled jsonb;
  pending text[] := array['webhook_deliveries', 'cron_history', 'dead_letters', 'sync_checksums',
                          'backfill_jobs', 'tombstones', 'deleted_observations', 'stream_notes',
                          'write_backs', 'validation_staging'];
  kind text;
  n bigint;
  kind_complete boolean;
  first_pass boolean := true;
  result jsonb;
begin
  stalled := sync.fail_stalled_backfills();
  result := (select jsonb_object_agg(k, 0) from unnest(pending) k);
  -- The first pass takes a batch of every kind whatever the time, so that no kind whose
  -- turn comes late in the pass waits behind another's slow batches run after run.
  while cardinality(pending) > 0 and (first_pass or clock_timestamp() < deadline) loop
    foreach kind in array pending loop
      exit when not first_pass and clock_timestamp() >= deadline;
      -- Staging rows are unlogged and many (a key each): ten times the batch.
      select b.removed, b.complete into n, kind_complete
      from sync.purge_expired_batch(kind, case kind when 'validation_staging' then 50000
                                               else 5000 end) b;
      result := jsonb_set(result, array[kind], to_jsonb((result ->> kind)::bigint + n));
      if kind_complete then
        pending := array_remove(pending, kind);
      end if;
    end loop;
    first_pass := false;
  end loop;
  return result || jsonb_build_object('incomplete', to_jsonb(pending))
    || case when jsonb_array_length(stalled) > 0
         then jsonb_build_object('stalled_backfills_failed', stalled) else '{}'::jsonb end;
end
$fn$;
comment on function sync.purge_expired(interval) is
  'Deletes, in batches for about p_budget, what outlived its retention in sync.settings; returns the rows removed per kind, the kinds left incomplete, and the stalled backfills it failed.';

-- The superseded observations of one collapsed table, for about p_budget, in a
-- transaction of their own: the purge takes the table's merge lock (waited for until the
-- deadline, sync.purge_superseded_observations) and holds nothing else, so the table's
-- merges wait for it that long at most and no other table's wait at all. (Taken inside
-- sync.purge_expired, the lock was waited for while that run held the rows it had
-- deleted, which a merge of the table's batch could be waiting on: a review reproduced an
-- 8.5 s stall that Postgres could not see as a deadlock.)
create function sync.purge_superseded(p_target text, p_budget interval default '10 seconds')
returns jsonb
language plpgsql set search_path = ''
set enable_seqscan = off set enable_bitmapscan = off
as $fn$
declare
  n bigint;
  complete boolean;
begin
  select p.removed, p.complete into n, complete
  from sync.purge_superseded_observations(p_target,
         now() - sync.retention_setting('observation_retention'), 5000, 50,
         clock_timestamp() + p_budget) p;
  insert into sync.superseded_purge_turns (target_table, purged_at) values (p_target, now())
  on conflict (target_table) do update set purged_at = excluded.purged_at;
  return jsonb_build_object('table', p_target, 'superseded_observations', n,
                            'complete', complete);
end
$fn$;
comment on function sync.purge_superseded(text, interval) is
  'Deletes, for about p_budget, the observations of a collapsed table superseded for longer than observation_retention; returns the table, how many, and whether its walk reached the end.';

-- When each collapsed table's superseded observations were last purged: the turn goes to
-- the one purged longest ago (never first).
create table sync.superseded_purge_turns (
  target_table text primary key references sync.source_tables (target_table),
  purged_at timestamptz not null
);
revoke all on table sync.superseded_purge_turns from public;

-- pg_cron's turn: the collapsed table purged longest ago, one per run, every minute for
-- 3 s (each of two collapsed tables every other minute, however many the registry has).
-- Empty when no table is collapsed.
create function sync.purge_superseded_turn() returns jsonb
language sql set search_path = ''
as $$
  select coalesce((
    select sync.purge_superseded(s.target_table, '3 seconds')
    from sync.source_tables s
    left join sync.superseded_purge_turns t on t.target_table = s.target_table
    where s.collapsed
    order by t.purged_at nulls first, s.target_table
    limit 1), '{}'::jsonb)
$$;
comment on function sync.purge_superseded_turn() is
  'Purges, for 3 s, the superseded observations of the collapsed table whose turn it is (sync.purge_superseded).';
revoke all on function sync.fail_stalled_backfills(), sync.purge_expired_batch(text, integer),
  sync.purge_expired(interval), sync.purge_superseded(text, interval),
  sync.purge_superseded_turn() from public;

-- Replaces 20261128001000_retention.sql's hourly run of 30 s.
select cron.schedule('sync-retention', '* * * * *', 'select sync.purge_expired(''3 seconds'')');
select cron.schedule('sync-retention-superseded', '* * * * *', 'select sync.purge_superseded_turn()');
