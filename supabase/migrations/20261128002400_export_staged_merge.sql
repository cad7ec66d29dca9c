-- The staged merge of an export backfill's chunk (issue 17; docs/sync-semantics.md,
-- "Backfills from an export"; functions-shared/export_stage.ts).
--
-- The export loader COPYs a chunk of mapped changes (tens of thousands of items) into a
-- staging table, then merges them in one statement. Handing them to sync.merge_changes
-- as one JSON array cost Postgres more than the merge's own inserts for the visitors:
-- measured on one copy of the demo's visitors (13,804 changes, 35 MB): jsonb_agg of the
-- staged rows 0.94 s, merge_changes's check of every change 0.3 s, the compiled merge
-- 1.8 s. So each table gets a second compiled entry point that reads the staging table
-- directly: `sync.merge_staged_into_<target>()`, whose body is DERIVED from the table's
-- compiled merge (sync.merge_function_source, 20261128001400_compiled_merges.sql) by
-- replacing its one source of changes, the jsonb_populate_recordset of p_changes, with
-- the staging table. Every statement of the merge, its ordering guard, its tombstones and
-- its observations are the same text; nothing of the guard is written here.
--
-- Replaces (create or replace, same signatures):
-- * sync.compile_merge (20261128001400): also (re)creates the table's staged merge, so
--   that sync.compile_merges, which every migration that changes a mirror table ends
--   with, keeps both current;
-- * sync.stale_merges (20261128001400): also names a table whose staged merge is missing
--   or out of date.

-- The staging table: the changes of loaders' chunks, each transaction's own (stager: its
-- transaction id, filled in by the COPY), with sync.change's fields
-- (20261128000300_merge.sql) and each change's order in its file (ord: later lines win
-- ties, as later changes of a JSON array do). Unlogged: staged rows are written to no WAL
-- (they are gone after a crash, with the transaction that staged them). sync.merge_staged
-- deletes a transaction's rows once merged. A permanent table rather than a temporary one
-- so that plpgsql_check (supabase db lint) sees the staged merges' statements whole.
create unlogged table sync.staged_changes (
  stager xid8 not null default pg_current_xact_id(),
  ord bigint not null,
  op text,
  "row" jsonb,
  seq numeric(40, 0),
  changed_at timestamptz,
  source text,
  range_key numeric,
  rank smallint,
  seen_at timestamptz,
  primary key (stager, ord)
);
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

-- Replaces 20261128001400_compiled_merges.sql's: the compiled merge, then its staged twin.
create or replace function sync.compile_merge(p_target text) returns void
language plpgsql set search_path = ''
as $fn$
declare
  name text := sync.merge_function_name(p_target);
  staged text := sync.staged_merge_function_name(p_target);
begin
  execute format(
    $f$create or replace function sync.%I(p_changes jsonb)
       returns table (applied bigint, upserted bigint, deleted bigint)
       language plpgsql set search_path = '' as %L$f$,
    name, sync.merge_function_source(p_target));
  execute format('revoke all on function sync.%I(jsonb) from public', name);
  execute format('comment on function sync.%I(jsonb) is %L', name,
    format('The merge of public.%I, compiled by sync.compile_merge from its columns.', p_target));
  execute format(
    $f$create or replace function sync.%I()
       returns table (applied bigint, upserted bigint, deleted bigint)
       language plpgsql set search_path = '' as %L$f$,
    staged, sync.staged_merge_source(p_target));
  execute format('revoke all on function sync.%I() from public', staged);
  execute format('comment on function sync.%I() is %L', staged,
    format('The merge of public.%I from the staging table (sync.merge_staged), compiled by sync.compile_merge.',
           p_target));
end
$fn$;

-- Replaces 20261128001400_compiled_merges.sql's: staged merges are checked too.
create or replace function sync.stale_merges() returns setof text
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

-- Merges the changes this transaction staged (sync.staged_changes) into `p_target`, as
-- sync.merge_changes merges a JSON array: the same checks of each change (an op, a time
-- and a source), the same clock granularity and the same per-table lock, then the
-- table's staged merge; then deletes the staged rows.
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
  perform set_config('sync.clock_granularity',
    (select value from sync.settings where key = 'stream_clock_granularity'), true);
  perform pg_advisory_xact_lock(hashtext('sync.merge_changes'), hashtext(p_target));
  execute format('select m.applied, m.upserted, m.deleted from sync.%I() m',
                 sync.staged_merge_function_name(p_target))
    into applied, upserted, deleted;
  delete from sync.staged_changes c where c.stager = pg_current_xact_id();
  return next;
end
$fn$;
comment on function sync.merge_staged(text) is
  'Merges the changes this transaction staged in sync.staged_changes into a mirror table through its staged merge: the compiled merge''s statements, guard included.';

revoke all on table sync.staged_changes from public;
revoke all on function sync.staged_merge_function_name(text),
  sync.staged_merge_source(text), sync.merge_staged(text) from public;

select sync.compile_merges();
