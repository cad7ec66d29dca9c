-- A repair keeps the stream position of what it replaces (docs/sync-semantics.md,
-- "Repairs"). Found by a review of the merge:
--
-- A repair (the validator's, a write-back's restore, a collapsed re-read) replaces a row,
-- a tombstone or an observation written before it saw the divergence, whatever its
-- position, and stored its own: no sequence number, the read's time. The row then fell
-- from "compared by sequence number" to "a read against the stream within the
-- granularity", and a stream record older than the one it had reflected, redelivered
-- (a retried batch) within a second of the repair's read, was applied over it: S1 (seq
-- 100) and S2 (seq 101) applied, a repair, then S1 again left S1's state; a deleted item
-- came back the same way through its tombstone. Now a repair keeps the sequence number
-- of what it replaced (its read reflects that change: it came after it) and the later of
-- the two times; a stale record then loses on its number, and a newer one still wins.
-- Only repairs: every other change keeps its own position, as before.

-- Replaces 20261128001400_compiled_merges.sql's (whole; the same signature).
create or replace function sync.plain_merge_body(p_target text, p_key text[], p_cols text[])
returns text
language plpgsql stable set search_path = ''
as $fn$
declare
  key_of_l text := (select string_agg(format('(l.r).%I', k), ', ') from unnest(p_key) k);
  key_json text := (select 'jsonb_build_object(' ||
                           string_agg(format('%L, (l.r).%I', k, k), ', ') || ')'
                    from unnest(p_key) k);
  key_match text := (select string_agg(format('t.%1$I = (l.r).%1$I', k), ' and ')
                     from unnest(p_key) k);
  g text := 'granularity';
