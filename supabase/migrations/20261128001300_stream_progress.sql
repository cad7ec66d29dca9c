-- Lost stream records are noticed on AWS too (docs/sync-semantics.md, "Lost stream
-- records"). On AWS the event source mapping loses records silently when it is disabled
-- or failing for longer than the stream keeps them (24 h). Two halves:
--
-- 1. The webhook notes every stream record of a batch it committed, in the batch's own
--    transaction (sync.note_stream_records: one statement, one row per stream, per batch). A Lambda event
--    record names its stream (eventSourceARN) and its SequenceNumber but not its shard
--    (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html), and sequence numbers
--    of different shards are not ordered against each other, so "the last sequence
--    number applied per shard" cannot be computed here: the record's own number is what
--    is kept, and the check attributes it to a shard by reading the shard.
-- 2. A scheduled check (the `stream-check` Edge Function, hourly: the pg_cron job
--    `sync-stream-check`) reads each table's stream (DescribeStream, GetShardIterator,
--    GetRecords), finds per shard the first record not noted here (its frontier), and
--    records the result with sync.record_stream_check, which marks the table stale
--    (sync.mark_stale, which queues the healing backfill) when it found a problem.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- The stream records the webhook committed: one row per stream of a committed batch, its
-- records' sequence numbers (sorted) and their span, found through a GiST index on the
-- span. One row per batch rather than per record: at a batch of 1,000 records, 1,000
-- B-tree entries cost about as much as the batch's upsert itself, one row with a GiST
-- entry a third of that (README, "Where the time goes": the webhook). A record delivered
-- twice is in two rows; looking it up finds it either way. Kept 48 hours after they
-- were applied (the stream keeps a record 24 hours; the check looks back at most one
-- check interval further), purged by sync.purge_expired
-- (20261128002700_retention_progress.sql).
create table sync.stream_batches_applied (
  id bigint generated always as identity primary key,
  stream_arn text not null,
  span numrange not null,
  sequence_numbers numeric(40, 0)[] not null,
  applied_at timestamptz not null default now()
);
create index stream_batches_applied_span_idx on sync.stream_batches_applied using gist (span);
-- Rows arrive in applied_at order: the purge (sync.purge_expired) walks the oldest, and
-- stops at its cutoff; each insert appends to the index's last page.
create index stream_batches_applied_applied_at_idx on sync.stream_batches_applied (applied_at);
comment on table sync.stream_batches_applied is
  'The stream records of each committed webhook batch, per stream: sorted sequence numbers and their span; kept 48 h.';

-- The lost-record check's memory per table: when it last ran, on which stream, and per
-- shard how far it has seen every record applied (`through`) and the first record not
-- yet applied (`frontier`: {"seq", "created_at"}).
create table sync.stream_checks (
  target_table text primary key references sync.source_tables (target_table),
  stream_arn text,
  checked_at timestamptz not null,
  shards jsonb not null default '{}'::jsonb,
  problem text,
  backfill_job_id bigint references sync.backfill_jobs (id) on delete set null
);
create index stream_checks_job_idx on sync.stream_checks (backfill_job_id);
comment on table sync.stream_checks is
  'The lost-record check''s last run per table: its stream, per-shard positions, and the problem it found (null: none).';
comment on column sync.stream_checks.shards is
  'Shard id -> {"through": last sequence number seen applied, "frontier": {"seq", "created_at"} of the first record not applied, "done": a closed shard read to its end}.';

-- Notes the stream records of a committed batch: p_records is a jsonb object of stream
-- ARN -> array of sequence numbers (decimal text), {"<arn>": ["<seq>", ...], ...}.
-- Called by the webhook inside the batch's transaction, so a rolled-back batch notes
-- nothing. Returns how many records it noted.
create function sync.note_stream_records(p_records jsonb) returns integer
language plpgsql set search_path = ''
as $$
declare
  noted integer;
