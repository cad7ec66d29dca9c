-- The checksum validator's SQL half (docs/interfaces.md, "data-checksum-validator";
-- docs/sync-semantics.md, "Verification"). The validator scans the source, maps every item
-- through the same registry and transformers as the sync, and stages what each row
-- should be; Postgres reduces both sides through one canonical form, compares them per
-- bucket of keys, and lists key by key only the buckets that differ.

-- The tenth table: one row per run of the checksum validator. A run of a big table
-- proceeds in the background; its row shows progress until `match` is known.
create table public.sync_checksums (
  id bigint generated always as identity primary key,
  target_table text not null references sync.source_tables (target_table),
  status text not null default 'running' check (status in ('running', 'done', 'failed')),
  started_at timestamptz not null default now(),
  checked_at timestamptz,
  source_items bigint,
  expected_rows bigint,
  target_rows bigint,
  match boolean,
  missing jsonb not null default '[]'::jsonb,
  unexpected jsonb not null default '[]'::jsonb,
  different jsonb not null default '[]'::jsonb,
  repaired boolean not null default false,
  error text,
  scan_state jsonb not null default '{}'::jsonb,
  repair_requested boolean not null default false,
  unmappable jsonb not null default '[]'::jsonb,
  progress_at timestamptz default now()
);
create index sync_checksums_table_idx on public.sync_checksums (target_table, started_at desc);
comment on table public.sync_checksums is
  'Runs of the checksum validator: source items, expected and target rows, match, and every divergent key.';
comment on column public.sync_checksums.source_items is 'Items the parallel Scan of the DynamoDB table read.';
comment on column public.sync_checksums.expected_rows is 'Rows the source projects to (distinct keys after collapsing and _deleted).';
comment on column public.sync_checksums.target_rows is 'Rows in the target table.';
comment on column public.sync_checksums.missing is 'Keys expected but not in the target.';
comment on column public.sync_checksums.unexpected is 'Keys in the target that the source does not have.';
comment on column public.sync_checksums.different is 'Keys in both whose values differ.';
comment on column public.sync_checksums.repaired is 'Whether this run re-applied the source state of the divergent keys.';
comment on column public.sync_checksums.scan_state is
  'Scan checkpoint per segment ({"0": LastEvaluatedKey | "done", ...}) while the run is under way.';
comment on column public.sync_checksums.repair_requested is
  'Whether the caller asked for the divergent keys to be repaired.';
comment on column public.sync_checksums.unmappable is
  'Source items that map to no row ([{"key": {...}, "reason": "..."}]); a table with any is never a match.';
comment on column public.sync_checksums.progress_at is
  'When the run last staged a page; sync.reap_stalled_validations fails runs that stopped making progress.';

-- What a validation run expects, staged page by page (memory stays at a page).
create unlogged table sync.checksum_items (
  run_id bigint not null references public.sync_checksums (id) on delete cascade,
  row_key jsonb not null,
  range_key numeric,
  rank smallint not null default 0,
  digest text not null
);
create index checksum_items_run_idx on sync.checksum_items (run_id, row_key);
comment on table sync.checksum_items is
  'Staging of a validation run: the digest each expected row (or observation) should have.';

-- The JSON of a target table's key, as the sync keys rows (e.g. {"pk": .., "sk": ..}).
create function sync.key_json_sql(p_target text, p_alias text) returns text
language sql stable set search_path = ''
as $$
  select 'jsonb_build_object(' ||
         string_agg(format('%L, %s.%I', k, p_alias, k), ', ' order by ordinality) || ')'
  from sync.source_tables s, unnest(s.key_columns) with ordinality as k
  where s.target_table = p_target
$$;

-- Stages a page of expected rows: [{"row": {...}, "range_key": n, "rank": n}, ...].
create function sync.stage_checksum_items(p_run bigint, p_target text, p_rows jsonb)
returns integer
language plpgsql set search_path = ''
as $fn$
declare
  staged integer;
begin
  execute format($sql$
    insert into sync.checksum_items (run_id, row_key, range_key, rank, digest)
    select $1, %2$s, (x ->> 'range_key')::numeric, coalesce((x ->> 'rank')::smallint, 0),
           sync.canonical_digest(to_jsonb(r))
    from jsonb_array_elements($2) as x
    cross join lateral jsonb_populate_record(null::public.%1$I, x -> 'row') as r
    $sql$, p_target, sync.key_json_sql(p_target, 'r'))
  using p_run, p_rows;
  get diagnostics staged = row_count;
  return staged;
end
$fn$;

