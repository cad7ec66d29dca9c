-- Compiled merges: one plpgsql function per mirror table, with static SQL, so that
-- Postgres plans each merge statement once per connection instead of once per call.
--
-- Why: sync.merge_plain and sync.merge_collapsed (20261128000300_merge.sql) built their
-- statement with `execute format(...)` on every call, and a dynamic statement is parsed
-- and planned every time. Measured on a batch of 10 changes (the deployed mapping's
-- batch size): 2.0 ms of planning against 1.4 ms of execution, and the statement text
-- was rebuilt from the catalog first. A static statement in a plpgsql function is
-- prepared once per session and its plan cached (the server connection outlives the
-- transaction pooler's hand-offs, so the cache holds through Supavisor too). The ordering
-- guard, called once per row as sync.is_newer, is written into the statements as an
-- expression (a SQL function with `set search_path` is never inlined, and each call
-- saves and restores that setting).
--
-- What each merge does is unchanged: the statements below are those of merge_plain and
-- merge_collapsed, which this migration drops, with the table's columns filled in.
--
-- The compiled functions are `sync.merge_into_<target table>(changes jsonb)`, made by
-- sync.compile_merge(target) from the table's columns as they are when it runs. A
-- migration that adds a mirror table or changes a mirror table's columns ends with
-- `select sync.compile_merges();`. sync.stale_merges() names every table whose compiled
-- merge is missing or was compiled from other columns than the table has now; pgTAP
-- 050-merge and tests/registry_database_test.ts check that it names none.
-- sync.merge_changes stays the one entry point of a JSON array of changes; it checks the
-- changes and calls the table's compiled merge.
--
-- The staged merge of an export backfill's chunk (issue 17; docs/sync-semantics.md,
-- "Backfills from an export"; functions-shared/export_stage.ts). The export loader COPYs a chunk of mapped changes (tens of thousands of items) into a
-- staging table, then merges them in one statement. Handing them to sync.merge_changes
-- as one JSON array cost Postgres more than the merge's own inserts for the visitors:
-- measured on one copy of the demo's visitors (13,804 changes, 35 MB): jsonb_agg of the
-- staged rows 0.94 s, merge_changes's check of every change 0.3 s, the compiled merge
-- 1.8 s. So each table gets a second compiled entry point that reads the staging table
-- directly: `sync.merge_staged_into_<target>()`, whose body is DERIVED from the table's
-- compiled merge (sync.merge_function_source) by replacing its one source of changes,
-- the jsonb_populate_recordset of p_changes, with the staging table. Every statement of
-- the merge, its ordering guard, its tombstones and its observations are the same text;
-- nothing of the guard is written twice. sync.merge_staged is its entry point, with the
-- same checks as sync.merge_changes.

-- The ordering guard as an expression over four SQL expressions and the clock's
-- granularity (docs/sync-semantics.md, "Ordering"): whether the change at (new_seq,
-- new_at) is newer than the state at (old_seq, old_at).
-- * two stream positions compare as numbers;
-- * a stream change replaces a row read by a Scan at old_at unless it surely happened
--   before the read (ties within the granularity go to the stream);
-- * a read at new_at replaces a stream change only if that change surely happened
--   before the read;
-- * of two reads, the later one.
create function sync.newer_expression(
  new_seq text, new_at text, old_seq text, old_at text, granularity text
) returns text
language sql immutable parallel safe set search_path = ''
as $$
  select format(
    '(case when %1$s is not null and %3$s is not null then %1$s > %3$s '
    'when %1$s is not null then %2$s >= %4$s - %5$s '
    'when %3$s is not null then %4$s < %2$s - %5$s '
    'else %2$s >= %4$s end)',
    new_seq, new_at, old_seq, old_at, granularity)
$$;
comment on function sync.newer_expression(text, text, text, text, text) is
  'The ordering guard as SQL text, written into sync.is_newer and every compiled merge.';

