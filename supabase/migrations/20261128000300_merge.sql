-- The one merge through which every write reaches the mirror tables: the webhook's
-- stream records, the backfill's pages and the validator's repairs all call
-- sync.merge_changes(target_table, changes), which applies a whole batch set-based
-- (one statement per table and batch; two for the collapsed tables).
--
-- A change is a JSON object with the fields of the type sync.change below (declared
-- once; functions-shared/change_wire.ts is its TypeScript side, and
-- tests/registry_database_test.ts keeps the two equal): {"op": "upsert" | "delete",
-- "row": {column: value, ...}, "seq": "<stream SequenceNumber>" | null, "changed_at":
-- "<ISO time>", "source": "stream" | "backfill" | "repair" | "direct", "range_key":
-- <number>, "rank": <int>, "seen_at": "<ISO time>"} -- range_key and rank for the
-- collapsed tables only, seen_at for repairs only. merge_changes refuses a change with
-- a field the type does not have, or without op, changed_at or source (SQLSTATE SY002:
-- a bug in the caller, not bad data).
--
-- Repairs (docs/sync-semantics.md, "Verification"): the validator saw a divergence at D (the
-- database's now() when it compared) and then read the divergent keys from DynamoDB
-- consistently, after D. That read reflects every change whose state was written here
-- before D, so a change with source 'repair' and seen_at D replaces a row, tombstone or
-- observation WRITTEN HERE before D (synced_at < D for rows, recorded_at < D for
-- tombstones and observations), whatever position it holds: without this, a repair of a
-- key whose last stream change lies within the stream clock's granularity of the read
-- would be skipped by the guard. A state written at or after D is judged by the normal
-- guard (sync.is_newer), and a stream change that arrives after the repair still wins
-- if it is newer than the read. sync.is_newer itself does not know about repairs.

create type sync.change as (
  op text,
  "row" jsonb,
  seq numeric(40, 0),
  changed_at timestamptz,
  source text,
  range_key numeric,
  rank smallint,
  seen_at timestamptz
);
comment on type sync.change is
  'A change of a mirror row as sync.merge_changes reads it (functions-shared/change_wire.ts).';

-- A deleted row leaves a tombstone, so that a backfill page read before the delete (or
-- a late, older stream record) cannot bring it back (docs/sync-semantics.md, "Deletes leave
-- tombstones"). sync.purge_expired removes them once older than the stream's 24 h
-- retention and the `tombstone_retention` setting (48 h by default).
create table sync.tombstones (
  target_table text not null references sync.source_tables (target_table),
  row_key jsonb not null,
  -- Position of the delete: stream sequence number (null when a repair deleted the row),
  -- the collapsed tables' range key of the deleted observation, and the change's time.
  sync_sequence numeric(40, 0),
  sync_range_key numeric,
  deleted_at timestamptz not null,
  recorded_at timestamptz not null default now(),
  primary key (target_table, row_key)
);
create index tombstones_recorded_at_idx on sync.tombstones (recorded_at);
comment on table sync.tombstones is 'Deleted keys with the position of the delete; purged after tombstone_retention (48 h).';

-- The ordering guard (docs/sync-semantics.md): is the change at (new_seq, new_at) newer than
-- what a row or tombstone at (old_seq, old_at) reflects?
-- * two stream positions compare as numbers;
-- * a stream change replaces a row read by a Scan at old_at unless it surely happened
--   before the read (ApproximateCreationDateTime has a granularity of 1 s; ties go to the
--   stream);
-- * a read at new_at replaces a stream change only if that change surely happened
--   before the read, i.e. more than 1 s earlier;
-- * of two reads, the later one.
-- is_newer reads the granularity that merge_changes sets for its transaction.
create function sync.is_newer(
  new_seq numeric, new_at timestamptz, old_seq numeric, old_at timestamptz
) returns boolean
language sql stable parallel safe set search_path = ''
as $$
  select case
    when new_seq is not null and old_seq is not null then new_seq > old_seq
    when new_seq is not null then new_at >= old_at - g.granularity
    when old_seq is not null then old_at < new_at - g.granularity
    else new_at >= old_at
  end
  from (select coalesce(nullif(current_setting('sync.clock_granularity', true), '')::interval,
                        interval '1 second') as granularity) g
$$;
comment on function sync.is_newer(numeric, timestamptz, numeric, timestamptz) is
  'The ordering guard: whether a change at (new_seq, new_at) is newer than the state at (old_seq, old_at).';

-- The collapsed tables (visitors, extraction jobs) keep every observation they have
-- seen, live or deleted. The row is always the live observation with the largest range
-- key, so removing the observation a row holds falls back to the one before it, exactly
-- as the source now projects. A deleted observation is its own tombstone.
create table sync.observations (
  target_table text not null references sync.source_tables (target_table),
  row_key jsonb not null,
  range_key numeric not null,
  rank smallint not null default 0,
  row jsonb,
  deleted boolean not null default false,
  sync_sequence numeric(40, 0),
  sync_changed_at timestamptz not null,
  sync_source text not null,
  recorded_at timestamptz not null default now(),
  primary key (target_table, row_key, range_key)
);
create index observations_deleted_idx on sync.observations (recorded_at) where deleted;
-- sync.purge_expired (20261128001000_retention.sql) walks the live observations of a
-- table in recorded_at order, with (row_key, range_key) as the tie-breaker of its cursor.
create index observations_live_recorded_at_idx
  on sync.observations (target_table, recorded_at, row_key, range_key) where not deleted;
comment on table sync.observations is
  'Every observation of the collapsed tables, live or deleted; the target row is the live one with the largest range key.';

-- The one canonical form of a row, for comparisons (the validator, the collapsed
-- merge): the row as the table's own types make it (so that types and key order cannot
-- make equal rows differ), without the sync bookkeeping columns.
create function sync.canonical_digest(row_json jsonb) returns text
language sql immutable parallel safe set search_path = ''
as $$
  select md5((row_json - 'sync_sequence' - 'sync_changed_at' - 'sync_source' - 'synced_at'
                       - 'sync_range_key')::text)
$$;

-- A plain table: one row per item, deletes leave a tombstone in sync.tombstones.
create function sync.merge_plain(p_target text, p_key text[], p_changes jsonb)
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
      select x.ord, x.op, x.seq, x.changed_at, x.source,
             -- A repair's moment of divergence (see the top of this file); null otherwise.
             case when x.source = 'repair' then x.seen_at end as seen_at,
             jsonb_populate_record(null::public.%1$I, x.row) as r
      from jsonb_populate_recordset(null::sync.change, $1) with ordinality
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
        and (sync.is_newer(l.seq, l.changed_at, t.sync_sequence, t.sync_changed_at)
             or t.synced_at < l.seen_at)
      returning 1
    ),
    -- A repair replaces a tombstone recorded before it saw the divergence.
    retombstoned as (
      update sync.tombstones tb
      set sync_sequence = l.seq, deleted_at = l.changed_at, recorded_at = now()
      from latest l
      where l.op = 'delete' and tb.target_table = %1$L and tb.row_key = %3$s
        and tb.recorded_at < l.seen_at
      returning tb.row_key
    ),
    tombstoned as (
      insert into sync.tombstones as tb (target_table, row_key, sync_sequence, deleted_at)
      select %1$L, %3$s, l.seq, l.changed_at from latest l
      where l.op = 'delete' and %3$s not in (select row_key from retombstoned)
      on conflict (target_table, row_key) do update
        set sync_sequence = excluded.sync_sequence, deleted_at = excluded.deleted_at,
            recorded_at = now()
        where sync.is_newer(excluded.sync_sequence, excluded.deleted_at, tb.sync_sequence, tb.deleted_at)
      returning 1
    ),
    -- A repair replaces a row written here before it saw the divergence, whatever the
    -- row's position; the upsert below then leaves that key alone.
    repaired as (
      update public.%1$I t
      set %9$s, sync_sequence = l.seq, sync_changed_at = l.changed_at, sync_source = l.source,
          synced_at = now()
      from latest l
      where l.op = 'upsert' and %4$s and t.synced_at < l.seen_at
      returning %10$s as row_key
    ),
    upserted as (
      insert into public.%1$I as t (%5$s, sync_sequence, sync_changed_at, sync_source)
      select %6$s, l.seq, l.changed_at, l.source
      from latest l
      left join sync.tombstones tb on tb.target_table = %1$L and tb.row_key = %3$s
      where l.op = 'upsert' and %3$s not in (select row_key from repaired)
        and (tb.row_key is null or sync.is_newer(l.seq, l.changed_at, tb.sync_sequence, tb.deleted_at)
             or tb.recorded_at < l.seen_at)
      on conflict (%7$s) do update
        set %8$s, sync_sequence = excluded.sync_sequence, sync_changed_at = excluded.sync_changed_at,
            sync_source = excluded.sync_source, synced_at = now()
        where sync.is_newer(excluded.sync_sequence, excluded.sync_changed_at, t.sync_sequence, t.sync_changed_at)
      returning 1
    )
    select (select count(*) from upserted) + (select count(*) from repaired)
             + (select count(*) from deleted),
           (select count(*) from upserted) + (select count(*) from repaired),
           (select count(*) from deleted)
    $sql$,
    p_target,
    key_of_l,
    key_json,
    key_match,
    (select string_agg(format('%I', c), ', ') from unnest(cols) c),
    (select string_agg(format('(l.r).%I', c), ', ') from unnest(cols) c),
    (select string_agg(format('%I', k), ', ') from unnest(p_key) k),
    (select string_agg(format('%1$I = excluded.%1$I', c), ', ') from unnest(cols) c where c <> all (p_key)),
    (select string_agg(format('%1$I = (l.r).%1$I', c), ', ') from unnest(cols) c where c <> all (p_key)),
    (select 'jsonb_build_object(' || string_agg(format('%L, t.%I', k, k), ', ') || ')' from unnest(p_key) k)
  ) into applied, upserted, deleted using p_changes;
  return next;