-- The bucket of a key's hash (hashtext of the key's text) for the comparison, folded
-- into 0 .. p_buckets - 1 without overflow: abs() of the smallest integer, which
-- hashtext can return, is out of range ("integer out of range"); the mask keeps the low
-- 31 bits of the hash as a bigint.
create function sync.checksum_bucket(p_hash integer, p_buckets integer) returns integer
language sql immutable parallel safe set search_path = ''
as $$
  select ((p_hash::bigint & 2147483647) % p_buckets)::integer
$$;

-- Compares a run's expected rows with the target table. Returns one row per divergent
-- key (kind missing | unexpected | different), plus the two row counts, computed in
-- buckets of the key's hash: only buckets whose digests differ are compared key by key.
-- The rows are fetched straight into the OUT parameters (for ... in execute, return
-- next), so that plpgsql_check (supabase db lint) sees them assigned. Every row also
-- carries seen_at, the database's now() of the comparing transaction: the moment the
-- divergence was seen, after which a repair reads the source (docs/sync-semantics.md,
-- "Verification"; see sync.merge_plain).
create function sync.compare_checksum(p_run bigint, p_target text, p_buckets integer default 256)
returns table (kind text, row_key jsonb, expected_rows bigint, target_rows bigint,
               seen_at timestamptz)
language plpgsql set search_path = ''
as $fn$
begin
  for kind, row_key, expected_rows, target_rows in execute format($sql$
    with expected as (
      -- Collapsed tables: the observation with the largest range key (then rank) is the row.
      select distinct on (i.row_key) i.row_key, i.digest
      from sync.checksum_items i where i.run_id = $1
      order by i.row_key, i.range_key desc nulls last, i.rank desc
    ),
    target as (
      select %2$s as row_key, sync.canonical_digest(to_jsonb(t)) as digest from public.%1$I t
    ),
    expected_buckets as (
      select sync.checksum_bucket(hashtext(row_key::text), $2) as bucket,
             md5(string_agg(row_key::text || digest, ',' order by row_key::text)) as sum
      from expected group by 1
    ),
    target_buckets as (
      select sync.checksum_bucket(hashtext(row_key::text), $2) as bucket,
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
            where sync.checksum_bucket(hashtext(row_key::text), $2) in (select bucket from differing)) e
      full join (select * from target
                 where sync.checksum_bucket(hashtext(row_key::text), $2) in (select bucket from differing)) t
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
    $sql$, p_target, sync.key_json_sql(p_target, 't'))
  using p_run, p_buckets
  loop
    seen_at := now();
    return next;
  end loop;
end
$fn$;

-- A run killed mid-way (its request stopped, the function redeployed) would stay
-- 'running' with its staging rows forever: runs that staged no page for p_after are
-- failed, naming when they stopped, and their staging rows deleted. Returns how many.
create function sync.reap_stalled_validations(p_after interval default '15 minutes')
returns integer
language plpgsql set search_path = ''
as $$
declare
  reaped integer;
begin
  with stalled as (
    update public.sync_checksums c
    set status = 'failed', checked_at = now(),
        error = format('stopped making progress at %s', coalesce(c.progress_at, c.started_at))
    where c.status = 'running' and coalesce(c.progress_at, c.started_at) < now() - p_after
    returning c.id
  ),
  unstaged as (
    delete from sync.checksum_items i using stalled s where i.run_id = s.id
  )
  select count(*) into reaped from stalled;
  return reaped;
end
$$;

select cron.schedule('sync-reap-stalled-validations', '*/10 * * * *',
                     'select sync.reap_stalled_validations()');

-- The daily validation of every table: one call of the validator per table, through
-- pg_net with the project URL and service key from Vault. Results land in
-- public.sync_checksums and show in sync.status.
create function sync.validate_all() returns integer
language plpgsql set search_path = ''
as $$
declare
  t text;
  calls integer := 0;
begin
  for t in select target_table from sync.source_tables order by target_table loop
    if sync.call_edge_function('data-checksum-validator',
         jsonb_build_object('table', t, 'repair', false), 60000) is not null then
      calls := calls + 1;
    end if;
  end loop;
  return calls;
end
$$;

select cron.schedule('sync-validate-all', '17 3 * * *', 'select sync.validate_all()');

revoke all on function sync.key_json_sql(text, text), sync.checksum_bucket(integer, integer),
  sync.reap_stalled_validations(interval),
  sync.stage_checksum_items(bigint, text, jsonb), sync.compare_checksum(bigint, text, integer),
  sync.validate_all() from public;
