-- The validator compares as its Scan goes (docs/sync-semantics.md, "Verification";
-- docs/interfaces.md, "data-checksum-validator").
--
-- Until now every page's expected rows were staged (sync.checksum_items, a digest per
-- row) and, after the Scan, compared in ranges of buckets against digests of the whole
-- target table: the expected side was written, read and digested again, and the compare
-- (6.5 s of a 39 s validation of firespring_actions at scale 1) waited for the last page.
-- Now, for a plain table (one row per item), each page is compared in the transaction
-- that moves its segment's checkpoint, against the target's rows of the same keys (an
-- index lookup each): only the divergent keys (missing, different) are kept, in the run's
-- lists, and the page's keys in sync.checksum_seen (a key and its hash, no digest),
-- which is all the final pass needs to list the target's rows the Scan never saw
-- (unexpected). A page whose lease is lost rolls back with its checkpoint, so nothing is
-- counted twice or lost after a kill.
--
-- The collapsed tables (visitors, extraction jobs), whose row is the latest of several
-- observations that may span pages, keep the staged compare (sync_checksums.streamed
-- false): after the Scan, their expected rows are compared with the target's rows of the
-- same keys, slice by slice of keys, and then the same final pass lists the unexpected.
--
-- Every statement of the compare covers a slice of at most checksum_rows_per_statement
-- keys, found through an index (the staged rows' by key, the target's primary key), so a
-- statement's time does not grow with the table, and the compare's grows linearly. (It
-- first went by ranges of buckets of key hashes, each statement reading the whole target
-- and the whole staging to hash them: at 3 million rows a streamed run's final pass took
-- 7 statements, 28 s in all, and a collapsed table's compare of 1 million keys 8, 40 s in
-- all, 5.6 s each; both grew with the table's square, or each statement with the table.)
--
-- Replaced here (each is defined here from now on): sync.start_validation,
-- sync.compare_checksum_range and sync.end_validation of 20261128001100.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

alter table public.sync_checksums
  add column streamed boolean not null default false;
comment on column public.sync_checksums.streamed is
  'Whether the run compares each page as it is read (plain tables; sync.check_checksum_page) rather than staging every expected row.';

-- The keys a streamed run's Scan has seen, and their hash: what the unexpected pass
-- needs (one index lookup per target row, by the hash, then the key). Unlogged, like sync.checksum_items: a crash empties it, and a run that outlived
-- one cannot end with a verdict (20261128004400_validation_restart_guard.sql).
create unlogged table sync.checksum_seen (
  -- No foreign key to its run: a check per key written, 1,000 a page, was about 40% of
  -- the page's statement. The page's statement reads and updates its run's row instead
  -- (a missing run is refused, naming it), and the trigger below deletes a deleted run's keys.
  run_id bigint not null,
  -- hashtext(row_key::text): an integer index is cheaper to write, 1,000 keys a page,
  -- than one of the keys' jsonb.
  key_hash integer not null,
  row_key jsonb not null
);
create index checksum_seen_run_hash_idx on sync.checksum_seen (run_id, key_hash);
comment on table sync.checksum_seen is
  'Keys a streamed validation run has read from the source, with their hash; deleted by retention once the run ended.';

-- A staged run's expected rows are read slice by slice in key order, each key's latest
-- observation first (sync.compare_checksum_slice): an index in exactly that order lets
-- a slice read its keys and stop. With 20261128000600's index on (run_id, row_key) alone,
-- the statement (which writes, so it plans no parallel workers) read and sorted the run's
-- every remaining staged row for each slice: 4 s for the first of 1.3 million, found by a
-- review. This one serves the lookups by key as well.
create index checksum_items_run_key_latest_idx
  on sync.checksum_items (run_id, row_key, range_key desc nulls last, rank desc);
drop index sync.checksum_items_run_idx;

-- A deleted run's seen keys go with it, once per statement that deletes runs (retention),
-- as a key's cascade would; it runs with its owner's rights: whoever may delete a run (the
-- service role) deletes its seen keys, which only the sync schema's owner may touch.
create function sync.forget_seen_of_deleted_runs() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from sync.checksum_seen s using gone g where s.run_id = g.id;
  delete from sync.checksum_divergent d using gone g where d.run_id = g.id;
  delete from sync.checksum_unmappable u using gone g where u.run_id = g.id;
  return null;
end
$$;
create trigger sync_checksums_forget_seen
  after delete on public.sync_checksums
  referencing old table as gone
  for each statement execute function sync.forget_seen_of_deleted_runs();
revoke all on function sync.forget_seen_of_deleted_runs() from public;

insert into sync.settings (key, value, description, min_value, max_value) values
  ('checksum_rows_per_statement', '100000',
   'Keys one statement of a validation''s compare covers at most (a slice of the staged rows, or of the target''s): each stays far under the 2-minute statement timeout, whatever the table''s size.',
   1, 10000000);

-- A start sent again with the same request key (its answer lost after the run's row
-- committed, and the client's retry) is the run it started, not a second one: two runs of
-- a table read it twice over, each at the whole read budget (found by a review of lost
-- answers). The key is the request's `Idempotency-Key` (functions-shared/validator_endpoint.ts).
alter table public.sync_checksums
  add column request_key text
    constraint sync_checksums_request_key_printable check (request_key ~ '^[!-~]{1,255}$');
comment on column public.sync_checksums.request_key is
  'The Idempotency-Key of the request that started the run, if it sent one: a start sent again with it is this run.';
create unique index sync_checksums_request_key on public.sync_checksums (request_key)
  where request_key is not null;

-- One run of a table at a time, queued or running, whoever starts it: a run's Scan reads
-- the table at the whole of VALIDATOR_MAX_RCU_PER_SECOND (its read ledger is its own job's,
-- 20261128001800_backfill_turns.sql), so two runs started by hand at once read it at
-- twice the budget, taking capacity from the company's own readers (found by a review of
-- the validator; sync.validate_all already queued no second run). The index makes it
-- hold for any two starts at once, each in its own transaction: the second waits for the
-- first's commit, then is refused (sync.start_validation names the run to follow).
--
-- A database pushed from 20261128001000 may hold two active runs of a table (a run killed
-- before the reaper came, and another started meanwhile): every one but the newest is
-- failed first, naming why, with its Scan, so that the index can be made. (Not through
-- sync.end_validation, which this file defines below and whose marks table comes later,
-- 20261128004400.)
with older as (
  update public.sync_checksums c
  set status = 'failed', checked_at = coalesce(c.checked_at, now()),
      error = format('ended by migration 20261128001600_validator_streaming.sql: a table has one validation run at a time, and run %s of %s is newer',
                     (select max(n.id) from public.sync_checksums n
                      where n.target_table = c.target_table and n.status in ('queued', 'running')),
                     c.target_table)
  where c.status in ('queued', 'running')
    and exists (select from public.sync_checksums n
                where n.target_table = c.target_table and n.status in ('queued', 'running')
                  and n.id > c.id)
  returning c.id
)
update sync.backfill_jobs j set status = 'cancelled', finished_at = coalesce(j.finished_at, now())
where j.checksum_run_id in (select id from older) and j.status in ('pending', 'running');
create unique index sync_checksums_one_active_run on public.sync_checksums (target_table)
  where status in ('queued', 'running');

-- Starts a validation run of one table: its row, and its Scan's job and segments. A run
-- of a plain table is streamed. With p_queued the run waits for a slot
-- (sync.start_queued_validations). With p_request_key, the run that key started, if any
-- (22023 when it started another table's, or with another repair flag). A table with a
-- run queued or running gets no second one (SY006, naming that run).
create function sync.start_validation(
  p_target text, p_repair boolean default false, p_segments integer default 8,
  p_page_size integer default 1000, p_queued boolean default false,
  p_request_key text default null
) returns bigint
language plpgsql set search_path = ''
as $$
declare
  run bigint;
  job bigint;
  earlier public.sync_checksums;
begin
  if not exists (select from sync.source_tables s where s.target_table = p_target) then
    raise exception 'sync.start_validation: % is not a target table (known: %)',
      p_target, (select string_agg(s.target_table, ', ' order by s.target_table) from sync.source_tables s)
      using errcode = '22023';
  end if;
  if p_request_key is not null then
    -- Two starts with one key at once: the second waits for the first's commit.
    perform pg_advisory_xact_lock(hashtextextended('sync.start_validation ' || p_request_key, 0));
    select * into earlier from public.sync_checksums c where c.request_key = p_request_key;
    if found then
      if earlier.target_table <> p_target or earlier.repair_requested <> p_repair then
        raise exception 'Idempotency-Key % started validation run % of % (%), not a validation of % (%): send a new key for another validation',
          p_request_key, earlier.id, earlier.target_table,
          case when earlier.repair_requested then 'with repair' else 'without repair' end,
          p_target, case when p_repair then 'with repair' else 'without repair' end
          using errcode = '22023';
      end if;
      return earlier.id;
    end if;
  end if;
  -- A repair after the cutover would scan the whole table only to be refused at its merge
  -- (sync.enter_merge, 20261128001400_compiled_merges.sql): refused here, before it reads.
  if p_repair and (select value from sync.settings where key = 'write_back') = 'cutover' then
    raise exception 'the sync is cut over (sync.settings write_back is cutover): a repair of % would merge DynamoDB''s state over Supabase''s; validate without repair', p_target
      using errcode = 'SY005';
  end if;
  for attempt in 1 .. 3 loop
    begin
      insert into public.sync_checksums
        (target_table, status, source_items, repair_requested, streamed, request_key)
      select p_target, case when p_queued then 'queued' else 'running' end, 0, p_repair,
             not s.collapsed, p_request_key
      from sync.source_tables s where s.target_table = p_target
      returning id into run;
      exit;
    exception when unique_violation then
      select * into earlier from public.sync_checksums c
      where c.target_table = p_target and c.status in ('queued', 'running');
      if found then
        raise exception 'validation run % of % is already % (since %): follow it ({"runId": %}) or let it end; a second run would read % again at the whole read budget',
          earlier.id, p_target, earlier.status,
          to_char(earlier.started_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
          earlier.id, p_target
          using errcode = 'SY006', detail = json_build_object('runId', earlier.id)::text;
      end if;
      -- The run in the way ended between the insert and the look: the insert goes again.
      if attempt = 3 then
        raise;
      end if;
    end;
  end loop;
  insert into sync.backfill_jobs (source_table, total_segments, page_size, checksum_run_id)
  select s.source_table, p_segments, p_page_size, run from sync.source_tables s
  where s.target_table = p_target
  returning id into job;
  insert into sync.backfill_segments (job_id, segment)
  select job, g from generate_series(0, p_segments - 1) g;
  return run;
end
$$;

-- How a page is compared: only the target's rows of the page's keys are read
-- (docs/sync-semantics.md, "Verification"; README, "Where the time goes", the validator).
--
-- Profiled on the local stack (pg_stat_user_functions, validating firespring_actions at
-- scale 1, 29 pages of 1,000 rows): sync.check_checksum_page took 770 ms a call, most of
-- the validation's time, for three reasons:
-- - The planner, which takes jsonb_array_elements for 100 rows, joined the page to the
--   target with a hash join over a sequential scan of the WHOLE target table (28,936
--   rows, their jsonb read and hashed) for every page, instead of 1,000 index lookups.
--   The target's row of each key is now a lateral subquery with `limit 1`, which the
--   planner cannot flatten into a join: one primary-key index lookup per page row.
-- - sync.canonical_digest, called twice per row: a SQL function with its own
--   search_path is never inlined, so each call pays the function-call and GUC set-up
--   (8.1 s of the 24.6 s), on top of to_jsonb of both rows, five jsonb copies and md5.
--   The compare now tests the same canonical form column by column: a column whose
--   type's equality is identity of its text (text, varchar, timestamps, date, integers,
--   bool, uuid) with `is not distinct from`, any other (jsonb, numeric, ...) by its JSON
--   text (to_jsonb(v)::text, SQL NULL as 'null'), which is exactly that column's part of
--   the text whose md5 sync.canonical_digest is (the row as the table's own types make
--   it, every column but the sync bookkeeping ones; 20261128000300_merge.sql). Equal
--   parts are equal texts: the verdicts are the same (without md5's collisions);
--   supabase/tests/database/077-validator-page-lookups.test.sql checks the edge cases.
-- - sync.checksum_seen's foreign key to its run: a check per key written, 1,000 a page
--   (about 40% of the statement). The page's statement reads and updates its run's row,
--   which stands in for the check (a missing run is refused with an error naming it), and
--   a statement-level trigger deletes the seen keys of deleted runs, as the key's
--   `on delete cascade` did (retention deletes them, a batch at a time, once a run ended).

-- Compares one page of a streamed run with the target, in the caller's transaction (the
-- one that moves the segment's checkpoint): p_rows as sync.stage_checksum_items takes
-- them ([{"row": {...}}, ...]). Each row is reduced to the same canonical form as the
-- target's row of its key (sync.canonical_digest of the row as the table's types make
-- it, compared column by column as above); a key without a target row is missing, one
-- whose canonical form differs is different.
-- The divergent keys are appended to the run's lists (sorted at the end of the compare)
-- and the page's keys kept in sync.checksum_seen; expected_rows grows by the page's rows.
-- Returns the page's divergent keys.
create function sync.check_checksum_page(p_run bigint, p_target text, p_rows jsonb)
returns integer
language plpgsql set search_path = ''
as $fn$
declare
  divergent integer;
  -- The page row (p.r) equals the target's (t) column by column, as sync.canonical_digest
  -- compares them (20261128001600_validator_streaming.sql).
  same text := (
    select string_agg(
      case when a.atttypid = any (array['text', 'varchar', 'timestamptz', 'timestamp', 'date',
                                        'int2', 'int4', 'int8', 'bool', 'uuid']::regtype[]::oid[])
           then format('(p.r).%1$I is not distinct from t.%1$I', a.attname)
           else format('coalesce(to_jsonb((p.r).%1$I)::text, ''null'') = coalesce(to_jsonb(t.%1$I)::text, ''null'')',
                       a.attname)
      end, ' and ' order by a.attnum)
    from pg_catalog.pg_attribute a
    where a.attrelid = format('public.%I', p_target)::regclass and a.attnum > 0 and not a.attisdropped
      and a.attname <> all (array['sync_sequence', 'sync_changed_at', 'sync_source', 'synced_at',
                                  'sync_range_key']));
begin
  -- The run's row, read above, stands in for a foreign key (20261128001600_validator_streaming.sql).
  if not exists (select from public.sync_checksums c where c.id = p_run) then
    raise exception 'sync.check_checksum_page: validation run % of % does not exist', p_run, p_target
      using errcode = '22023';
  end if;
  execute format($sql$
    with page as (
      select r, %2$s as row_key
      from jsonb_array_elements($2) as x
      cross join lateral jsonb_populate_record(null::public.%1$I, x -> 'row') as r
    ),
    seen as (
      insert into sync.checksum_seen (run_id, key_hash, row_key)
      select $1, hashtext(p.row_key::text), p.row_key from page p
      returning 1
    ),
    found as (
      select case when t is null then 'missing' else 'different' end as kind, p.row_key
      from page p
      -- One index lookup per row: `limit 1` keeps the planner from turning the lookups
      -- into a hash join over the whole target (20261128001600_validator_streaming.sql).
      left join lateral (select * from public.%1$I t where %3$s limit 1) t on true
      where t is null or not (%4$s)
    ),
    kept as (
      insert into sync.checksum_divergent (run_id, kind, row_key)
      select $1, f.kind, f.row_key from found f
      returning 1
    ),
    noted as (
      update public.sync_checksums c
      set expected_rows = coalesce(c.expected_rows, 0) + (select count(*) from seen),
          compared_at = coalesce(c.compared_at, now())
      where c.id = $1
      returning 1
    )
    select (select count(*) from kept)::integer + 0 * (select count(*) from noted)
    $sql$, p_target, sync.key_json_sql(p_target, 'r'),
    format('row(%s) = row(%s)', sync.key_columns_sql(p_target, 't'),
           sync.key_columns_sql(p_target, '(p.r)')),
    same)
  into divergent
  using p_run, p_rows;
  return divergent;
end
$fn$;

-- One slice of a run's compare, in the caller's transaction: at most p_limit keys after
-- p_after (a row key; null: from the first), in key order, through an index, and their
-- divergent keys appended to the run's lists (sync.checksum_divergent). Returns how many
-- keys the slice held and the last of them (its checkpoint).
-- p_side 'expected' (a staged run's): the staged rows' keys (sync.checksum_items, through
-- checksum_items_run_key_latest_idx), each key's expected row the observation with the
-- largest range key (then rank), compared with the target's row of the key (one
-- primary-key lookup each): missing without one, different when their canonical digests
-- differ.
-- p_side 'target': the target's keys (through its primary key) that the run never read:
-- unexpected. A streamed run's read keys are in sync.checksum_seen (found by their hash,
-- then the key), a staged run's in sync.checksum_items.
-- Each lookup is a lateral subquery with `limit 1`, which the planner cannot turn into a
-- hash join over the whole of the other side.
create function sync.compare_checksum_slice(p_run bigint, p_target text, p_side text,
                                            p_after jsonb, p_limit integer,
                                            out keys bigint, out last_key jsonb)
language plpgsql set search_path = ''
as $fn$
declare
  streamed boolean := (select c.streamed from public.sync_checksums c where c.id = p_run);
  slice text;
begin
  if p_side = 'expected' then
    slice := format($sql$
      select distinct on (i.row_key) i.row_key, i.digest
      from sync.checksum_items i
      where i.run_id = $1 %s
      order by i.row_key, i.range_key desc nulls last, i.rank desc
      limit $3
      $sql$, case when p_after is null then '' else 'and i.row_key > $2' end);
    execute format($sql$
      with slice as (%1$s),
      found as (
        select case when t.digest is null then 'missing' else 'different' end as kind, s.row_key
        from slice s
        left join lateral (
          select sync.canonical_digest(to_jsonb(t)) as digest
          from public.%2$I t where row(%3$s) = row(%4$s) limit 1
        ) t on true
        where t.digest is distinct from s.digest
      ),
      kept as (
        insert into sync.checksum_divergent (run_id, kind, row_key)
        select $1, f.kind, f.row_key from found f
        returning 1
      )
      select (select count(*) from slice) + 0 * (select count(*) from kept),
             (select s.row_key from slice s order by s.row_key desc limit 1)
      $sql$, slice, p_target, sync.key_columns_sql(p_target, 't'),
      sync.key_columns_sql(p_target, 't', 's.row_key'))
    into keys, last_key
    using p_run, p_after, p_limit;
  elsif p_side = 'target' then
    execute format($sql$
      with slice as (
        -- n: the key's place in the slice, whose last is the checkpoint.
        select %1$s as row_key, row_number() over (order by %4$s) as n
        from public.%2$I t %3$s
        order by %4$s
        limit $3
      ),
      found as (
        select s.row_key
        from slice s
        left join lateral (%5$s limit 1) r on true
        where r.seen is null
      ),
      kept as (
        insert into sync.checksum_divergent (run_id, kind, row_key)
        select $1, 'unexpected', f.row_key from found f
        returning 1
      )
      select (select count(*) from slice) + 0 * (select count(*) from kept),
             (select s.row_key from slice s order by s.n desc limit 1)
      $sql$, sync.key_json_sql(p_target, 't'), p_target,
      case when p_after is null then ''
           else format('where row(%s) > row(%s)', sync.key_columns_sql(p_target, 't'),
                       sync.key_columns_sql(p_target, 't', '$2')) end,
      sync.key_columns_sql(p_target, 't'),
      case when streamed
           then 'select true as seen from sync.checksum_seen x where x.run_id = $1 and x.key_hash = hashtext(s.row_key::text) and x.row_key = s.row_key'
           else 'select true as seen from sync.checksum_items x where x.run_id = $1 and x.row_key = s.row_key' end)
    into keys, last_key
    using p_run, p_after, p_limit;
  else
    raise exception 'sync.compare_checksum_slice: p_side is expected or target, not %', p_side
      using errcode = '22023';
  end if;
end
$fn$;

-- One step of a run's compare: its next slice of keys (sync.compare_checksum_slice, at
-- most checksum_rows_per_statement), its divergent keys appended to the run's lists and
-- its count added, the checkpoint moved (compare_after), in one transaction held by
-- p_worker (SY001 otherwise). A staged run compares its expected rows first, then lists
-- the unexpected; a streamed run, whose missing and different keys were found page by
-- page, only lists the unexpected. After the last slice the lists are put in the order of
-- the whole-table comparison (kind, key) and the run moves on: to its rechecks when a key
-- diverges or an item was unmappable, else to its report.
-- Returns the run's phase afterwards.
create function sync.compare_checksum_range(p_run bigint, p_worker text) returns text
language plpgsql set search_path = ''
as $$
declare
  run public.sync_checksums;
  per_statement integer := sync.integer_setting('checksum_rows_per_statement');
  side text;
  slice record;
  phase_after text;
  kept bigint;
  max_listed integer;
