-- sync.merge_plain returns its counts through `execute ... into` and `return next`
-- instead of `return query execute`, so that plpgsql_check (supabase db lint) can see
-- its OUT parameters assigned. Same statement, same behaviour.
create or replace function sync.merge_plain(p_target text, p_key text[], p_changes jsonb)
returns table (applied bigint, upserted bigint, deleted bigint)
language plpgsql set search_path = ''
as $fn$
declare
  cols text[];
  key_of_l text;
  key_json text;
  key_match text;
begin
  select array_agg(a.attname::text order by a.attnum) into cols
  from pg_attribute a
  where a.attrelid = format('public.%I', p_target)::regclass and a.attnum > 0
    and not a.attisdropped and a.attgenerated = ''
    and a.attname not like 'sync\_%' and a.attname <> 'synced_at';
  select string_agg(format('(l.r).%I', k), ', '),
         'jsonb_build_object(' || string_agg(format('%L, (l.r).%I', k, k), ', ') || ')',
         string_agg(format('t.%1$I = (l.r).%1$I', k), ' and ')
    into key_of_l, key_json, key_match
  from unnest(p_key) k;

  execute format($sql$
    with changes as (
      select x.ord, x.c ->> 'op' as op, (x.c ->> 'seq')::numeric as seq,
             (x.c ->> 'changed_at')::timestamptz as changed_at, x.c ->> 'source' as source,
             jsonb_populate_record(null::public.%1$I, x.c -> 'row') as r
      from jsonb_array_elements($1) with ordinality as x(c, ord)
    ),
    latest as (
      -- One change per key: the newest of the batch.
      select distinct on (%2$s) * from changes l
      order by %2$s, l.seq desc nulls last, l.changed_at desc, l.ord desc
    ),
    deleted as (
      delete from public.%1$I t using latest l
      where l.op = 'delete' and %4$s
        and sync.is_newer(l.seq, l.changed_at, t.sync_sequence, t.sync_changed_at)
      returning 1
    ),
    tombstoned as (
      insert into sync.tombstones as tb (target_table, row_key, sync_sequence, deleted_at)
      select %1$L, %3$s, l.seq, l.changed_at from latest l where l.op = 'delete'
      on conflict (target_table, row_key) do update
        set sync_sequence = excluded.sync_sequence, deleted_at = excluded.deleted_at,
            recorded_at = now()
        where sync.is_newer(excluded.sync_sequence, excluded.deleted_at, tb.sync_sequence, tb.deleted_at)
      returning 1
    ),
    upserted as (
      insert into public.%1$I as t (%5$s, sync_sequence, sync_changed_at, sync_source)
      select %6$s, l.seq, l.changed_at, l.source
      from latest l
      left join sync.tombstones tb on tb.target_table = %1$L and tb.row_key = %3$s
      where l.op = 'upsert'
        and (tb.row_key is null or sync.is_newer(l.seq, l.changed_at, tb.sync_sequence, tb.deleted_at))
      on conflict (%7$s) do update
        set %8$s, sync_sequence = excluded.sync_sequence, sync_changed_at = excluded.sync_changed_at,
            sync_source = excluded.sync_source, synced_at = now()
        where sync.is_newer(excluded.sync_sequence, excluded.sync_changed_at, t.sync_sequence, t.sync_changed_at)
      returning 1
    )
    select (select count(*) from upserted) + (select count(*) from deleted),
           (select count(*) from upserted), (select count(*) from deleted)
    $sql$,
    p_target,
    key_of_l,
    key_json,
    key_match,
    (select string_agg(format('%I', c), ', ') from unnest(cols) c),
    (select string_agg(format('(l.r).%I', c), ', ') from unnest(cols) c),
    (select string_agg(format('%I', k), ', ') from unnest(p_key) k),
    (select string_agg(format('%1$I = excluded.%1$I', c), ', ') from unnest(cols) c where c <> all (p_key))
  ) into applied, upserted, deleted using p_changes;
  return next;
end
$fn$;
