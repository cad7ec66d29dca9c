-- The merge's wrapper without dynamic SQL: a compiled dispatcher calls each table's
-- compiled merge statically, so plpgsql prepares the call once per session.
--
-- Why: sync.merge_changes (20261128001400_compiled_merges.sql) reached the table's merge
-- with `execute format('select * from sync.%I($1)', ...)`, which Postgres parses and
-- plans on every call, and it read sync.change's fields from pg_attribute on every call.
-- At the deployed mapping's batch size of 10, the wrapper cost about a third as much
-- backend CPU as the merge it wraps (README, "Where the time goes": the webhook).
--
-- What this migration replaces, and why:
-- * sync.merge_changes (20261128001400): the same checks, the same errors (SQLSTATE
--   SY002), the same lock and clock setting; it calls sync.merge_compiled instead of
--   `execute`, and the field check reads the fields from the dispatcher's compiled list.
-- * sync.compile_merges (20261128001400): also compiles the dispatcher.
-- * sync.stale_merges (20261128001400): also names every registered table when the
--   dispatcher is missing or out of date (a table added, removed, or sync.change's
--   fields changed since it was compiled).
-- The compiled merges themselves (sync.merge_into_<table>) are unchanged.

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

-- Replaces 20261128001400's: every table's merge, then the dispatcher.
create or replace function sync.compile_merges() returns void
language sql set search_path = ''
as $$
  select sync.compile_merge(s.target_table) from sync.source_tables s order by s.target_table;
  select sync.compile_merge_dispatch();
$$;

-- Replaces 20261128001400's: also every table when the dispatcher or the compiled list of
-- fields is missing or out of date.
create or replace function sync.stale_merges() returns setof text
language sql stable set search_path = ''
as $$
  select s.target_table from sync.source_tables s
  where (select p.prosrc from pg_proc p
         where p.pronamespace = 'sync'::regnamespace
           and p.proname = sync.merge_function_name(s.target_table))
        is distinct from sync.merge_function_source(s.target_table)
     or (select p.prosrc from pg_proc p
         where p.pronamespace = 'sync'::regnamespace and p.proname = 'merge_compiled')
        is distinct from sync.merge_dispatch_source()
     or (select p.prosrc from pg_proc p
         where p.pronamespace = 'sync'::regnamespace and p.proname = 'change_fields')
        is distinct from sync.change_fields_source()
  order by s.target_table
$$;

-- Replaces 20261128001400's: the same checks and errors, the same clock setting and
-- lock (see there), and the table's merge called through the compiled dispatcher.
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
  perform set_config('sync.clock_granularity',
    (select value from sync.settings where key = 'stream_clock_granularity'), true);
  perform pg_advisory_xact_lock(hashtext('sync.merge_changes'), hashtext(p_target));
  select m.applied, m.upserted, m.deleted into applied, upserted, deleted
  from sync.merge_compiled(p_target, p_changes) m;
  return next;
end
$fn$;

revoke all on function sync.merge_dispatch_source(), sync.change_fields_source(),
  sync.compile_merge_dispatch() from public;

select sync.compile_merges();