begin
  return format($sql$
  return query
    with changes as (
      select x.ord, x.op, x.seq, x.changed_at, x.source,
             -- A repair's moment of divergence; null otherwise.
             case when x.source = 'repair' then x.seen_at end as seen_at,
             jsonb_populate_record(null::public.%1$I, x.row) as r
      from jsonb_populate_recordset(null::sync.change, p_changes) with ordinality
        as x(op, row, seq, changed_at, source, range_key, rank, seen_at, ord)
    ),
    latest as (
      -- One change per key: the newest of the batch.
      select distinct on (%2$s) * from changes l
      order by %2$s, l.seq desc nulls last, l.changed_at desc, l.ord desc
    ),
    deleted as (
      delete from public.%1$I t using latest l
      where l.op = 'delete' and %4$s
        and (%11$s or t.synced_at < l.seen_at)
      returning %10$s as row_key, t.sync_sequence, t.sync_changed_at
    ),
    -- A repair replaces a tombstone recorded before it saw the divergence.
    retombstoned as (
      update sync.tombstones tb
      set sync_sequence = coalesce(l.seq, tb.sync_sequence),
          deleted_at = greatest(l.changed_at, tb.deleted_at), recorded_at = now()
      from latest l
      where l.op = 'delete' and l.seen_at is not null
        and tb.target_table = %1$L and tb.row_key = %3$s and tb.recorded_at < l.seen_at
      returning tb.row_key
    ),
    tombstoned as (
      insert into sync.tombstones as tb (target_table, row_key, sync_sequence, deleted_at)
      select %1$L, %3$s,
             case when l.seen_at is null then l.seq else coalesce(l.seq, d.sync_sequence) end,
             case when l.seen_at is null then l.changed_at
                  else greatest(l.changed_at, d.sync_changed_at) end
      from latest l
      left join deleted d on l.seen_at is not null and d.row_key = %3$s
      where l.op = 'delete' and %3$s not in (select row_key from retombstoned)
      on conflict (target_table, row_key) do update
        set sync_sequence = excluded.sync_sequence, deleted_at = excluded.deleted_at,
            recorded_at = now()
        where %12$s
      returning 1
    ),
    -- A repair replaces a row written here before it saw the divergence, whatever the
    -- row's position; the upsert below then leaves that key alone. Only a repair has a
    -- seen_at: testing it on the change alone filters the batch before the join, so a
    -- batch without repairs probes no index here (1,000 stream upserts probed the
    -- primary key 1,000 times for nothing, 5.7 of the merge's 44 ms).
    repaired as (
      update public.%1$I t
      set %9$s, sync_sequence = coalesce(l.seq, t.sync_sequence),
          sync_changed_at = greatest(l.changed_at, t.sync_changed_at), sync_source = l.source,
          synced_at = now()
      from latest l
      where l.op = 'upsert' and l.seen_at is not null and %4$s and t.synced_at < l.seen_at
      returning %10$s as row_key
    ),
    upserted as (
      insert into public.%1$I as t (%5$s, sync_sequence, sync_changed_at, sync_source)
      select %6$s, l.seq, l.changed_at, l.source
      from latest l
      left join sync.tombstones tb on tb.target_table = %1$L and tb.row_key = %3$s
      where l.op = 'upsert' and %3$s not in (select row_key from repaired)
        and (tb.row_key is null or %13$s or tb.recorded_at < l.seen_at)
      on conflict (%7$s) do update
        set %8$s, sync_sequence = excluded.sync_sequence, sync_changed_at = excluded.sync_changed_at,
            sync_source = excluded.sync_source, synced_at = now()
        where %14$s
      returning 1
    )
    select (select count(*) from upserted) + (select count(*) from repaired)
             + (select count(*) from deleted),
           (select count(*) from upserted) + (select count(*) from repaired),
           (select count(*) from deleted);
  $sql$,
    p_target,
    key_of_l,
    key_json,
    key_match,
    (select string_agg(format('%I', c), ', ') from unnest(p_cols) c),
    (select string_agg(format('(l.r).%I', c), ', ') from unnest(p_cols) c),
    (select string_agg(format('%I', k), ', ') from unnest(p_key) k),
    (select string_agg(format('%1$I = excluded.%1$I', c), ', ') from unnest(p_cols) c
     where c <> all (p_key)),
    (select string_agg(format('%1$I = (l.r).%1$I', c), ', ') from unnest(p_cols) c
     where c <> all (p_key)),
    (select 'jsonb_build_object(' || string_agg(format('%L, t.%I', k, k), ', ') || ')'
     from unnest(p_key) k),
    sync.newer_expression('l.seq', 'l.changed_at', 't.sync_sequence', 't.sync_changed_at', g),
    sync.newer_expression('excluded.sync_sequence', 'excluded.deleted_at',
                          'tb.sync_sequence', 'tb.deleted_at', g),
    sync.newer_expression('l.seq', 'l.changed_at', 'tb.sync_sequence', 'tb.deleted_at', g),
    sync.newer_expression('excluded.sync_sequence', 'excluded.sync_changed_at',
                          't.sync_sequence', 't.sync_changed_at', g));
end
$fn$;


-- Replaces 20261128001400_compiled_merges.sql's (whole; the same signature).
create or replace function sync.collapsed_merge_body(p_target text, p_key text[], p_cols text[])
returns text
language plpgsql stable set search_path = ''
as $fn$
declare
  key_of_row text := (select 'jsonb_build_object(' ||
                             string_agg(format('%L, x.row -> %L', k, k), ', ') || ')'
                      from unnest(p_key) k);
  key_match text := (select string_agg(format('t.%1$I = (x.r).%1$I', k), ' and ')
                     from unnest(p_key) k);
begin
  return format($sql$
  with changes as (
    select x.ord, x.op, x.seq, x.changed_at, x.source,
           case when x.source = 'repair' then x.seen_at end as seen_at,
           x.row, x.range_key, coalesce(x.rank, 0) as rank, %2$s as row_key
    from jsonb_populate_recordset(null::sync.change, p_changes) with ordinality
      as x(op, row, seq, changed_at, source, range_key, rank, seen_at, ord)
  ),
  latest as (
    -- One change per observation: the newest of the batch.
    select distinct on (row_key, range_key) * from changes
    order by row_key, range_key, seq desc nulls last, changed_at desc, ord desc
  ),
  -- A repair replaces an observation recorded here before it saw the divergence; the
  -- insert below then leaves it alone. Only a repair has a seen_at, tested first so that
  -- other changes probe no index here (as in the plain merge); the repairs' keys, as an
  -- array, bound the observations read to theirs (none in a batch without repairs). A
  -- hash join, chosen while the table's statistics still showed it nearly empty (an
  -- initial load), otherwise read every observation of the table for each batch.
  repaired as (
    update sync.observations o
    set rank = l.rank, row = case when l.op = 'upsert' then l.row end, deleted = l.op = 'delete',
        sync_sequence = coalesce(l.seq, o.sync_sequence),
        sync_changed_at = greatest(l.changed_at, o.sync_changed_at), sync_source = l.source,
        recorded_at = now()
    from latest l
    where l.seen_at is not null
      and o.target_table = %1$L
      and o.row_key = any (array(select r.row_key from latest r where r.seen_at is not null))
      and o.row_key = l.row_key and o.range_key = l.range_key
      and o.recorded_at < l.seen_at
    returning o.row_key, o.range_key
  ),
  merged as (
    insert into sync.observations as o
      (target_table, row_key, range_key, rank, row, deleted, sync_sequence, sync_changed_at, sync_source)
    select %1$L, l.row_key, l.range_key, l.rank, case when l.op = 'upsert' then l.row end,
           l.op = 'delete', l.seq, l.changed_at, l.source
    from latest l
    where (l.row_key, l.range_key) not in (select r.row_key, r.range_key from repaired r)
    on conflict (target_table, row_key, range_key) do update
      set rank = excluded.rank, row = excluded.row, deleted = excluded.deleted,
          sync_sequence = excluded.sync_sequence, sync_changed_at = excluded.sync_changed_at,
          sync_source = excluded.sync_source, recorded_at = now()
      where %7$s
    returning o.row_key, o.range_key, o.deleted, o.sync_source
  ),
  -- A change that removed the observation its row holds: the row falls back below to the
  -- newest observation kept here, but older items still live may have been purged
  -- (observation_retention), so the key is queued for a consistent re-read of its items
  -- (20261128002900_collapsed_rereads.sql). The row's range key is read through the
  -- primary key, once per removal; a batch without removals reads nothing: the CASE keeps
  -- the lookup from running for any other change, whatever order the planner gives the
  -- conditions (with statistics from when the table was nearly empty it put the lookup
  -- first, a scan of the table for each of an export chunk's 20,000 observations).
  -- Repairs (the re-read itself) and backfills queue none.
  reread as (
    insert into sync.collapsed_rereads as q (target_table, row_key)
    select %1$L, m.row_key
    from merged m
    where m.deleted and m.sync_source not in ('repair', 'backfill')
      and m.range_key = case when m.deleted then (
        select t.sync_range_key
        from (select jsonb_populate_record(null::public.%1$I, m.row_key) as r) x
        join public.%1$I t on %8$s
        limit 1) end
    on conflict (target_table, row_key) do update
      -- A key being read keeps its lease (its re-read then reads again at once,
      -- sync.finish_reread); one backing off after a failure is read again now.
      set queued_at = now(), attempts = 0, error = null,
          not_before = case when q.error is null then q.not_before else now() end
  )
  select coalesce((select array_agg(distinct l.row_key) from latest l), '{}'),
         (select count(*) from merged) + (select count(*) from repaired)
  into touched, merged;

  -- Per touched key, its best live observation: a top-1 through the primary key of
  -- sync.observations, whatever the table's size. `deleted is false`, not `not deleted`:
  -- the partial index of live observations by time (observations_live_recorded_at_idx,
  -- for the purge's walk) holds the key only behind recorded_at, so a probe through it
  -- reads every live observation of the table; with statistics from when the table was
  -- nearly empty the planner chose it, 2-7 ms a key (an export chunk of 2,247 visitors
  -- took 21 s instead of about 1). Written so, the probe cannot prove that index's
  -- predicate, and the primary key is the one index left to it (the function's
  -- enable_seqscan = off, sync.compile_merge, leaves no scan of the table either).
  with best as (
    select b.* from unnest(touched) k(row_key)
    cross join lateral (
      select o.* from sync.observations o
      where o.target_table = %1$L and o.row_key = k.row_key and o.deleted is false
      order by o.range_key desc, o.rank desc, o.sync_sequence desc nulls last,
               o.sync_changed_at desc
      limit 1) b
  ),
  -- Keys with no live observation left lose their row; the key is matched by the
  -- table's own typed columns, so the primary key finds it. Whether a key has a live
  -- observation is a probe of sync.observations' primary key per key: a scalar subquery
  -- with a limit, which the planner keeps as such. As an anti-join (not exists against
  -- best, or against sync.observations) a nested loop could scan a whole set again for
  -- every key: best's rows, or every live observation of the table when its statistics
  -- still showed it nearly empty (an initial load): quadratic in the batch's keys, 7-10 s
  -- for a chunk of 20,000 visitors, and 90 s once in a real load.
  removed as (
    delete from public.%1$I t
    using (select k.row_key, jsonb_populate_record(null::public.%1$I, k.row_key) as r
           from unnest(touched) k(row_key)) x
    where %8$s and (select true from sync.observations o
                    where o.target_table = %1$L and o.row_key = x.row_key and o.deleted is false
                    limit 1) is null
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
  into written, removed;

  return query select merged, written, removed;
  $sql$,
    p_target,
    key_of_row,
    (select string_agg(format('%I', c), ', ') from unnest(p_cols) c),
    (select string_agg(format('r.%I', c), ', ') from unnest(p_cols) c),
    (select string_agg(format('%I', k), ', ') from unnest(p_key) k),
    (select string_agg(format('%1$I = excluded.%1$I', c), ', ') from unnest(p_cols) c
     where c <> all (p_key)),
    sync.newer_expression('excluded.sync_sequence', 'excluded.sync_changed_at',
                          'o.sync_sequence', 'o.sync_changed_at', 'granularity'),
    key_match);
end
$fn$;

-- Every table's compiled merge (and staged merge) again, from the bodies above.
select sync.compile_merges();