begin
  -- plpgsql, not sql: a sql function's body is planned again on every call, which cost
  -- more than the insert itself at a batch of 10.
  with inserted as (
    insert into sync.stream_batches_applied (stream_arn, span, sequence_numbers)
    select r.key, numrange(min(x.n), max(x.n), '[]'), array_agg(x.n order by x.n)
    from jsonb_each(p_records) r
    cross join lateral (
      select s::numeric(40, 0) as n from jsonb_array_elements_text(r.value) s) x
    group by r.key
    returning cardinality(sequence_numbers) as records)
  select coalesce(sum(records), 0)::integer into noted from inserted;
  return noted;
end
$$;
comment on function sync.note_stream_records(jsonb) is
  'Notes the stream records of a committed webhook batch ({"<stream arn>": ["<seq>", ...]}); returns how many.';

-- Which of these sequence numbers (decimal text) of a stream the webhook applied: the
-- batches whose span overlaps the asked ones' (GiST), their numbers unnested and matched.
create function sync.stream_records_applied_of(p_stream_arn text, p_seqs text[]) returns text[]
language sql stable set search_path = ''
as $$
  with asked as (
    select u.s, u.ord, u.s::numeric(40, 0) as n
    from unnest(p_seqs) with ordinality as u(s, ord)),
  noted as (
    select x.n
    from sync.stream_batches_applied b
    cross join lateral unnest(b.sequence_numbers) as x(n)
    where b.stream_arn = p_stream_arn
      and b.span && (select numrange(min(a.n), max(a.n), '[]') from asked a)
      and exists (select from asked))
  select coalesce(array_agg(a.s order by a.ord), '{}')
  from asked a
  where a.n in (select n from noted);
$$;
comment on function sync.stream_records_applied_of(text, text[]) is
  'The subset of the given sequence numbers of a stream whose records the webhook committed.';

