-- A backfill's end removes what it did not see in chunks, each a statement of bounded
-- size, instead of in the statement of its last page (docs/sync-semantics.md, "A
-- backfill ends equal").
--
-- Until now sync.sweep_unseen read the whole target table (and, for a collapsed table,
-- its observations) in the last page's statement, built one jsonb of every unseen key
-- and merged them all there. A healing backfill after mass deletes at a hundred times the
-- report's size (millions of unseen rows) passed the hosted 2-minute statement timeout
-- or jsonb's 256 MB, the last page rolled back, and every retry failed the same way: the
-- job failed after its attempts and the table stayed stale. The merge lock was held
-- meanwhile, stalling the table's stream merges.
--
-- Now the sweep walks the table by blocks of its heap (a TID range scan, `ctid` between
-- two block numbers: Postgres 14 and later), p_blocks at a time (16 MB by default), each
-- chunk one statement that merges the chunk's unseen keys as deletes and moves the job's
-- sweep_state, up to the heap's last block when its walk began. A row the sync updates or
-- inserts during the sweep may move to a block already walked, or past that end: either
-- way it was written after the job's start, so it is not unseen. (An admin's edit keeps
-- the row's sync_changed_at: an unseen row it moves is left, and the edit's write-back,
-- finding the item gone, ends by putting the row back to the source's state, removed.) (A VACUUM FULL or CLUSTER of
-- the table during a sweep moves every row: rows it should remove may then be left, for
-- the daily validation to find.) A collapsed table's observations are walked first
-- (the shared sync.observations heap, its rows filtered by table), then its rows. The
-- last page's statement runs chunks for up to 5 seconds (backfill_end_inline_ms: a table
-- of the report's size ends there, as before); what is left is run by the import-worker between its Scans
-- (sync.claim_sweep), or by the export command, a chunk a statement. The job stays running
-- until the sweep is over, then is done with rows_removed summed over the chunks, and its
-- table is no longer stale.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

alter table sync.backfill_jobs add column sweep_state jsonb;
insert into sync.settings (key, value, description, min_value, max_value) values
  ('backfill_end_inline_ms', '5000',
   'How long the last page''s statement of a backfill runs its end''s chunks (0 to 60000 ms); the workers run the rest, a chunk a statement.',
   0, 60000);
comment on column sync.backfill_jobs.sweep_state is
  'While a backfill''s end removes what it did not see: the heap it walks (phase: observations, then rows; or rows), the next block and the last (block, end), when a chunk last ran (at), the worker that holds it and until when (owner, expires), failures in a row and the last one''s cause (failures, error). Null before; null once done.';

-- The start of a sweep's walk of one heap: its phase, block 0, and its last block now.
create function sync.sweep_walk(p_phase text, p_heap regclass) returns jsonb
language sql volatile set search_path = ''
as $$
  select jsonb_build_object('phase', p_phase, 'block', 0,
    'end', (pg_relation_size(p_heap) + current_setting('block_size')::bigint - 1)
           / current_setting('block_size')::bigint,
    'at', now())
$$;

