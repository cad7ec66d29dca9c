-- The validator's page compare reads only the target's rows of the page's keys
-- (docs/sync-semantics.md, "Verification"; README, "Where the time goes", the validator).
--
-- Profiled on the local stack (pg_stat_user_functions, validating firespring_actions at
-- scale 1, 29 pages of 1,000 rows): sync.check_checksum_page took 770 ms a call, most of
-- the validation's time, for two reasons:
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
--   `on delete cascade` did (sync.end_validation deletes them when a run ends, as before).
--
-- Replaced here (defined here from now on): sync.check_checksum_page and
-- sync.unseen_checksum of 20261128001600_validator_streaming.sql, same signatures,
-- arguments and results.

alter table sync.checksum_seen drop constraint checksum_seen_run_id_fkey;

-- The cascade of the dropped key, once per statement that deletes runs (retention). As
-- the key's cascade did, it runs with its owner's rights: whoever may delete a run (the
-- service role) deletes its seen keys, which only the sync schema's owner may touch.
create function sync.forget_seen_of_deleted_runs() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from sync.checksum_seen s using gone g where s.run_id = g.id;
  return null;
end
$$;
create trigger sync_checksums_forget_seen
  after delete on public.sync_checksums
  referencing old table as gone
  for each statement execute function sync.forget_seen_of_deleted_runs();
revoke all on function sync.forget_seen_of_deleted_runs() from public;

create or replace function sync.check_checksum_page(p_run bigint, p_target text, p_rows jsonb)
returns integer
language plpgsql set search_path = ''
as $fn$
declare
  divergent integer;
  buckets integer := (select c.buckets from public.sync_checksums c where c.id = p_run);
  -- The page row (p.r) equals the target's (t) column by column, as sync.canonical_digest
  -- compares them (see above).
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
  -- The run's row, read above, stands in for the foreign key dropped below.
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
      -- into a hash join over the whole target (see above).
      left join lateral (select * from public.%1$I t where %3$s limit 1) t on true
      where t is null or not (%4$s)
    ),
    noted as (
      update public.sync_checksums c
      set missing = c.missing || coalesce((select jsonb_agg(f.row_key order by f.row_key) from found f
                                           where f.kind = 'missing'), '[]'),
          different = c.different || coalesce((select jsonb_agg(f.row_key order by f.row_key) from found f
                                               where f.kind = 'different'), '[]'),
          expected_rows = coalesce(c.expected_rows, 0) + (select count(*) from seen),
          compared_at = coalesce(c.compared_at, now())
      where c.id = $1
      returning 1
    )
    select (select count(*) from found)::integer + 0 * (select count(*) from noted)
    $sql$, p_target, sync.key_json_sql(p_target, 'r'),
    (select string_agg(format('t.%1$I = (p.r).%1$I', k), ' and ')
     from sync.source_tables s, unnest(s.key_columns) k where s.target_table = p_target),
    same)
  into divergent
  using p_run, p_rows, buckets;
  return divergent;
end
$fn$;

revoke all on function sync.check_checksum_page(bigint, text, jsonb) from public;

-- Replaces 20261128001600_validator_streaming.sql's (defined here from now on): the
-- target's keys in buckets p_first .. p_last that a streamed run's Scan has not seen, and
-- the count of the target's rows in those buckets. At the report's volume one statement
-- covers every bucket (sync.compare_checksum_range), and then no key is hashed into its
-- bucket: that filter, on every row of the target, was most of the statement's time
-- (0.6 s of 0.83 s for firespring_actions on the local stack). Same result.
create or replace function sync.unseen_checksum(p_run bigint, p_target text, p_buckets integer,
                                                p_first integer, p_last integer)
returns table (row_key jsonb, target_rows bigint)
language plpgsql set search_path = ''
as $fn$
declare
  every_bucket boolean := p_first <= 0 and p_last >= p_buckets - 1;
begin
  for row_key, target_rows in execute format($sql$
    with target as (
      select k.row_key
      from public.%1$I t cross join lateral (select %2$s as row_key) k
      -- sync.checksum_bucket written out: a function with its own search_path is not
      -- inlined, and its call per row was most of the statement's time.
      where %3$s
    )
    select t.row_key, (select count(*) from target)
    from target t
    where not exists (select from sync.checksum_seen s
                      where s.run_id = $1 and s.bucket between $3 and $4 and s.row_key = t.row_key)
    union all
    -- Always one row carrying the count, even when nothing is unexpected.
    select null, (select count(*) from target)
    $sql$, p_target, sync.key_json_sql(p_target, 't'),
    case when every_bucket then 'true'
         else '((hashtext(k.row_key::text)::bigint & 2147483647) % $2) between $3 and $4' end)
  using p_run, p_buckets, p_first, p_last
  loop
    return next;
  end loop;
end
$fn$;

revoke all on function sync.unseen_checksum(bigint, text, integer, integer, integer) from public;
