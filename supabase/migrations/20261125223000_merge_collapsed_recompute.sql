-- sync.merge_collapsed recomputes the row of every key in the batch, not only of keys
-- whose observations changed, and rewrites a row whose content differs from its
-- observation even when the position columns agree. Without this, the validator's
-- repair could not restore a collapsed row whose observations were intact (the repair's
-- changes are skipped by the guard as not newer, and nothing was recomputed).
create or replace function sync.merge_collapsed(p_target text, p_key text[], p_changes jsonb)
returns table (applied bigint, upserted bigint, deleted bigint)
language plpgsql set search_path = ''
as $fn$
declare
  cols text[];
  touched jsonb[];
  merged bigint;
  written bigint;
  removed bigint;
  key_of_row text;
  key_of_t text;
begin
  select array_agg(a.attname::text order by a.attnum) into cols
  from pg_attribute a
  where a.attrelid = format('public.%I', p_target)::regclass and a.attnum > 0
    and not a.attisdropped and a.attgenerated = ''
    and a.attname not like 'sync\_%' and a.attname <> 'synced_at';
  select 'jsonb_build_object(' || string_agg(format('%L, x.c -> %L -> %L', k, 'row', k), ', ') || ')',
         'jsonb_build_object(' || string_agg(format('%L, t.%I', k, k), ', ') || ')'
    into key_of_row, key_of_t
  from unnest(p_key) k;

  execute format($sql$
    with changes as (
      select x.ord, x.c ->> 'op' as op, (x.c ->> 'seq')::numeric as seq,
             (x.c ->> 'changed_at')::timestamptz as changed_at, x.c ->> 'source' as source,
             x.c -> 'row' as row, (x.c ->> 'range_key')::numeric as range_key,
             coalesce((x.c ->> 'rank')::smallint, 0) as rank, %2$s as row_key
      from jsonb_array_elements($1) with ordinality as x(c, ord)
    ),
    latest as (
      -- One change per observation: the newest of the batch.
      select distinct on (row_key, range_key) * from changes
      order by row_key, range_key, seq desc nulls last, changed_at desc, ord desc
    ),
    merged as (
      insert into sync.observations as o
        (target_table, row_key, range_key, rank, row, deleted, sync_sequence, sync_changed_at, sync_source)
      select %1$L, l.row_key, l.range_key, l.rank, case when l.op = 'upsert' then l.row end,
             l.op = 'delete', l.seq, l.changed_at, l.source
      from latest l
      on conflict (target_table, row_key, range_key) do update
        set rank = excluded.rank, row = excluded.row, deleted = excluded.deleted,
            sync_sequence = excluded.sync_sequence, sync_changed_at = excluded.sync_changed_at,
            sync_source = excluded.sync_source, recorded_at = now()
        where sync.is_newer(excluded.sync_sequence, excluded.sync_changed_at, o.sync_sequence, o.sync_changed_at)
      returning o.row_key
    )
    -- Every key of the batch is recomputed, applied or not (a data-modifying CTE runs
    -- whether or not it is read): the row is a function of the observations, so a
    -- repair can restore a row whose observations were right all along.
    select coalesce((select array_agg(distinct l.row_key) from latest l), '{}'),
           (select count(*) from merged)
    $sql$, p_target, key_of_row)
  into touched, merged using p_changes;

  execute format($sql$
    with best as (
      select distinct on (o.row_key) o.*
      from sync.observations o
      where o.target_table = %1$L and o.row_key = any($1) and not o.deleted
      order by o.row_key, o.range_key desc, o.rank desc, o.sync_sequence desc nulls last,
               o.sync_changed_at desc
    ),
    removed as (
      delete from public.%1$I t
      where %2$s = any($1) and not exists (select 1 from best b where b.row_key = %2$s)
      returning 1
    ),
    written as (
      insert into public.%1$I as t (%3$s, sync_range_key, sync_sequence, sync_changed_at, sync_source)
      select %4$s, b.range_key, b.sync_sequence, b.sync_changed_at, b.sync_source
      from best b cross join lateral jsonb_populate_record(null::public.%1$I, b.row) r
      on conflict (%5$s) do update
        set %6$s, sync_range_key = excluded.sync_range_key, sync_sequence = excluded.sync_sequence,
            sync_changed_at = excluded.sync_changed_at, sync_source = excluded.sync_source,
            synced_at = now()
        where (t.sync_range_key, t.sync_sequence, t.sync_changed_at)
          is distinct from (excluded.sync_range_key, excluded.sync_sequence, excluded.sync_changed_at)
          or sync.canonical_digest(to_jsonb(t)) is distinct from sync.canonical_digest(to_jsonb(excluded))
      returning 1
    )
    select (select count(*) from written), (select count(*) from removed)
    $sql$,
    p_target,
    key_of_t,
    (select string_agg(format('%I', c), ', ') from unnest(cols) c),
    (select string_agg(format('r.%I', c), ', ') from unnest(cols) c),
    (select string_agg(format('%I', k), ', ') from unnest(p_key) k),
    (select string_agg(format('%1$I = excluded.%1$I', c), ', ') from unnest(cols) c where c <> all (p_key))
  ) into written, removed using touched;

  return query select merged, written, removed;
end
$fn$;
