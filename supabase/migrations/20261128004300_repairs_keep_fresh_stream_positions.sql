-- A repair keeps a stream position within the clock's granularity of its read
-- (docs/sync-semantics.md, "Repairs").
--
-- A repair (the validator's, a write-back's restore, a collapsed key's re-read) replaces
-- whatever was written here before it saw the divergence, whatever its position, and the
-- row, tombstone or observation then held the repair's read stamp and no sequence
-- number: the stream record it had reflected was forgotten. If an older record of the
-- same item was then delivered again (a retried batch) and had been created within the
-- granularity (1 s) of the read, the guard let it win, as a stream change wins over any
-- read it may have come after, and the row went back to a state DynamoDB no longer
-- held, for good: the newer record had been applied already and never came again. A
-- write-back's restore, which reads the item right after a concurrent change made the
-- edit fail, is the likeliest to read within that second.
--
-- Now a repair that replaces a stream change made within the granularity of its read,
-- or after it, keeps that change's position (sequence number and time) with the
-- repair's content; a tombstone it writes for a deleted row keeps the row's, and a row
-- it brings back over such a tombstone takes the tombstone's. The guard then keeps out
-- every record older than the one replaced, as it did before the repair. What it lets in
-- is no more than the read's stamp did: a record newer than the kept one was made within
-- the same second, and the read's stamp let any such record in too. Outside that window
-- the repair is positioned at its read, as before: keeping an older number there would
-- let a dead letter replayed between it and the read win over the read.
--
-- Replaces sync.plain_merge_body and sync.collapsed_merge_body of
-- 20261128001400_compiled_merges.sql (whole; the same signatures), then recompiles every
-- merge (the staged merges follow: they are derived from the compiled ones).

-- Whether a repair whose read is stamped new_at keeps the position (old_seq, old_at) of
-- what it replaces: when that is a stream change not surely made before the read.
create function sync.repair_keeps_position_expression(
  old_seq text, old_at text, new_at text, granularity text
) returns text
language sql immutable parallel safe set search_path = ''
as $$
  select format('(%1$s is not null and %2$s >= %3$s - %4$s)', old_seq, old_at, new_at, granularity)
$$;
comment on function sync.repair_keeps_position_expression(text, text, text, text) is
  'Whether a repair keeps the stream position of what it replaces, as SQL text, written into every compiled merge.';
revoke all on function sync.repair_keeps_position_expression(text, text, text, text) from public;

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
      -- The deleted row's stream position, where a repair keeps it (its tombstone below).
      returning %10$s as row_key,
                case when l.seen_at is not null and %15$s then t.sync_sequence end as kept_seq,
                t.sync_changed_at as kept_at
    ),
    -- A repair replaces a tombstone recorded before it saw the divergence, keeping the
    -- newest stream position within the granularity of the read, or after it, of the
    -- tombstone and of the row it deletes (as below).
    retombstoned as (
      update sync.tombstones tb
      set sync_sequence = case when d.kept_seq is not null and (not %16$s or d.kept_seq > tb.sync_sequence)
                                 then d.kept_seq
                               when %16$s then tb.sync_sequence else l.seq end,
          deleted_at = case when d.kept_seq is not null and (not %16$s or d.kept_seq > tb.sync_sequence)
                              then d.kept_at
                            when %16$s then tb.deleted_at else l.changed_at end,
          recorded_at = now()
      -- The row this repair deletes, where it keeps the row's position: a row and an
      -- older tombstone of its key may both be here (an upsert past a tombstone leaves it).
      from latest l left join deleted d on d.row_key = %3$s
      where l.op = 'delete' and l.seen_at is not null
        and tb.target_table = %1$L and tb.row_key = %3$s and tb.recorded_at < l.seen_at
      returning tb.row_key
    ),
    tombstoned as (
      insert into sync.tombstones as tb (target_table, row_key, sync_sequence, deleted_at)
      select %1$L, %3$s, coalesce(d.kept_seq, l.seq),
             case when d.kept_seq is not null then d.kept_at else l.changed_at end
      from latest l left join deleted d on d.row_key = %3$s
      where l.op = 'delete' and %3$s not in (select row_key from retombstoned)
      on conflict (target_table, row_key) do update
        set sync_sequence = excluded.sync_sequence, deleted_at = excluded.deleted_at,
            recorded_at = now()
        where %12$s
      returning 1
    ),
    -- A repair replaces a row written here before it saw the divergence, whatever the
    -- row's position, and keeps that position if it is a stream change made within the
    -- clock's granularity of the read or after it (20261128004300); the upsert below
    -- then leaves that key alone. Only a repair has a
    -- seen_at: testing it on the change alone filters the batch before the join, so a
    -- batch without repairs probes no index here (1,000 stream upserts probed the
    -- primary key 1,000 times for nothing, 5.7 of the merge's 44 ms).
    repaired as (
      update public.%1$I t
      set %9$s,
          sync_sequence = case when %15$s then t.sync_sequence else l.seq end,
          sync_changed_at = case when %15$s then t.sync_changed_at else l.changed_at end,
          sync_source = l.source, synced_at = now()
      from latest l
      where l.op = 'upsert' and l.seen_at is not null and %4$s and t.synced_at < l.seen_at
      returning %10$s as row_key
    ),
    upserted as (
      insert into public.%1$I as t (%5$s, sync_sequence, sync_changed_at, sync_source)
      select %6$s,
             case when l.seen_at is not null and %16$s then tb.sync_sequence else l.seq end,
             case when l.seen_at is not null and %16$s then tb.deleted_at else l.changed_at end,
             l.source
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
                          't.sync_sequence', 't.sync_changed_at', g),
    sync.repair_keeps_position_expression('t.sync_sequence', 't.sync_changed_at', 'l.changed_at', g),
    sync.repair_keeps_position_expression('tb.sync_sequence', 'tb.deleted_at', 'l.changed_at', g));
end
$fn$;

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
  -- A repair replaces an observation recorded here before it saw the divergence (keeping
  -- its position if that is a stream change within the granularity of the read,
  -- 20261128004300); the insert below then leaves it alone. Only a repair has a seen_at, tested first so that
  -- other changes probe no index here (as in the plain merge); the repairs' keys, as an
  -- array, bound the observations read to theirs (none in a batch without repairs). A
  -- hash join, chosen while the table's statistics still showed it nearly empty (an
  -- initial load), otherwise read every observation of the table for each batch.
  repaired as (
    update sync.observations o
    set rank = l.rank, row = case when l.op = 'upsert' then l.row end, deleted = l.op = 'delete',
        sync_sequence = case when %9$s then o.sync_sequence else l.seq end,
        sync_changed_at = case when %9$s then o.sync_changed_at else l.changed_at end,
        sync_source = l.source, recorded_at = now()
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
    key_match,
    sync.repair_keeps_position_expression('o.sync_sequence', 'o.sync_changed_at', 'l.changed_at',
                                          'granularity'));
end
$fn$;

select sync.compile_merges();