-- One chunk of a backfill's end: the target table's (or the observations') rows in the
-- next p_blocks blocks that the Scan did not see, removed with tombstones through the one
-- merge (the same test as 20261128000500's sync.sweep_unseen, which this replaces, applied
-- to the chunk, but for dead letters). A key is kept for a dead letter only when this
-- backfill met its item again (one of its pages recorded the letter: a Scan's letter,
-- positioned at or after the job's first read), the item then alive but unmappable; any
-- other open letter keeps nothing, since the Scan not seeing its key means the item is
-- gone (a poison change, then a delete whose record was lost: the row must go, or the
-- table stays unequal to its source with its stale mark cleared). A stream letter seen
-- again during the backfill (a retried batch, a replay) says nothing of the item now: a
-- review found it kept such a row when the letter's last sighting was the test.
-- Returns whether the sweep is over,
-- the job then done. With p_worker, the
-- worker must hold the sweep (sync.claim_sweep; SY001 otherwise), and its lease is
-- renewed; the last page's statement and the export command pass none.
create function sync.sweep_unseen_chunk(p_job bigint, p_blocks integer default 2048,
  p_worker text default null)
returns boolean
-- It holds its job's row while it waits for the table's merge lock: behind an export's
-- chunks of the same table (each up to the 2-minute statement timeout) the wait could
-- outlast the statement timeout, a failure counted against the job, five of which fail
-- it. After 30 s it gives up instead (55P03: lost to another, given back, not counted).
language plpgsql set search_path = '' set lock_timeout = '30s'
as $fn$
declare
  job sync.backfill_jobs;
  spec sync.source_tables;
  start_at timestamptz;
  cutoff timestamptz;
  phase text;
  first_block bigint;
  next_block bigint;
  changes jsonb;
  removed bigint := 0;
  over boolean := false;
begin
  if p_blocks is null or p_blocks < 1 then
    raise exception 'sync.sweep_unseen_chunk(%): p_blocks must be 1 or more, not %', p_job, p_blocks
      using errcode = '22023';
  end if;
  select j.* into job from sync.backfill_jobs j where j.id = p_job for update;
  if job.id is null or job.status not in ('pending', 'running') or job.sweep_state is null then
    return true;
  end if;
  if p_worker is not null and job.sweep_state ->> 'owner' is distinct from p_worker then
    raise exception 'backfill job %: worker % no longer holds its end; another worker took it over',
      p_job, p_worker using errcode = 'SY001';
  end if;
  select s.* into spec from sync.source_tables s where s.source_table = job.source_table;
  -- The job's earliest page's stamp (DynamoDB's clock; sync.backfill_read_from,
  -- 20261128004000_scan_stamps_from_dynamodb.sql): a row a page saw is stamped no earlier
  -- than that page, or kept a stream change at most the granularity older. What is older
  -- than that, less the granularity, was not seen; its delete is positioned there too, so
  -- a stream change after any page's read wins over it.
  start_at := sync.backfill_read_from(job);
  cutoff := start_at
            - (select value::interval from sync.settings where key = 'stream_clock_granularity');
  phase := job.sweep_state ->> 'phase';
  first_block := (job.sweep_state ->> 'block')::bigint;
  next_block := least(first_block + p_blocks, (job.sweep_state ->> 'end')::bigint);
  if phase = 'observations' then
    -- Live observations older than the cutoff, each as the delete of that observation.
    select jsonb_agg(jsonb_build_object('op', 'delete', 'row', o.row_key, 'seq', null,
             'changed_at', start_at, 'source', 'backfill', 'range_key', o.range_key,
             'rank', 0))
    into changes
    from sync.observations o
    where o.ctid >= format('(%s,0)', first_block)::tid
      and o.ctid < format('(%s,0)', next_block)::tid
      and o.target_table = spec.target_table and not o.deleted and o.sync_changed_at < cutoff
      and not exists (
        select from sync.dead_letters d
        where d.target_table = spec.target_table and d.row_key = o.row_key
          and d.position_source = 'backfill' and d.position_at >= start_at);
  else
    -- Rows older than the cutoff, each as its delete; a collapsed table's as the delete of
    -- the observation it shows (one written here some other way has no live observation).
    execute format($sql$
      select jsonb_agg(jsonb_build_object('op', 'delete', 'row', x.row_key, 'seq', null,
               'changed_at', $1, 'source', 'backfill') || x.observation)
      from (select %2$s as row_key, %3$s as observation from public.%1$I t
            where t.ctid >= format('(%%s,0)', $3)::tid and t.ctid < format('(%%s,0)', $4)::tid
              and t.sync_changed_at < $2) x
      where not exists (
        select from sync.dead_letters d
        where d.target_table = %1$L and d.row_key = x.row_key
          and d.position_source = 'backfill' and d.position_at >= $1)
      $sql$, spec.target_table, sync.key_json_sql(spec.target_table, 't'),
      case when spec.collapsed
           then $o$jsonb_build_object('range_key', t.sync_range_key, 'rank', 0)$o$
           else $o$'{}'::jsonb$o$ end)
    into changes using start_at, cutoff, first_block, next_block;
  end if;
  if changes is not null then
    select m.deleted into removed from sync.merge_changes(spec.target_table, changes) m;
  end if;
  -- At the walk's end: the next heap, or the sweep's end.
  if next_block >= (job.sweep_state ->> 'end')::bigint then
    if phase = 'observations' then
      job.sweep_state := sync.sweep_walk('rows', format('public.%I', spec.target_table)::regclass);
    else
      over := true;
    end if;
  else
    job.sweep_state := job.sweep_state || jsonb_build_object('block', next_block);
  end if;
  -- Its progress, for a validation waiting on the table; a chunk that passed ends a
  -- series of failures; the holder's lease renewed.
  job.sweep_state := (job.sweep_state - 'failures' - 'error')
    || jsonb_build_object('at', now())
    || case when p_worker is null then '{}'::jsonb
            else jsonb_build_object('owner', p_worker, 'expires', now() + interval '2 minutes') end;
  update sync.backfill_jobs j
  set rows_removed = coalesce(j.rows_removed, 0) + coalesce(removed, 0),
      sweep_state = case when over then null else job.sweep_state end,
      status = case when over then 'done' else j.status end,
      finished_at = case when over then now() else j.finished_at end
  where j.id = p_job;
  if over then
    -- The table is whole again (the stale reason stays as a record of what happened).
    update sync.table_state set stale_since = null where backfill_job_id = p_job;
  end if;
  return over;
end
$fn$;
comment on function sync.sweep_unseen_chunk(bigint, integer, text) is
  'One chunk of a backfill''s end: removes, with tombstones, the rows (and observations) in the next p_blocks blocks that its Scan did not see and that are older than its start; true when the sweep is over and the job done.';

-- Whether a Scan backfill's end is left to the workers and nobody holds it (its lease
-- free, or run out). A validation run's Scan never sweeps, and an export backfill's end
-- is its command's.
create function sync.sweep_waiting() returns boolean
language sql stable set search_path = ''
as $$
  select exists (
    select from sync.backfill_jobs j
    where j.sweep_state is not null and j.status = 'running' and j.checksum_run_id is null
      and j.export_arn is null
      and coalesce((j.sweep_state ->> 'expires')::timestamptz, '-infinity') < now())
$$;

-- Takes the end of a Scan backfill left to the workers, the oldest first, for p_worker
-- for 2 minutes (each chunk renews it); null when none waits. With p_idle, only an end
-- whose last chunk ran longer ago than that (an import-worker run's start takes one
-- chunk of such an end, functions-shared/backfill_worker.ts).
create function sync.claim_sweep(p_worker text, p_idle interval default '0 seconds')
returns bigint
language sql set search_path = ''
as $$
  update sync.backfill_jobs j
  set sweep_state = j.sweep_state
        || jsonb_build_object('owner', p_worker, 'expires', now() + interval '2 minutes')
  where j.id = (
    select c.id from sync.backfill_jobs c
    where c.sweep_state is not null and c.status = 'running' and c.checksum_run_id is null
      and c.export_arn is null
      and coalesce((c.sweep_state ->> 'expires')::timestamptz, '-infinity') < now()
      and coalesce((c.sweep_state ->> 'at')::timestamptz, '-infinity') <= now() - p_idle
    order by c.id
    limit 1
    for update skip locked)
  returning j.id
$$;

-- Gives a sweep back (the worker's budget ran out): the next worker takes it at once.
create function sync.release_sweep(p_job bigint, p_worker text) returns void
language sql set search_path = ''
as $$
  update sync.backfill_jobs j
  set sweep_state = j.sweep_state - 'owner' - 'expires'
  where j.id = p_job and j.sweep_state ->> 'owner' = p_worker
$$;

-- A chunk of p_worker's sweep failed with p_cause: counted; the fifth in a row fails the
-- job, naming the cause (a chunk that fails every time must not be tried for ever).
-- Returns whether the job failed. The sweep is given back either way.
create function sync.note_sweep_failure(p_job bigint, p_worker text, p_cause text)
returns boolean
language plpgsql set search_path = ''
as $$
declare
  failures integer;
begin
  update sync.backfill_jobs j
  set sweep_state = (j.sweep_state - 'owner' - 'expires')
        || jsonb_build_object('failures', coalesce((j.sweep_state ->> 'failures')::int, 0) + 1,
                              'error', p_cause)
  where j.id = p_job and j.status = 'running' and j.sweep_state ->> 'owner' = p_worker
  returning (j.sweep_state ->> 'failures')::int into failures;
  if coalesce(failures, 0) < 5 then
    return false;
  end if;
  update sync.backfill_jobs
  set status = 'failed', finished_at = now(),
      error = format('its end (removing the rows its Scan did not see) failed %s times in a row: %s',
                     failures, p_cause)
  where id = p_job;
  return true;
end
$$;

-- Replaces 20261128000500_backfill.sql's: only Scan backfills wait for the import-worker
-- (not validation runs' Scans, nor export backfills), and not one that waits for an
-- older backfill of its table (sync.scan_waits_for_older, 20261128002300); a sweep left
-- to the workers is work too.
create or replace function sync.backfill_work_pending() returns boolean
language sql stable set search_path = ''
as $$
  select exists (
    select from sync.backfill_segments s
    join sync.backfill_jobs j on j.id = s.job_id
    where j.status in ('pending', 'running') and j.checksum_run_id is null
      and j.export_arn is null
      and (s.status = 'pending' or (s.status = 'running' and s.lease_expires_at < now()))
      and not sync.scan_waits_for_older(j))
    or sync.sweep_waiting()
$$;

-- Whether validation run p_run waits for a backfill of its table
-- (20261128003000_validations_wait_for_backfills.sql): its Scan has not begun and a
-- backfill of the table is under way: queued within 15 minutes, with a segment active
-- within them, or whose end a worker ran within them (its segments are all done by then);
-- one that waited for an older backfill of its table counts from that one's end
-- (sync.backfill_ready_since, 20261128002300).
create function sync.validation_waits_for_backfill(p_run bigint) returns boolean
language sql stable set search_path = ''
as $$
  select sync.validation_scan_unbegun(p_run) and exists (
    select from public.sync_checksums c
    join sync.source_tables t on t.target_table = c.target_table
    join sync.backfill_jobs j on j.source_table = t.source_table
    where c.id = p_run and j.checksum_run_id is null and j.status in ('pending', 'running')
      and (sync.backfill_ready_since(j) > now() - interval '15 minutes'
           or (j.sweep_state ->> 'at')::timestamptz > now() - interval '15 minutes'
           or exists (
             select from sync.backfill_segments s
             where s.job_id = j.id
               and (s.updated_at > now() - interval '15 minutes'
                    or (s.status = 'running' and s.lease_expires_at > now())))))
$$;
comment on function sync.validation_waits_for_backfill(bigint) is
  'Whether a validation run waits for a backfill of its table: its Scan has not begun and a backfill of the table is under way (queued, or with a segment active or its end run, within 15 minutes).';
revoke all on function sync.validation_waits_for_backfill(bigint) from public;

-- sync.checkpoint_segment, with this change (the last segment starts the sweep in
-- chunks, sync.sweep_unseen_chunk, instead of sweeping whole), is defined in
-- 20261128004000_scan_stamps_from_dynamodb.sql (one place per function).

drop function sync.sweep_unseen(bigint);

revoke all on function sync.sweep_unseen_chunk(bigint, integer, text), sync.sweep_waiting(),
  sync.claim_sweep(text, interval), sync.release_sweep(bigint, text),
  sync.note_sweep_failure(bigint, text, text), sync.sweep_walk(text, regclass) from public;
