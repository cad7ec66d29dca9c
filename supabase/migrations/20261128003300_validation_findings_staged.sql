-- A validation run's divergent keys are kept in a staging table while it compares, and
-- written to the run's lists once, when its compare ends (docs/sync-semantics.md,
-- "Verification"; issue 17, big tables).
--
-- Until now each page (sync.check_checksum_page) and each range of buckets
-- (sync.compare_checksum_range) appended its divergent keys to the run's `missing`,
-- `unexpected` and `different` jsonb lists: every append rewrites the whole list, so a
-- run that finds many keys costs the square of their number. Measured on the local
-- stack, pages of 1,000 keys none of which the target held: 63 ms a page at 25,000 keys
-- kept, 309 ms at 200,000, growing by about 1.5 ms per 1,000 keys. A table a hundred
-- times the report's (2.9 million actions), emptied or mapped wrong, would have spent
-- hours rewriting its lists, writing their every copy to the WAL.
--
-- Now the keys go to sync.checksum_divergent, one row each. It is logged, unlike
-- sync.checksum_items and sync.checksum_seen (a crash that empties those could make a run
-- miss a key on both sides, so a run that outlived one cannot end with a verdict:
-- 20261128004400_validation_restart_guard.sql); one that emptied this would lose keys
-- found divergent before it, and the run resumed from its checkpoints could then report
-- a match. Rows are only appended, so its WAL grows
-- with the keys found, not with their square. The compare's last range
-- writes the lists from it, in the order they had (kind, then key), and empties it. The
-- lists hold the same keys as before, in the same order; nothing reads them before the
-- compare ends (the rechecks, the report and the repair come after it).
--
-- The same for the items a page finds unmappable (sync.checksum_unmappable, in the order
-- they were found): appended to the run's `unmappable` list page by page, a Scan of a
-- table whose every item maps to no row (a renamed attribute, say) rewrote a list of
-- hundreds of thousands of entries on each page.
--
-- And a request reads at most a bounded number of each list (sync.validation_findings):
-- the validator read the whole lists into its isolate, where millions of keys would pass
-- the Edge Runtime's 256 MB and get the isolate killed, request after request, until the
-- run was failed as stalled. It needs every key only to look at each again or repair it
-- (200 at most, functions-shared/checksum_validator.ts, MAX_KEYS_BY_KEY); its answer lists
-- the first keys of each kind with every list's count, and the run's row keeps them all.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

create table sync.checksum_divergent (
  -- No foreign key to its run, as sync.checksum_seen (a check per key written): the
  -- statements that write here read and update the run's row, and the trigger's function below
  -- deletes a deleted run's keys.
  run_id bigint not null,
  kind text not null check (kind in ('missing', 'unexpected', 'different')),
  row_key jsonb not null
);
create index checksum_divergent_run_idx on sync.checksum_divergent (run_id, kind);
comment on table sync.checksum_divergent is
  'Divergent keys a validation run has found while it compares; written to its lists when the compare ends, then gone.';

-- Logged, as sync.checksum_divergent: an item lost here would let the run match.
create table sync.checksum_unmappable (
  run_id bigint not null,
  -- The order the Scan's pages found them in, which the run's list keeps.
  seq bigint generated always as identity,
  item jsonb not null
);
create index checksum_unmappable_run_idx on sync.checksum_unmappable (run_id, seq);
comment on table sync.checksum_unmappable is
  'Source items a validation run''s Scan found unmappable ({key, reason}); written to its unmappable list when the compare ends, then gone.';

-- A run's lists are jsonb values, which Postgres caps at 256 MB (about 2 to 4 million
-- keys): a run that finds more entries than this setting fails, naming the counts and the
-- backfill that heals the table, rather than with Postgres's own message.
insert into sync.settings (key, value, description) values
  ('checksum_max_listed', '1000000',
   'Divergent keys and unmappable items together that one validation run lists at most; a run that finds more fails, naming the backfill that heals the table (a jsonb list is capped at 256 MB).');

-- Replaces 20261128001600_validator_streaming.sql's: a deleted run's divergent keys go
-- with its seen keys.
create or replace function sync.forget_seen_of_deleted_runs() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from sync.checksum_seen s using gone g where s.run_id = g.id;
  delete from sync.checksum_divergent d using gone g where d.run_id = g.id;
  delete from sync.checksum_unmappable u using gone g where u.run_id = g.id;
  return null;
end
$$;

-- A run's list of one kind: the keys it already holds and those kept for it, in key order.
create function sync.divergent_list(p_run bigint, p_kind text, p_held jsonb) returns jsonb
language sql stable set search_path = ''
as $$
  select coalesce(jsonb_agg(k order by k), '[]')
  from (select x as k from jsonb_array_elements(p_held) x
        union all
        select d.row_key from sync.checksum_divergent d where d.run_id = p_run and d.kind = p_kind) s
$$;

-- Replaces 20261128001600_validator_streaming.sql's: the page's divergent keys are kept
-- in sync.checksum_divergent rather than appended to the run's lists.
create or replace function sync.check_checksum_page(p_run bigint, p_target text, p_rows jsonb)
returns integer
language plpgsql set search_path = ''
as $fn$
declare
  divergent integer;
  buckets integer := (select c.buckets from public.sync_checksums c where c.id = p_run);
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
  if buckets is null then
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
      insert into sync.checksum_seen (run_id, bucket, row_key)
      select $1, ((hashtext(p.row_key::text)::bigint & 2147483647) %% $3), p.row_key from page p
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
    (select string_agg(format('t.%1$I = (p.r).%1$I', k), ' and ')
     from sync.source_tables s, unnest(s.key_columns) k where s.target_table = p_target),
    same)
  into divergent
  using p_run, p_rows, buckets;
  return divergent;