-- The position a repair keeps (docs/sync-semantics.md, "Repairs"). A repair (the
-- validator's, a write-back's restore, a collapsed key's re-read) replaces whatever was
-- written here before it saw the divergence, whatever its position. Positioned at its
-- read alone, it would forget the stream record the replaced state reflected: an older
-- record of the item delivered again (a retried batch), made within the granularity of
-- the read, would win over it, as a stream change wins over any read it may have come
-- after, and put the row back for good to a state DynamoDB no longer holds (a
-- write-back's restore, which reads the item right after the concurrent change that made
-- the edit fail, is the likeliest to read within that second). So a repair that replaces
-- a stream change made within the granularity of its read, or after it, keeps that
-- change's position (sequence number and time) with its own content; a tombstone it
-- writes for a deleted row keeps the row's, and a row it brings back over such a
-- tombstone takes the tombstone's. Every record older than the one replaced then loses;
-- a newer one was made within that same second, which the read's stamp let in too.
-- Outside the window the repair is positioned at its read: an older number kept there
-- would let a dead letter replayed between it and the read win over the read.
--
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

-- The clock granularity that sync.merge_changes sets for its transaction.
create function sync.granularity_expression() returns text
language sql immutable parallel safe set search_path = ''
as $$
  select $e$coalesce(nullif(current_setting('sync.clock_granularity', true), '')::interval, interval '1 second')$e$
$$;

-- sync.is_newer (20261128000300_merge.sql), redefined from the one expression above.
do $do$
begin
  execute format(
    $f$create or replace function sync.is_newer(
         new_seq numeric, new_at timestamptz, old_seq numeric, old_at timestamptz
       ) returns boolean
       language sql stable parallel safe set search_path = ''
       as $body$ select %s $body$$f$,
    sync.newer_expression('new_seq', 'new_at', 'old_seq', 'old_at',
                          sync.granularity_expression()));
end
$do$;

-- The columns a merge writes: every column of the mirror table that is not generated
-- and not sync bookkeeping, in table order.
create function sync.merge_columns(p_target text) returns text[]
language sql stable set search_path = ''
as $$
  select array_agg(a.attname::text order by a.attnum)
  from pg_attribute a
  where a.attrelid = format('public.%I', p_target)::regclass and a.attnum > 0
    and not a.attisdropped and a.attgenerated = ''
    and a.attname not like 'sync\_%' and a.attname <> 'synced_at'
$$;

-- A compiled merge's name.
create function sync.merge_function_name(p_target text) returns text
language sql immutable parallel safe set search_path = ''
as $$ select 'merge_into_' || p_target $$;

-- The body of a plain table's merge: one row per item; deletes leave a tombstone.
-- Repairs: see the top of 20261128000300_merge.sql.
create function sync.plain_merge_body(p_target text, p_key text[], p_cols text[])
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
    -- The deletes and the repairs below run only for a batch that holds one: a condition
    -- on the batch alone, which the plan checks once before it touches the table. With a
    -- table's statistics from when it was empty (a table emptied, then analyzed, then
    -- filled faster than autovacuum analyzes it again), the cached plan had read the
    -- whole table twice for every batch, deletes or not: batches of 10 took 45 ms instead
    -- of 3 (docs/performance.md, "The webhook", round 82). The function also scans no
    -- table (sync.compile_merge), so a batch with a delete finds its rows by key.
    deleted as (
      delete from public.%1$I t using latest l
      where l.op = 'delete' and %4$s
        and (%11$s or t.synced_at < l.seen_at)
        and exists (select from latest b where b.op = 'delete')
      -- The deleted row's stream position, where a repair keeps it (its tombstone below).
      returning %10$s as row_key,
                case when l.seen_at is not null and %15$s then t.sync_sequence end as kept_seq,
                t.sync_changed_at as kept_at, l.seq, l.changed_at
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
    -- Each delete's tombstone: from its deleted row where there was one, else from the
    -- change. Two lists and a hashed "not in", never a join of the CTEs: the planner
    -- takes each CTE for a row or so, and joined them in a nested loop (4,000 deletes,
    -- 16 million comparisons of keys: 15 s; a sweep's chunk of 29,000 outran the
    -- statement timeout, at every attempt).
    tombstoned as (
      insert into sync.tombstones as tb (target_table, row_key, sync_sequence, deleted_at)
      select %1$L, k.row_key, k.seq, k.changed_at
      from (select d.row_key, coalesce(d.kept_seq, d.seq) as seq,
                   case when d.kept_seq is not null then d.kept_at else d.changed_at end
                     as changed_at
            from deleted d
            union all
            select %3$s, l.seq, l.changed_at from latest l
            where l.op = 'delete' and %3$s not in (select row_key from deleted)) k
      where k.row_key not in (select row_key from retombstoned)
      on conflict (target_table, row_key) do update
        set sync_sequence = excluded.sync_sequence, deleted_at = excluded.deleted_at,
            recorded_at = now()
        where %12$s
      returning 1
    ),
    -- A repair replaces a row written here before it saw the divergence, whatever the
    -- row's position, and keeps that position if it is a stream change made within the
    -- clock's granularity of the read or after it (below, sync.repair_keeps_position_expression); the upsert below
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
        and exists (select from latest b where b.op = 'upsert' and b.seen_at is not null)
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

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- When an observation last became live: its first write, or a put after its delete. A
-- write of one already live (a backfill or a repair reading it again, an update of its
-- item) keeps it, as recorded_at does not: the purge of superseded observations asks how
-- long the observation after one has been live (20261128002700_retention_progress.sql),
-- and with recorded_at a table backfilled more often than observation_retention (48 h)
-- never had one purged (found by a review). Meaningless for a deleted observation, whose
-- age is its recorded_at (a tombstone's).
alter table sync.observations add column live_since timestamptz not null default now();
comment on column sync.observations.live_since is
  'When the observation last became live (its first write, or a put after its delete); a rewrite of a live one keeps it.';
-- The purge's walk of a table's live observations, oldest live first, with (row_key,
-- range_key) as the tie-breaker of its cursor; replaces 20261128000300_merge.sql's walk by
-- recorded_at.
create index observations_live_since_idx
  on sync.observations (target_table, live_since, row_key, range_key) where not deleted;
drop index sync.observations_live_recorded_at_idx;

-- The body of a collapsed table's merge (visitors, extraction jobs): every observation
-- is kept in sync.observations, live or deleted, and the row is the live observation
-- with the largest range key. Every key of the batch is recomputed, applied or not, and
-- a row whose content differs from its observation is rewritten even when the position
-- columns agree: the row is a function of the observations, so a repair can restore a
-- row whose observations were right all along.
create function sync.collapsed_merge_body(p_target text, p_key text[], p_cols text[])
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
  -- sync.repair_keeps_position_expression); the insert below then leaves it alone. Only a repair has a seen_at, tested first so that
  -- other changes probe no index here (as in the plain merge); the repairs' keys, as an
  -- array, bound the observations read to theirs (none in a batch without repairs). A
  -- hash join, chosen while the table's statistics still showed it nearly empty (an
  -- initial load), otherwise read every observation of the table for each batch.
  repaired as (
    update sync.observations o
    set rank = l.rank, row = case when l.op = 'upsert' then l.row end, deleted = l.op = 'delete',
        sync_sequence = case when %9$s then o.sync_sequence else l.seq end,
        sync_changed_at = case when %9$s then o.sync_changed_at else l.changed_at end,
        sync_source = l.source, recorded_at = now(),
        live_since = case when o.deleted and l.op = 'upsert' then now() else o.live_since end
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
          sync_source = excluded.sync_source, recorded_at = now(),
          live_since = case when o.deleted and not excluded.deleted then now() else o.live_since end
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
  -- Repairs (the re-read itself) queue none. A backfill's end does: it removes the held
  -- observation its Scan did not see, but an older item the Scan read may have been
  -- purged meanwhile as superseded by it (a review's randomized histories lost the row).
  reread as (
    insert into sync.collapsed_rereads as q (target_table, row_key)
    select %1$L, m.row_key
    from merged m
    where m.deleted and m.sync_source <> 'repair'
      and m.range_key = case when m.deleted then (
        select t.sync_range_key
        from (select jsonb_populate_record(null::public.%1$I, m.row_key) as r) x
        join public.%1$I t on %8$s
        limit 1) end
    on conflict (target_table, row_key) do update
      -- A key being read keeps its lease (its re-read then reads again at once,
      -- sync.finish_reread); one backing off after a failure is read again now. Its
      -- attempts and cause stay: a key whose re-read fails every time would otherwise
      -- never reach the give-up of sync.wake_rereads while removals keep queuing it (a
      -- re-read that succeeds sets them back, sync.finish_reread).
      set queued_at = now(),
          not_before = case when q.error is null then q.not_before else now() end
  )
  select coalesce((select array_agg(distinct l.row_key) from latest l), '{}'),
         (select count(*) from merged) + (select count(*) from repaired)
  into touched, merged;

  -- Per touched key, its best live observation: a top-1 through the primary key of
  -- sync.observations, whatever the table's size. `deleted is false`, not `not deleted`:
  -- the partial index of live observations by time (observations_live_since_idx, for the
  -- purge's walk) holds the key only behind live_since, so a probe through it
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

-- The source of a table's compiled merge, from the table's columns as they are now.
create function sync.merge_function_source(p_target text) returns text
language plpgsql stable set search_path = ''
as $fn$
declare
  spec sync.source_tables;
  cols text[] := sync.merge_columns(p_target);
begin
  select * into strict spec from sync.source_tables s where s.target_table = p_target;
  return format($body$
#variable_conflict use_column
declare
  granularity constant interval := %1$s;
  skip_before constant text := coalesce(current_setting('sync.write_back_skip', true), '');%2$s
begin
  -- The sync's own writes: the write-back trigger (20261128002500_write_back.sql) records
  -- none of them.
  perform set_config('sync.write_back_skip', 'on', true);
%3$s
  perform set_config('sync.write_back_skip', skip_before, true);
end
$body$,
    sync.granularity_expression(),
    case when spec.collapsed
      then ' touched jsonb[]; merged bigint; written bigint; removed bigint;' else '' end,
    case when spec.collapsed then sync.collapsed_merge_body(p_target, spec.key_columns, cols)
         else sync.plain_merge_body(p_target, spec.key_columns, cols) end);
end
$fn$;

-- The staging table: the changes of loaders' chunks, each transaction's own (stager: its
-- transaction id, filled in by the COPY), with sync.change's fields
-- (20261128000300_merge.sql) and each change's order in its file (ord: later lines win
-- ties, as later changes of a JSON array do). Unlogged: staged rows are written to no WAL
-- (they are gone after a crash, with the transaction that staged them). sync.merge_staged
-- deletes a transaction's rows once merged. A permanent table rather than a temporary one
-- so that plpgsql_check (supabase db lint) sees the staged merges' statements whole. The
-- change's columns are sync.change's attributes, read from the type, so the two cannot
-- drift apart.
-- Its rows compress with LZ4, as the columns that hold whole items do
-- (20261128002600_visitors_write_cost.sql, whose note on LZ4 on Supabase's servers holds
-- here too): a chunk's visitors changes are compressed as they are COPYed in and inflated
-- again by its merge; on the export bench's 4 copies Postgres spent 19.9 and 20.1 s with
-- pglz, 18.4 and 17.9 s with LZ4 (the import's wall clock, bound by the loader, the
-- same). A server without LZ4 keeps pglz, and says so.
do $do$
begin
  execute format(
    'create unlogged table sync.staged_changes (
       stager xid8 not null default pg_current_xact_id(),
       ord bigint not null,
       %s,
       primary key (stager, ord))',
    (select string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', '
                       order by a.attnum)
     from pg_attribute a
     where a.attrelid = 'sync.change'::regclass and a.attnum > 0 and not a.attisdropped));
  begin
    alter table sync.staged_changes alter column row set compression lz4;
  exception when feature_not_supported then
    raise notice 'this server has no LZ4 (%): sync.staged_changes keeps pglz', sqlerrm;
  end;