end
$fn$;

-- sync.merge_collapsed recomputes the row of every key in the batch, not only of keys
-- whose observations changed, and rewrites a row whose content differs from its
-- observation even when the position columns agree. Without this, the validator's
-- repair could not restore a collapsed row whose observations were intact (the repair's
-- changes are skipped by the guard as not newer, and nothing was recomputed).
create function sync.merge_collapsed(p_target text, p_key text[], p_changes jsonb)
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
  select 'jsonb_build_object(' || string_agg(format('%L, x.row -> %L', k, k), ', ') || ')',
         'jsonb_build_object(' || string_agg(format('%L, t.%I', k, k), ', ') || ')'
    into key_of_row, key_of_t
  from unnest(p_key) k;

  execute format($sql$
    with changes as (
      select x.ord, x.op, x.seq, x.changed_at, x.source,
             case when x.source = 'repair' then x.seen_at end as seen_at,
             x.row, x.range_key, coalesce(x.rank, 0) as rank, %2$s as row_key
      from jsonb_populate_recordset(null::sync.change, $1) with ordinality
        as x(op, row, seq, changed_at, source, range_key, rank, seen_at, ord)
    ),
    latest as (
      -- One change per observation: the newest of the batch.
      select distinct on (row_key, range_key) * from changes
      order by row_key, range_key, seq desc nulls last, changed_at desc, ord desc
    ),
    -- A repair replaces an observation recorded here before it saw the divergence
    -- (see the top of this file); the insert below then leaves it alone.
    repaired as (
      update sync.observations o
      set rank = l.rank, row = case when l.op = 'upsert' then l.row end, deleted = l.op = 'delete',
          sync_sequence = l.seq, sync_changed_at = l.changed_at, sync_source = l.source,
          recorded_at = now()
      from latest l
      where o.target_table = %1$L and o.row_key = l.row_key and o.range_key = l.range_key
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
        where sync.is_newer(excluded.sync_sequence, excluded.sync_changed_at, o.sync_sequence, o.sync_changed_at)
      returning o.row_key
    )
    -- Every key of the batch is recomputed, applied or not (a data-modifying CTE runs
    -- whether or not it is read): the row is a function of the observations, so a
    -- repair can restore a row whose observations were right all along.
    select coalesce((select array_agg(distinct l.row_key) from latest l), '{}'),
           (select count(*) from merged) + (select count(*) from repaired)
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

-- The entry point. Merges of one table are serialized (a transaction-level advisory
-- lock per table), which makes the guard race-free for tombstones and collapsed rows
-- without a lock per key; callers that touch several tables call this in table-name
-- order, so they cannot deadlock.
create function sync.merge_changes(p_target text, p_changes jsonb)
returns table (applied bigint, upserted bigint, deleted bigint)
language plpgsql set search_path = ''
as $fn$
declare
  spec sync.source_tables;
  problem text;
  fields constant text[] := (
    select array_agg(a.attname::text) from pg_attribute a
    where a.attrelid = 'sync.change'::regclass and a.attnum > 0 and not a.attisdropped);
begin
  -- The caller's mistakes are bugs, not bad data: SQLSTATE SY002, which the webhook and
  -- the backfill do not dead-letter (only data errors, classes 22, 23 and 54, are).
  select * into spec from sync.source_tables s where s.target_table = p_target;
  if not found then
    raise exception 'sync.merge_changes: % is not a registered target table', p_target
      using errcode = 'SY002';
  end if;
  if jsonb_typeof(p_changes) is distinct from 'array' then
    raise exception 'sync.merge_changes(%): changes must be a JSON array', p_target
      using errcode = 'SY002';
  end if;
  -- Each change has the fields of sync.change and no others (its attributes are the
  -- one list of them), an op, a time and a source.
  select format('change %s %s', c.ord, w.why) into problem
  from jsonb_array_elements(p_changes) with ordinality as c(v, ord)
  cross join lateral (select case
    when jsonb_typeof(c.v) <> 'object' then 'is not a JSON object'
    when exists (select from jsonb_object_keys(c.v) k where k <> all (fields)) then
      format('has the field "%s", which sync.change does not have',
             (select k from jsonb_object_keys(c.v) k where k <> all (fields) limit 1))
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
  perform set_config('sync.clock_granularity',
    (select value from sync.settings where key = 'stream_clock_granularity'), true);
  perform pg_advisory_xact_lock(hashtext('sync.merge_changes'), hashtext(p_target));
  if spec.collapsed then
    return query select * from sync.merge_collapsed(p_target, spec.key_columns, p_changes);
  else
    return query select * from sync.merge_plain(p_target, spec.key_columns, p_changes);
  end if;
end
$fn$;
comment on function sync.merge_changes(text, jsonb) is
  'Applies a batch of changes to one mirror table with the ordering guard, tombstones and collapsing.';

revoke all on function sync.is_newer(numeric, timestamptz, numeric, timestamptz),
  sync.merge_plain(text, text[], jsonb), sync.merge_collapsed(text, text[], jsonb),
  sync.merge_changes(text, jsonb) from public;
revoke all on function sync.canonical_digest(jsonb) from public;