begin
  perform sync.hold_validation(p_run, p_worker);
  select * into run from public.sync_checksums where id = p_run;
  if run.phase <> 'compare' then
    return run.phase;
  end if;
  side := case when not run.streamed and (run.compare_after is null or run.compare_after ? 'expected')
               then 'expected' else 'target' end;
  select * into slice
  from sync.compare_checksum_slice(p_run, run.target_table, side,
                                   nullif(run.compare_after -> side, 'null'), per_statement);
  update public.sync_checksums c
  set expected_rows = coalesce(c.expected_rows, 0) + case when side = 'expected' then slice.keys else 0 end,
      target_rows = coalesce(c.target_rows, 0) + case when side = 'target' then slice.keys else 0 end,
      compared_at = coalesce(c.compared_at, now()),
      -- A slice short of the limit was its side's last: the expected side hands on to the
      -- target's start.
      compare_after = case when slice.keys = per_statement then jsonb_build_object(side, slice.last_key)
                           when side = 'expected' then '{"target": null}'
                           else c.compare_after end
  where c.id = p_run;
  if side = 'target' and slice.keys < per_statement then
    kept := (select count(*) from sync.checksum_divergent d where d.run_id = p_run)
            + (select count(*) from sync.checksum_unmappable u where u.run_id = p_run);
    max_listed := sync.integer_setting('checksum_max_listed');
    if kept > max_listed then
      -- The cure in the message itself: the validator records the message as the run's error.
      raise exception 'validation run % of %: % divergent keys and unmappable items, more than the % a run lists (checksum_max_listed); the table diverges too far to name key by key: backfill it (select sync.start_backfill(%)), then validate it again',
        p_run, run.target_table, kept, max_listed,
        quote_literal((select t.source_table from sync.source_tables t where t.target_table = run.target_table))
        using errcode = '54000';
    end if;
    -- The run's lists, written once: what they held (nothing, unless set by hand) and
    -- the keys kept page by page and range by range, in key order; the unmappable items
    -- in the order they were found.
    update public.sync_checksums c
    set missing = sync.divergent_list(p_run, 'missing', c.missing),
        unexpected = sync.divergent_list(p_run, 'unexpected', c.unexpected),
        different = sync.divergent_list(p_run, 'different', c.different),
        unmappable = c.unmappable || (select coalesce(jsonb_agg(u.item order by u.seq), '[]')
                                      from sync.checksum_unmappable u where u.run_id = p_run)
    where c.id = p_run;
    delete from sync.checksum_divergent where run_id = p_run;
    delete from sync.checksum_unmappable where run_id = p_run;
    update public.sync_checksums c
    set -- Items the Scan's (eventually consistent) pages found unmappable are read again
        -- too, consistently (functions-shared/validator_compare.ts): a stale page may show
        -- a version since fixed.
        phase = case when jsonb_array_length(c.missing) + jsonb_array_length(c.unexpected)
                          + jsonb_array_length(c.different) + jsonb_array_length(c.unmappable) > 0
                     then 'recheck' else 'report' end
    where c.id = p_run
    returning c.phase into phase_after;
    return phase_after;
  end if;
  return 'compare';