end
$do$;
comment on table sync.staged_changes is
  'Changes an export loader COPYs in a transaction for sync.merge_staged (functions-shared/export_stage.ts); each transaction''s own, deleted once merged.';

-- A staged merge's name.
create function sync.staged_merge_function_name(p_target text) returns text
language sql immutable parallel safe set search_path = ''
as $$ select 'merge_staged_into_' || p_target $$;

-- The source of a table's staged merge: its compiled merge's, reading the staging table
-- instead of p_changes. Refuses when the compiled merge's source of changes is not found
-- whole (a change to 20261128001400's generator must be carried over here).
create function sync.staged_merge_source(p_target text) returns text
language plpgsql stable set search_path = ''
as $fn$
declare
  compiled text := sync.merge_function_source(p_target);
  staged text := regexp_replace(compiled,
    'jsonb_populate_recordset\(null::sync\.change, p_changes\) with ordinality\s+'
    'as x\(op, row, seq, changed_at, source, range_key, rank, seen_at, ord\)',
    '(select * from sync.staged_changes s where s.stager = pg_current_xact_id()) as x');
begin
  if staged = compiled or position('p_changes' in staged) > 0 then
    raise exception 'sync.staged_merge_source(%): the compiled merge''s source of changes was not found', p_target
      using errcode = 'SY002';
  end if;
  return staged;
end
$fn$;

-- (Re)creates the compiled merge of one registered table from its current columns, and
-- its staged twin (sync.merge_staged). The compiled merge (a batch of the webhook, a
-- backfill's page: at most a few thousand changes) finds every row it touches by key, so
-- it scans no table (enable_seqscan = off): with statistics from when a table was empty
-- (emptied, then analyzed, then filled before autovacuum analyzed it again) the planner
-- read the whole table for every batch, or, for a collapsed table, sync.observations for
-- every key. (An earlier shape of a plain table's merge, which joined the batch to the
-- table as a whole, took five times as long with the setting; this one is no slower:
-- docs/performance.md, "The webhook", round 82.) The staged twin of a plain table merges
-- a whole export's chunk, which may be most of the table: left to the planner; a
-- collapsed table's twin keeps the setting.
create function sync.compile_merge(p_target text) returns void
language plpgsql set search_path = ''
as $fn$
declare
  name text := sync.merge_function_name(p_target);
  staged text := sync.staged_merge_function_name(p_target);
  settings text := ' set enable_seqscan = off';
  staged_settings text := case when (select s.collapsed from sync.source_tables s
                                     where s.target_table = p_target)
                               then settings else '' end;
begin
  execute format(
    $f$create or replace function sync.%I(p_changes jsonb)
       returns table (applied bigint, upserted bigint, deleted bigint)
       language plpgsql set search_path = ''%s as %L$f$,
    name, settings, sync.merge_function_source(p_target));
  execute format('revoke all on function sync.%I(jsonb) from public', name);
  execute format('comment on function sync.%I(jsonb) is %L', name,
    format('The merge of public.%I, compiled by sync.compile_merge from its columns.', p_target));
  execute format(
    $f$create or replace function sync.%I()
       returns table (applied bigint, upserted bigint, deleted bigint)
       language plpgsql set search_path = ''%s as %L$f$,
    staged, staged_settings, sync.staged_merge_source(p_target));
  execute format('revoke all on function sync.%I() from public', staged);
  execute format('comment on function sync.%I() is %L', staged,
    format('The merge of public.%I from the staging table (sync.merge_staged), compiled by sync.compile_merge.',
           p_target));
end
$fn$;

-- The source of sync.merge_compiled: one CASE branch per registered table, calling its
-- compiled merge by name, in table-name order.
create function sync.merge_dispatch_source() returns text
language sql stable set search_path = ''
as $fn$
  select format($body$
begin
  case p_target
%s
    else
      raise exception 'sync.merge_changes: %% has no compiled merge; run select sync.compile_merges()',
        p_target using errcode = 'SY002';
  end case;
end
$body$,
    coalesce(string_agg(
      format('    when %L then return query select * from sync.%I(p_changes);',
             s.target_table, sync.merge_function_name(s.target_table)),
      E'\n' order by s.target_table), ''))
  from sync.source_tables s
$fn$;
comment on function sync.merge_dispatch_source() is
  'The source of sync.merge_compiled, from the registry as it is now.';

-- The fields of a change (sync.change's attributes, the one list of them), compiled into
-- sync.change_fields so that the field check does not read the catalog on every call.
create function sync.change_fields_source() returns text
language sql stable set search_path = ''
as $fn$
  select format('select %L::text[]', array_agg(a.attname::text order by a.attnum))
  from pg_attribute a
  where a.attrelid = 'sync.change'::regclass and a.attnum > 0 and not a.attisdropped
$fn$;

-- (Re)creates the dispatcher and the compiled list of a change's fields.
create function sync.compile_merge_dispatch() returns void
language plpgsql set search_path = ''
as $fn$
begin
  execute format(
    $f$create or replace function sync.merge_compiled(p_target text, p_changes jsonb)
       returns table (applied bigint, upserted bigint, deleted bigint)
       language plpgsql set search_path = '' as %L$f$,
    sync.merge_dispatch_source());
  execute format(
    $f$create or replace function sync.change_fields() returns text[]
       language sql immutable parallel safe set search_path = '' as %L$f$,
    sync.change_fields_source());
  revoke all on function sync.merge_compiled(text, jsonb), sync.change_fields() from public;
  comment on function sync.merge_compiled(text, jsonb) is
    'Calls the compiled merge of a registered table; compiled by sync.compile_merges.';
  comment on function sync.change_fields() is
    'The fields of sync.change, compiled by sync.compile_merges.';
end
$fn$;

-- The registered tables whose compiled merge (or staged merge) is missing or was compiled
-- from other columns than the table has now, or all of them when the dispatcher or the compiled list
-- of sync.change's fields is missing or out of date (empty when every merge is current).
create function sync.stale_merges() returns setof text
language sql stable set search_path = ''
as $$
  select s.target_table from sync.source_tables s
  where (select p.prosrc from pg_proc p
         where p.pronamespace = 'sync'::regnamespace
           and p.proname = sync.merge_function_name(s.target_table))
        is distinct from sync.merge_function_source(s.target_table)
     or (select p.prosrc from pg_proc p
         where p.pronamespace = 'sync'::regnamespace
           and p.proname = sync.staged_merge_function_name(s.target_table))
        is distinct from sync.staged_merge_source(s.target_table)
     or (select p.prosrc from pg_proc p
         where p.pronamespace = 'sync'::regnamespace and p.proname = 'merge_compiled')
        is distinct from sync.merge_dispatch_source()
     or (select p.prosrc from pg_proc p
         where p.pronamespace = 'sync'::regnamespace and p.proname = 'change_fields')
        is distinct from sync.change_fields_source()
  order by s.target_table
$$;
comment on function sync.stale_merges() is
  'Registered tables whose compiled merge is missing or out of date: run select sync.compile_merges().';

-- Compiles the merge of every registered table, then the dispatcher.
create function sync.compile_merges() returns void
language sql set search_path = ''
as $$
  select sync.compile_merge(s.target_table) from sync.source_tables s order by s.target_table;
  select sync.compile_merge_dispatch();
$$;

-- What every merge of a table takes first, whichever its entry point (sync.merge_changes,
-- sync.merge_staged): the stream clock's granularity for the guard, for the rest of the
-- transaction, and the table's merge lock, the one key that serializes merges of a table
-- (the retention purge of 20261128001000_retention.sql takes the same key). plpgsql, not
-- sql: a sql function's body is planned again on every call, which cost 0.14 ms of a
-- batch of 10's 1.5 ms in Postgres (pg_stat_user_functions, README "Where the time goes").
create function sync.enter_merge(p_target text) returns void
language plpgsql set search_path = ''
as $$
begin
  perform set_config('sync.clock_granularity',
    (select value from sync.settings where key = 'stream_clock_granularity'), true);
  perform pg_advisory_xact_lock(hashtext('sync.merge_changes'), hashtext(p_target));
  -- After the cutover Supabase is the source of truth: nothing read from DynamoDB (a
  -- re-read, a repair or a backfill asked for by hand, a mapping left running) may be
  -- merged over what admins edited since (README, "The cutover"; rolling back sets
  -- write_back to off first, which lets merges in again). Read once the table's lock is
  -- held, by a statement of its own: a switch committed while this merge waited for the
  -- lock is seen (the switch takes every table's lock, sync.wait_for_merges_at_cutover,
  -- so a merge that passed this check before it commits first). Read before the lock, a
  -- merge that then waited behind a sweep or an export's chunk wrote DynamoDB's values
  -- over edits made after the switch (found by a review).
  if (select value from sync.settings where key = 'write_back') = 'cutover' then
    raise exception 'the sync is cut over (sync.settings write_back is cutover): Supabase is the source of truth, so nothing from DynamoDB is merged into %', p_target
      using errcode = 'SY005',
            hint = 'To sync from DynamoDB again, follow the README''s "Rolling back" (write_back off first).';
  end if;
end
$$;
comment on function sync.enter_merge(text) is
  'Sets the clock granularity and takes the table''s merge lock for this transaction: what sync.merge_changes and sync.merge_staged do first.';

-- The entry point (20261128000300_merge.sql), now calling the table's compiled merge
-- through the compiled dispatcher (sync.merge_compiled), without dynamic SQL: plpgsql
-- prepares the call once per session, where `execute format(...)` parsed and planned it
-- on every call, and the field check reads sync.change's fields from their compiled list
-- (sync.change_fields) instead of pg_attribute. At the deployed mapping's batch size of
-- 10 those two had cost about a third as much backend CPU as the merge they wrap (README,
-- "Where the time goes": the webhook).
-- Merges of one table are serialized (a transaction-level advisory lock per table),
-- which makes the guard race-free for tombstones and collapsed rows without a lock per
-- key; callers that touch several tables call this in table-name order, so they cannot
-- deadlock. The compiled merge marks its writes as the sync's own while it runs (the
-- transaction-local setting sync.write_back_skip, restored after), so the write-back
-- trigger (20261128002500_write_back.sql) never records them: nothing the sync writes
-- loops back.
create or replace function sync.merge_changes(p_target text, p_changes jsonb)
returns table (applied bigint, upserted bigint, deleted bigint)
language plpgsql set search_path = ''
as $fn$
declare
  problem text;
  fields constant text[] := sync.change_fields();
begin
  -- The caller's mistakes are bugs, not bad data: SQLSTATE SY002, which the webhook and
  -- the backfill do not dead-letter (only data errors, classes 22, 23 and 54, are).
  if not exists (select from sync.source_tables s where s.target_table = p_target) then
    raise exception 'sync.merge_changes: % is not a registered target table', p_target
      using errcode = 'SY002';
  end if;
  if jsonb_typeof(p_changes) is distinct from 'array' then
    raise exception 'sync.merge_changes(%): changes must be a JSON array', p_target
      using errcode = 'SY002';
  end if;
  -- Each change has the fields of sync.change and no others, an op, a time and a source.
  select format('change %s %s', c.ord, w.why) into problem
  from jsonb_array_elements(p_changes) with ordinality as c(v, ord)
  cross join lateral (select case
    when jsonb_typeof(c.v) <> 'object' then 'is not a JSON object'
    when (c.v - fields) <> '{}'::jsonb then
      format('has the field "%s", which sync.change does not have',
             (select min(k) from jsonb_object_keys(c.v - fields) k))
    when coalesce(c.v ->> 'op', '') not in ('upsert', 'delete') then
      'has no op "upsert" or "delete"'
    when c.v ->> 'changed_at' is null or c.v ->> 'source' is null then
      'has no changed_at or source'
  end as why) w
  where w.why is not null
  order by c.ord
  limit 1;
  if problem is not null then
    raise exception 'sync.merge_changes(%): %', p_target, problem using errcode = 'SY002';
  end if;
  perform sync.enter_merge(p_target);
  select m.applied, m.upserted, m.deleted into applied, upserted, deleted
  from sync.merge_compiled(p_target, p_changes) m;
  return next;
end
$fn$;

-- Merges the changes this transaction staged (sync.staged_changes) into `p_target`, as
-- sync.merge_changes merges a JSON array: the same checks of each change (an op, a time
-- and a source), the same clock granularity and the same per-table lock, then the
-- table's staged merge (whose writes are marked as the sync's own, as the compiled
-- merge's are); then deletes the staged rows.
create function sync.merge_staged(p_target text)
returns table (applied bigint, upserted bigint, deleted bigint)
language plpgsql set search_path = ''
as $fn$
declare
  problem text;
begin
  if not exists (select from sync.source_tables s where s.target_table = p_target) then
    raise exception 'sync.merge_staged: % is not a registered target table', p_target
      using errcode = 'SY002';
  end if;
  select format('change %s %s', c.ord, case
      when coalesce(c.op, '') not in ('upsert', 'delete') then 'has no op "upsert" or "delete"'
      else 'has no changed_at or source' end)
  into problem
  from sync.staged_changes c
  where c.stager = pg_current_xact_id() and (coalesce(c.op, '') not in ('upsert', 'delete') or c.changed_at is null or c.source is null)
  order by c.ord
  limit 1;
  if problem is not null then
    raise exception 'sync.merge_staged(%): %', p_target, problem using errcode = 'SY002';
  end if;
  perform sync.enter_merge(p_target);
  execute format('select m.applied, m.upserted, m.deleted from sync.%I() m',
                 sync.staged_merge_function_name(p_target))
    into applied, upserted, deleted;
  delete from sync.staged_changes c where c.stager = pg_current_xact_id();
  return next;
end
$fn$;
comment on function sync.merge_staged(text) is
  'Merges the changes this transaction staged in sync.staged_changes into a mirror table through its staged merge: the compiled merge''s statements, guard included.';

drop function sync.merge_plain(text, text[], jsonb);
drop function sync.merge_collapsed(text, text[], jsonb);

revoke all on function sync.newer_expression(text, text, text, text, text),
  sync.repair_keeps_position_expression(text, text, text, text),
  sync.granularity_expression(), sync.merge_columns(text), sync.merge_function_name(text),
  sync.plain_merge_body(text, text[], text[]), sync.collapsed_merge_body(text, text[], text[]),
  sync.merge_function_source(text), sync.compile_merge(text), sync.compile_merges(),
  sync.stale_merges(), sync.merge_dispatch_source(), sync.change_fields_source(),
  sync.compile_merge_dispatch(), sync.staged_merge_function_name(text),
  sync.staged_merge_source(text), sync.merge_staged(text), sync.enter_merge(text) from public;
revoke all on table sync.staged_changes from public;

select sync.compile_merges();

-- A webhook batch's first step, on either of its paths (the one statement below, or the
-- webhook's savepoints, functions-shared/webhook_apply.ts): records its delivery id,
-- answering false when it was recorded before (a replay, which applies nothing), and
-- bounds the transaction's lock waits. Every merge of a table takes its merge lock
-- (sync.enter_merge), which an export's chunk holds for minutes at 100× and the sweep's
-- chunks for seconds, and a merged row may be held by an admin's open transaction. With
-- no lock timeout (the postgres role has none; only the 2-minute statement timeout), a
-- batch waited past the Lambda's 60 s invocation, which sent it again while the first
-- still waited: each shard piled up requests, and pooler connections, each held until
-- its lock came (found by a review). Now a wait past 20 s fails the batch with 55P03,
-- which the webhook answers 503 with Retry-After, nothing applied; the Lambda retries
-- it within the same invocation (20 s, the 5 s it is asked to wait, and 20 s again fit in
-- its 59 s). Transaction-local, so that it ends with the batch on a pooled connection.
create function sync.begin_webhook_delivery(p_webhook_id text) returns boolean
language plpgsql set search_path = ''
as $fn$
begin
  perform pg_catalog.set_config('lock_timeout', '20s', true);
  insert into sync.webhook_deliveries (webhook_id, received_at) values (p_webhook_id, now())
  on conflict do nothing;
  return found;
end
$fn$;
comment on function sync.begin_webhook_delivery(text) is
  'A webhook batch''s first step: records its delivery id (false: a replay) and bounds the transaction''s lock waits to 20 s.';
revoke all on function sync.begin_webhook_delivery(text) from public;

-- A webhook batch in one round trip (functions-shared/webhook_apply.ts): records the
-- delivery's webhook-id (a replay applies nothing and says so), merges each table's
-- changes in table-name order (as sync.merge_changes asks of callers that touch several
-- tables), and notes the batch's stream records for the lost-record check
-- (20261128001300_stream_progress.sql), all in the statement's one transaction. A
-- change that Postgres refuses undoes the whole call; the webhook then applies the batch
-- again in savepoints, where the refused change is isolated and dead-lettered.
-- p_changes is {"<target table>": [change, ...], ...}; p_records as
-- sync.note_stream_records takes them.
--
-- The webhook sends the batch in the statement's text (functions-shared/sql_text.ts: one
-- round trip through the pooler), and Postgres logs the whole text of a statement that
-- fails (log_min_error_statement, ERROR by default and on hosted projects, where every
-- project member reads the logs): a refused change, a deadlock or a lock timeout would
-- put every row of the batch, names, emails and addresses, in the log. So the call never
-- fails: whatever it meets undoes its work (the block's subtransaction) and is answered
-- as failed_state and failed_message (SQLSTATE and message, no detail: a constraint's
-- detail holds the row), which the webhook takes as the error. (Named `try_`: a webhook
-- of the version before, which raised, would read such an answer as a batch applied with
-- nothing in it, and answer 200; it finds no function of that name instead, and fails.)
create function sync.try_apply_webhook_batch(p_webhook_id text, p_changes jsonb, p_records jsonb)
returns table (replayed boolean, applied bigint, failed_state text, failed_message text)
language plpgsql set search_path = ''
as $fn$
declare
  batch record;
  was_replayed boolean := false;
  total bigint := 0;
  state text;
  message text;
begin
  -- The block only sets what it found; the one row is returned after it. A row returned
  -- inside it would stay in the answer though a cancel that came after it undid the
  -- block, and the answer would say applied what was not (found by a review).
  begin
    if not sync.begin_webhook_delivery(p_webhook_id) then
      was_replayed := true;
    else
      -- Byte order (collate "C"), as the webhook's other paths sort table names in
      -- JavaScript: two orders could deadlock two batches on tables that sort apart.
      for batch in select t.key, t.value from jsonb_each(p_changes) t order by t.key collate "C" loop
        total := total + (select m.applied from sync.merge_changes(batch.key, batch.value) m);
      end loop;
      perform sync.note_stream_records(p_records);
    end if;
  exception when others or query_canceled then
    get stacked diagnostics state = returned_sqlstate, message = message_text;
    was_replayed := false;
    total := 0;
  end;
  return query select was_replayed, total, state, message;
end
$fn$;
comment on function sync.try_apply_webhook_batch(text, jsonb, jsonb) is
  'A webhook batch in one round trip: the delivery, each table''s merge and the stream records noted.';
revoke all on function sync.try_apply_webhook_batch(text, jsonb, jsonb) from public;
