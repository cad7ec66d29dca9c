-- sync.compare_checksum hands its rows back one by one, fetched straight into its OUT
-- parameters (for ... in execute, return next), instead of `return query execute`, so
-- that plpgsql_check (supabase db lint) sees them assigned. Same query, same answer.
create or replace function sync.compare_checksum(p_run bigint, p_target text, p_buckets integer default 256)
returns table (kind text, row_key jsonb, expected_rows bigint, target_rows bigint)
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
      select abs(hashtext(row_key::text)) %% $2 as bucket,
             md5(string_agg(row_key::text || digest, ',' order by row_key::text)) as sum
      from expected group by 1
    ),
    target_buckets as (
      select abs(hashtext(row_key::text)) %% $2 as bucket,
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
            where abs(hashtext(row_key::text)) %% $2 in (select bucket from differing)) e
      full join (select * from target
                 where abs(hashtext(row_key::text)) %% $2 in (select bucket from differing)) t
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
    return next;
  end loop;
end
$fn$;