end
$$;

-- Ends a run (done or failed): its lease goes (its staging rows and seen keys go after,
-- by retention), and queued runs take the slot it frees (sync.start_queued_validations;
-- left to the caller with p_start_queued false).
create function sync.end_validation(
  p_run bigint, p_status text, p_error text default null, p_start_queued boolean default true
) returns void
language plpgsql set search_path = ''
as $$
begin
  if p_status not in ('done', 'failed') then
    raise exception 'sync.end_validation: run % cannot end as %', p_run, p_status using errcode = '22023';
  end if;
  if p_status = 'done'
     and exists (select from public.sync_checksums c where c.id = p_run and c.status = 'running')
     and not exists (select from sync.checksum_run_marks m where m.run_id = p_run) then
    raise exception 'validation run % of % outlived a restart of the database (a crash or a failover), which emptied the rows it had read (kept unlogged): its verdict cannot be trusted; run the validation again',
      p_run, (select c.target_table from public.sync_checksums c where c.id = p_run)
      using errcode = 'SY002';
  end if;
  update public.sync_checksums
  set status = p_status, phase = case when p_status = 'done' then 'done' else phase end,
      error = coalesce(p_error, error), checked_at = coalesce(checked_at, now()),
      lease_owner = null, lease_expires_at = null
  where id = p_run and status in ('queued', 'running');
  update sync.backfill_jobs set status = case when p_status = 'done' then 'done' else 'cancelled' end,
    finished_at = coalesce(finished_at, now())
  where checksum_run_id = p_run and status in ('pending', 'running');
  -- The run's staging rows are left to retention (sync.purge_expired_batch,
  -- validation_staging), a batch at a time: a run of a large table staged millions.
  delete from sync.checksum_run_marks where run_id = p_run;
  -- Without p_start_queued, the caller starts them (a repair, once its revalidation holds
  -- the slot this run leaves: validator_run_end.ts).
  if p_start_queued then
    perform sync.start_queued_validations();
  end if;
end
$$;

comment on function sync.start_validation(text, boolean, integer, integer, boolean, text) is
  'Creates a validation run of one target table with its Scan''s segments; returns the run id (the run its request key started, when it started one).';

revoke all on function sync.check_checksum_page(bigint, text, jsonb),
  sync.compare_checksum_slice(bigint, text, text, jsonb, integer),
  sync.start_validation(text, boolean, integer, integer, boolean, text),
  sync.compare_checksum_range(bigint, text), sync.end_validation(bigint, text, text, boolean) from public;