end
$fn$;

-- Replaces 20261128001600_validator_streaming.sql's: each range keeps its divergent keys
-- in sync.checksum_divergent; the last writes the run's lists from them, once.
create or replace function sync.compare_checksum_range(p_run bigint, p_worker text) returns text
language plpgsql set search_path = ''
as $$
declare
  run public.sync_checksums;
  width integer := sync.integer_setting('checksum_buckets_per_statement', 1, 65536);
  last_bucket integer;
  phase_after text;
  kept bigint;
  max_listed integer;
begin
  perform sync.hold_validation(p_run, p_worker);
  select * into run from public.sync_checksums where id = p_run;
  if run.phase <> 'compare' then
    return run.phase;
  end if;
  if run.streamed then
    -- The unseen pass reads only keys (no digests), and each statement reads the whole
    -- target to bucket it: as few statements as keep each under
    -- checksum_unseen_rows_per_statement of the table's estimated rows (one, at the
    -- report's volume; a handful at 100x, each far under the 2-minute timeout).
    width := greatest(width, floor(run.buckets::numeric
      * (select value::numeric from sync.settings where key = 'checksum_unseen_rows_per_statement')
      / greatest(sync.estimated_rows(format('public.%I', run.target_table)::regclass), 1))::integer);
  end if;
  last_bucket := least(run.next_bucket + width - 1, run.buckets - 1);
  if run.streamed then
    with found as (
      select * from sync.unseen_checksum(p_run, run.target_table, run.buckets, run.next_bucket, last_bucket)
    ),
    kept as (
      insert into sync.checksum_divergent (run_id, kind, row_key)
      select p_run, 'unexpected', f.row_key from found f where f.row_key is not null
    )
    update public.sync_checksums c
    set target_rows = coalesce(c.target_rows, 0) + (select max(f.target_rows) from found f),
        expected_rows = coalesce(c.expected_rows, 0),
        compared_at = coalesce(c.compared_at, now()),
        next_bucket = last_bucket + 1
    where c.id = p_run;
  else
    with found as (
      select * from sync.compare_checksum(p_run, run.target_table, run.buckets, run.next_bucket, last_bucket)
    ),
    kept as (
      insert into sync.checksum_divergent (run_id, kind, row_key)
      select p_run, f.kind, f.row_key from found f where f.row_key is not null
    )
    update public.sync_checksums c
    set expected_rows = coalesce(c.expected_rows, 0) + (select max(f.expected_rows) from found f),
        target_rows = coalesce(c.target_rows, 0) + (select max(f.target_rows) from found f),
        compared_at = coalesce(c.compared_at, now()),
        next_bucket = last_bucket + 1
    where c.id = p_run;
  end if;
  if last_bucket + 1 >= run.buckets then
    kept := (select count(*) from sync.checksum_divergent d where d.run_id = p_run)
            + (select count(*) from sync.checksum_unmappable u where u.run_id = p_run);
    max_listed := sync.integer_setting('checksum_max_listed', 1, 100000000);
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

-- Replaces 20261128001600_validator_streaming.sql's: an ended run's divergent keys go too.
create or replace function sync.end_validation(p_run bigint, p_status text, p_error text default null)
returns void
language plpgsql set search_path = ''
as $$
begin
  if p_status not in ('done', 'failed') then
    raise exception 'sync.end_validation: run % cannot end as %', p_run, p_status using errcode = '22023';
  end if;
  update public.sync_checksums
  set status = p_status, phase = case when p_status = 'done' then 'done' else phase end,
      error = coalesce(p_error, error), checked_at = coalesce(checked_at, now()),
      lease_owner = null, lease_expires_at = null
  where id = p_run and status in ('queued', 'running');
  update sync.backfill_jobs set status = case when p_status = 'done' then 'done' else 'cancelled' end,
    finished_at = coalesce(finished_at, now())
  where checksum_run_id = p_run and status in ('pending', 'running');
  delete from sync.checksum_items where run_id = p_run;
  delete from sync.checksum_seen where run_id = p_run;
  delete from sync.checksum_divergent where run_id = p_run;
  delete from sync.checksum_unmappable where run_id = p_run;
  perform sync.start_queued_validations();
end
$$;


-- What a request reads of a run's findings: the first p_limit entries of each list (in
-- the lists' order) and how many each holds. A run that does not exist gives no row.
create function sync.validation_findings(p_run bigint, p_limit integer)
returns table (missing jsonb, unexpected jsonb, different jsonb, unmappable jsonb,
               missing_count integer, unexpected_count integer, different_count integer,
               unmappable_count integer)
language sql stable set search_path = ''
as $$
  select jsonb_path_query_array(c.missing, '$[0 to $n]', n.vars),
         jsonb_path_query_array(c.unexpected, '$[0 to $n]', n.vars),
         jsonb_path_query_array(c.different, '$[0 to $n]', n.vars),
         jsonb_path_query_array(c.unmappable, '$[0 to $n]', n.vars),
         jsonb_array_length(c.missing), jsonb_array_length(c.unexpected),
         jsonb_array_length(c.different), jsonb_array_length(c.unmappable)
  from public.sync_checksums c
  cross join (select jsonb_build_object('n', greatest(p_limit, 1) - 1) as vars) n
  where c.id = p_run
$$;

revoke all on function sync.divergent_list(bigint, text, jsonb),
  sync.validation_findings(bigint, integer) from public;