-- Records one run of the lost-record check for a table and, when it found a problem,
-- marks the table stale (which queues the healing backfill) unless a backfill whose
-- data is as of p_covers_until (plus two granularities: the time of a stream record is
-- rounded down, and the row it leaves may be stamped within that second) or later is
-- pending, running or done: a Scan backfill reads every item as it is when its Scan runs,
-- so it heals every change made before it read (a record the webhook will never apply,
-- e.g. one sent to the on-failure queue, is thus healed once, not again every hour until
-- the stream drops it). When a backfill read the table from is sync.backfill_read_from
-- (20261128004000_scan_stamps_from_dynamodb.sql): an export's read time, a Scan's
-- earliest page. A covering job not yet done leaves the table stale until it is
-- (cleared when it ends done; still stale, naming the problem, if it fails or is
-- cancelled). A backfill not started yet reads the table as it is when it starts, so it
-- covers any time (else every hourly check of a problem covered from now, a table with
-- no stream, queued another while the last still waited). A table already stale is linked to the newest healer, its mark and first reason
-- kept: left stale by a failed job, a later job heals it, and a newer problem's healer is
-- the one whose end clears it. Returns the backfill job queued, or null. Purges noted
-- records older than 48 hours, of every stream.
create function sync.record_stream_check(
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
    -- After any sync.heal_table of the table (20261128004600_heal_table.sql), in its lock's
    -- order: heal_table locks the waiting job, then the table_state row; this upsert of
    -- table_state would otherwise take that row, then wait on the job's row for its
    -- foreign key, and one of the two would die in a deadlock (a review reproduced it).
    perform pg_advisory_xact_lock(hashtext('sync.heal_table'), hashtext(p_target));
    -- A done one first: then nothing is left to heal.
    select j.* into healer
    from sync.backfill_jobs j
    join sync.source_tables s on s.source_table = j.source_table
    where s.target_table = p_target and j.status in ('pending', 'running', 'done')
      and j.checksum_run_id is null -- a validation run's Scan writes nothing
      -- A record's time is ApproximateCreationDateTime, rounded down to the clock's
      -- granularity: the change may be up to that much later.
      -- A job not started yet will read the table as it is then: it covers any time. One
      -- started covers from when it read the table from, on DynamoDB's clock, as the
      -- record's time is (sync.backfill_read_from, 20261128004000_scan_stamps_from_dynamodb.sql:
      -- an export's time, a Scan's earliest page stamp), the same time its end removes
      -- unseen rows before. Its start alone, on this database's clock, let a job that
      -- began before the lost change count as its healer when the database's clock ran
      -- ahead (found by a review of the clocks). Later by two granularities: the record's
      -- time is rounded down by one, and the row it leaves may be stamped by a read
      -- (unrounded) within that second; the job's end removes only rows older than its
      -- read less one (a review of this round's commits).
      and coalesce(sync.backfill_read_from(j), 'infinity'::timestamptz)
          >= coalesce(p_covers_until, now())
             + 2 * (select value::interval from sync.settings where key = 'stream_clock_granularity')
    order by j.status = 'done' desc, j.id desc
    limit 1
    -- Behind a job's end in progress (its last sweep chunk holds the row while it marks
    -- the job done and clears the marks linked to it), then read as it ended: read before,
    -- running, it took the link and the mark after that end had cleared the marks, and the
    -- table stayed stale for good, linked to a job done (found by a review).
    for share of j;
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
  -- Two runs may check a table at once (the hourly one beside a chain's): each shard keeps
  -- the state of the later read of it (its `readAt`), so a run that read less never takes
  -- back what the other read. The shards are this run's listing; another stream's states
  -- are replaced whole.
  insert into sync.stream_checks (target_table, stream_arn, checked_at, shards, problem, backfill_job_id)
  values (p_target, p_stream_arn, now(), coalesce(p_shards, '{}'::jsonb), p_problem, job_id)
  on conflict (target_table) do update
    set stream_arn = excluded.stream_arn, checked_at = excluded.checked_at,
        shards = case
          when sync.stream_checks.stream_arn is distinct from excluded.stream_arn then excluded.shards
          else (select coalesce(jsonb_object_agg(n.key,
                         case when coalesce(o.value ->> 'readAt', '') > coalesce(n.value ->> 'readAt', '')
                              then o.value else n.value end), '{}'::jsonb)
                from jsonb_each(excluded.shards) as n
                left join jsonb_each(sync.stream_checks.shards) as o on o.key = n.key)
        end,
        problem = excluded.problem,
        backfill_job_id = coalesce(excluded.backfill_job_id, sync.stream_checks.backfill_job_id);
  return job_id;
end
$$;
comment on function sync.record_stream_check(text, text, jsonb, text, timestamptz) is
  'Records a lost-record check of a table; with a problem, marks it stale (queues a backfill) unless one whose data is as of p_covers_until or later is pending, running or done.';

-- The check runs hourly (minute 41); it tolerates up to 3 hours between runs (a missed
-- tick or two) before it says it cannot vouch for what the stream dropped meanwhile.
select cron.schedule('sync-stream-check', '41 * * * *',
  $$select sync.call_edge_function('stream-check', '{}'::jsonb, 120000)$$);

-- Those 3 hours, for the database's side: sync.status shows a table whose last check is
-- older as overdue (stream_check_overdue), so that a check that never runs (the function
-- not deployed, its calls refused, the job unscheduled) does not go unseen; the check
-- itself finds the gap only when it runs again. The same as functions-shared/
-- stream_verdict.ts's MAX_CHECK_INTERVAL_MS, which tests/stream_check_test.ts holds equal.
create function sync.stream_check_max_interval() returns interval
language sql immutable set search_path = ''
as $$ select interval '3 hours' $$;
comment on function sync.stream_check_max_interval() is
  'The longest gap between two runs of the lost-record check that it vouches across (hourly, two missed ticks); sync.status shows a table checked longer ago as overdue.';

revoke all on function sync.note_stream_records(jsonb), sync.stream_check_max_interval(),
  sync.stream_records_applied_of(text, text[]),
  sync.record_stream_check(text, text, jsonb, text, timestamptz) from public;
