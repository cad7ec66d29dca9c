-- Write-back (issue 18; docs/interfaces.md, "write-back"): an admin's edit of a mirror
-- row is recorded, in the edit's own transaction, as a row of sync.write_backs, and
-- delivered through pg_net to the `write-back` Edge Function, which applies it to the
-- DynamoDB item on condition that the item still holds what the row was built from
-- (functions-shared/write_back_update.ts). The change then comes back through the
-- stream and the one merge, whose writes never fire the trigger: nothing loops.
--
-- Each compiled merge (20261128001400_compiled_merges.sql, behind sync.merge_changes and
-- sync.merge_staged) marks its writes as the sync's own (the transaction-local setting
-- `sync.write_back_skip`, on for the merge's duration), so the trigger here never
-- records them. The write-back counts of sync.status are in its one definition, with the
-- re-reads' (20261128002900_collapsed_rereads.sql); everything else is new.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- The switch (docs/interfaces.md, "write-back"): on, off or cutover.
insert into sync.settings (key, value, description, min_value, max_value) values (
  'write_back', 'on',
  'Admin edits of mirror rows: on (recorded and written back to DynamoDB), off (refused: the sync would undo them), cutover (kept, not written back: Supabase is the source of truth).',
  null, null
), (
  'write_back_max_attempts', '8',
  'Attempts of one write-back (throttling, 5xx, no credentials) before it is recorded as failed (an item gone is a conflict at once).',
  1, 100
);
-- The switch takes one of its three values: another ('Cutover', say) is refused as it is
-- written. Read as it was, it left the merges applying DynamoDB's changes over edits
-- meant to be kept, and every edit failing.
alter table sync.settings add constraint settings_write_back_mode
  check (key <> 'write_back' or value in ('on', 'off', 'cutover'));

-- The switch to cutover waits for the merges in flight: it takes every table's merge lock
-- (sync.enter_merge, 20261128001400_compiled_merges.sql), in the merges' own order (the
-- names' byte order), until it commits. A merge that passed its check before the switch
-- commits first; one that takes the lock after the switch reads the switch committed and
-- is refused. Without it a merge in flight at the switch (a page waiting for its lock, a
-- Lambda invocation finishing) could write DynamoDB's values over an edit made just after.
create function sync.wait_for_merges_at_cutover() returns trigger
language plpgsql set search_path = ''
as $$
declare
  t text;
begin
  if new.key = 'write_back' and new.value = 'cutover' then
    for t in select s.target_table from sync.source_tables s order by s.target_table collate "C"
    loop
      perform pg_advisory_xact_lock(hashtext('sync.merge_changes'), hashtext(t));
    end loop;
  end if;
  return new;
end
$$;
revoke all on function sync.wait_for_merges_at_cutover() from public;
create trigger settings_cutover_waits_for_merges
  before insert or update on sync.settings
  for each row execute function sync.wait_for_merges_at_cutover();

-- Whether the sync is cut over (write_back = 'cutover'): Supabase is then ahead of
-- DynamoDB on purpose (README, "The cutover"). What the queue sweeps and the status views
-- ask; the merges and the validator's repair, defined before the switch, read it inline.
create function sync.cut_over() returns boolean
language sql stable set search_path = ''
as $$
  select exists (select from sync.settings s where s.key = 'write_back' and s.value = 'cutover')
$$;
revoke all on function sync.cut_over() from public;

create table sync.write_backs (
  id bigint generated always as identity primary key,
  -- The mirror table edited: the recording trigger's own table (tg_table_name), and the
  -- trigger is on the registry's tables alone. No foreign key to sync.source_tables, as
  -- the sync's other tables have: its check, a query and a row lock per row recorded,
  -- was more than a third of the trigger's cost (an edit of 10,000 rows in one statement
  -- took 1.74 s with it, 1.13 s without).
  target_table text not null,
  -- The row's key columns as text, as sync.tombstones keys rows.
  row_key jsonb not null,
  -- Collapsed tables: the observation the row showed (its sync_range_key); the edit
  -- goes to that item.
  range_key numeric,
  -- Who edited: the JWT's email or sub for an API user, else the database role.
  edited_by text not null,
  edited_role text not null,
  columns text[] not null,
  -- Column -> value: text for text and numeric columns (every digit),
  -- YYYY-MM-DDTHH:MM:SS.ffffffZ for timestamptz, the value for jsonb.
  before_values jsonb not null,
  after_values jsonb not null,
  -- The row's stamp when edited: the change it was built from.
  row_sequence numeric(40, 0),
  row_changed_at timestamptz,
  row_source text,
  status text not null default 'pending'
    check (status in ('pending', 'applied', 'conflict', 'failed')),
  detail text,
  -- A conflict's source values of the edited columns.
  source_values jsonb,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  lease_owner text,
  lease_expires_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- A write-back that gives up has its row put back to the source's state
  -- (20261128003500_write_back_restores.sql): until that has run, restore_due.
  restore_due boolean not null default false,
  restores integer not null default 0 check (restores >= 0)
);
comment on table sync.write_backs is
  'One row per admin edit of a mirror row to write back to DynamoDB: pending, applied, conflict (the item had changed; the row shows the source again) or failed (after bounded retries).';
comment on column sync.write_backs.restore_due is
  'Failed, and its row not yet put back to the source''s state: the next write-back run does it once the lease has run out.';
comment on column sync.write_backs.restores is
  'Claims of its restore: after 3 that never ended (the function stopped each time), it is given up, its detail saying so.';
create index write_backs_due on sync.write_backs (next_attempt_at) where status = 'pending';
create index write_backs_row on sync.write_backs (target_table, row_key, id);
create index write_backs_restore_due on sync.write_backs (id) where restore_due;
-- Readable by the database owner only (the SQL editor, Studio, the functions), as every
-- table of the closed sync schema (010-schema.test.sql): not by anon, authenticated
-- (admins included) or service_role.
revoke all on table sync.write_backs from public, anon, authenticated, service_role;

-- The row trigger of every mirror table. Skipped for the sync's own writes (the merge
-- sets sync.write_back_skip) and, for the database owner and service_role only, for a
-- transaction that sets it itself (drift made on purpose: tests, hand repairs). Any
-- session may set a custom setting, so only those two are named: an API user, or a role
-- of the admins' own granted UPDATE later (docs/interfaces.md), cannot skip. Only data
-- columns count: a change of nothing but sync_* or key columns (the owner's
-- maintenance; the API roles cannot) records nothing.
-- Security definer: it writes sync.write_backs, which the editing role cannot.
create function sync.record_write_back() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  editor_role text := coalesce(nullif(current_setting('role', true), 'none'), session_user::text);
  mode text;
  key_cols text[];
  old_row jsonb;
  new_row jsonb;
  edited text[];
  before_v jsonb;
  after_v jsonb;
  c text;
  claims jsonb;
begin
  if coalesce(current_setting('sync.write_back_skip', true), '') = 'on'
     and editor_role in ('postgres', 'service_role') then
    return null;
  end if;
  old_row := to_jsonb(old);
  new_row := to_jsonb(new);
  select s.key_columns into key_cols from sync.source_tables s where s.target_table = tg_table_name;
  select array_agg(k order by k) into edited
  from jsonb_object_keys(new_row) k
  where k <> all (key_cols) and k not like 'sync\_%' and k <> 'synced_at'
    and new_row -> k is distinct from old_row -> k;
  if edited is null then
    return null;
  end if;
  mode := coalesce((select value from sync.settings where key = 'write_back'), 'on');
  if mode = 'cutover' then
    return null;
  end if;
  if mode = 'off' then
    raise exception '%: write-back is off, so an edit of % would be undone by the sync (DynamoDB is the source of truth); edit the item in DynamoDB, or turn write-back on (sync.settings write_back)',
      tg_table_name, array_to_string(edited, ', ')
      using errcode = 'SY003';
  end if;
  if mode <> 'on' then
    raise exception 'sync.settings write_back is %, not on, off or cutover', mode using errcode = 'SY002';
  end if;
  -- Collapsed tables (tg_argv[0]: the column fed by the range key): the edit goes to the
  -- observation the row shows (its sync_range_key, never null there); that range key is
  -- part of the item's key, which an update cannot change.
  if tg_nargs > 0 and tg_argv[0] = any (edited) then
    raise exception '% [%]: % comes from the range key of the item the row shows, which an update cannot change; edit the item in DynamoDB',
      tg_table_name, (select string_agg(format('%s=%s', k, old_row ->> k), ', ') from unnest(key_cols) k),
      tg_argv[0]
      using errcode = 'SY004';
  end if;
  -- The key names the item the edit goes to: edited with data columns, the data would be
  -- written to the old key's item and the row left under the new key, which no item has.
  -- (A change of the key alone is the owner's maintenance, recorded nowhere, as above.)
  if exists (select from unnest(key_cols) k where new_row -> k is distinct from old_row -> k) then
    raise exception '% [%]: the key (%) names the DynamoDB item an edit is written to, and an update cannot change it; edit the data columns alone, or the item in DynamoDB',
      tg_table_name, (select string_agg(format('%s=%s', k, old_row ->> k), ', ') from unnest(key_cols) k),
      array_to_string(key_cols, ', ')
      using errcode = 'SY004';
  end if;
  -- Every edited column's kept values, before and after, in one statement from the rows'
  -- JSON (a statement per column, built and planned per row, and a function call per
  -- value, made an edit of 20,000 rows cost 0.35 ms a row, near the Data API's 8 s
  -- statement timeout). A value as sync.write_backs keeps it (see before_values above):
  -- null; jsonb as it is; a timestamp as the UTC text of its instant, from JSON's ISO 8601
  -- text, which no session's DateStyle changes (the value's own text form read back can
  -- name another instant: DateStyle SQL in Asia/Kolkata writes "IST", which Postgres
  -- reads as Israel's; found by a review); any other (text, numeric with every digit and
  -- its scale, integers, booleans) as its text. And the first edited timestamp no
  -- DynamoDB item can carry back: the mapping reads ISO-8601 text of the years 1 to 9999
  -- (and epochs within them), and to_char gives no text at all for infinity (its
  -- write-back would remove the attribute) and drops a date's era.
  select jsonb_object_agg(a.attname, k.value) filter (where r.side = 'before'),
         jsonb_object_agg(a.attname, k.value) filter (where r.side = 'after'),
         min(a.attname::text) filter (where r.side = 'after' and k.unwritable)
  into before_v, after_v, c
  from pg_catalog.pg_attribute a
  cross join lateral (values ('before', old_row -> a.attname), ('after', new_row -> a.attname))
    r (side, json)
  cross join lateral (
    select case when r.json = 'null'::jsonb then 'null'::jsonb
                when a.atttypid = 'jsonb'::regtype then r.json
                when a.atttypid = 'timestamptz'::regtype then
                  to_jsonb(to_char((r.json #>> '{}')::timestamptz at time zone 'UTC',
                                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                else to_jsonb(r.json #>> '{}') end as value,
           -- (A CASE: only a timestamp's text is read as one.)
           case when a.atttypid = 'timestamptz'::regtype and r.json <> 'null'::jsonb
                then not (isfinite((r.json #>> '{}')::timestamptz)
                          and (r.json #>> '{}')::timestamptz >= '0001-01-01T00:00:00Z'
                          and (r.json #>> '{}')::timestamptz < '10000-01-01T00:00:00Z')
                else false end as unwritable
  ) k
  where a.attrelid = tg_relid and a.attname = any (edited);
  if c is not null then
    raise exception '% [%]: % = % cannot be written back: DynamoDB''s items hold timestamps of the years 1 to 9999',
      tg_table_name, (select string_agg(format('%s=%s', k, old_row ->> k), ', ') from unnest(key_cols) k),
      c, new_row ->> c
      using errcode = 'SY004';
  end if;
  claims := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  insert into sync.write_backs (target_table, row_key, range_key, edited_by, edited_role,
    columns, before_values, after_values, row_sequence, row_changed_at, row_source)
  values (
    tg_table_name,
    (select jsonb_object_agg(k, old_row ->> k) from unnest(key_cols) k),
    (old_row ->> 'sync_range_key')::numeric,
    -- Supabase Auth gives a user who signed up by phone an empty email claim (and one
    -- by email an empty phone claim): the first claim with a value names the editor.
    case when editor_role in ('anon', 'authenticated', 'service_role')
      then coalesce(nullif(claims ->> 'email', ''), nullif(claims ->> 'phone', ''),
                    nullif(claims ->> 'sub', ''), editor_role)
      else editor_role end,
    editor_role,
    edited, before_v, after_v,
    (old_row ->> 'sync_sequence')::numeric, (old_row ->> 'sync_changed_at')::timestamptz,
    old_row ->> 'sync_source');
  perform set_config('sync.write_back_queued', 'on', true);
  return null;
end
$$;
comment on function sync.record_write_back() is
  'Row trigger of the mirror tables: records an admin edit of data columns as a write-back (or refuses it while write_back is off).';
revoke all on function sync.record_write_back() from public;

-- Calls the write-back function (sync.call_edge_function: URL, key and region from
-- Vault). pg_net sends the request after the transaction commits, and not at all when
-- it rolls back (https://supabase.com/docs/guides/database/extensions/pg_net: requests
-- are queued in a table and sent by a background worker).
create function sync.wake_write_back() returns bigint
language sql set search_path = ''
as $$
  select sync.call_edge_function('write-back', '{}'::jsonb, 30000)
$$;

-- sync.write_back_work_pending, whether a write-back is due (the sweep calls the
-- function only then), is defined in 20261128003900_write_back_restore_retries.sql (one
-- place per function).

-- The statement trigger: one call of the function per transaction that recorded edits,
-- at its first statement that did. Every edit of the transaction commits together, and
-- the run it wakes claims every edit due (handing on past its budget): a loop of 5,000
-- one-row updates in one transaction had queued 5,000 calls, all but the first few
-- finding nothing. `sync.write_back_woken` is transaction-local, as pg_net's queued
-- request is: a savepoint rolled back takes both back, and a later statement calls again.
-- It has no WHEN clause on sync.write_back_queued: a statement trigger's WHEN is
-- evaluated before the row triggers that set it have run (tried: every edit then waited
-- for the sweep).
create function sync.deliver_write_backs() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if current_setting('sync.write_back_queued', true) = 'on' then
    perform set_config('sync.write_back_queued', '', true);
    if coalesce(current_setting('sync.write_back_woken', true), '') <> 'on' then
      perform set_config('sync.write_back_woken', 'on', true);
      perform sync.wake_write_back();
    end if;
  end if;
  return null;
end
$$;
revoke all on function sync.deliver_write_backs(), sync.wake_write_back() from public;

do $$
declare
  t text;
  range_column text;
begin
  for t, range_column in
    select s.target_table,
           -- The column fed by a collapsed table's range key (functions-shared/table_registry.ts).
           case s.target_table when 'firespring_visitors' then 'last_visit_at'
                               when 'firespring_extraction_jobs' then 'last_updated_at' end
    from sync.source_tables s order by 1
  loop
    -- The WHEN clause spares the merge's writes the function call (the merge's hot path);
    -- the function checks again.
    execute format(
      $t$create trigger write_back after update on public.%I for each row
         when (coalesce(current_setting('sync.write_back_skip', true), '') <> 'on'
               or coalesce(nullif(current_setting('role', true), 'none'), session_user::text)
                  not in ('postgres', 'service_role'))
         execute function sync.record_write_back(%s)$t$, t, coalesce(quote_literal(range_column), ''));
    execute format(
      'create trigger write_back_delivery after update on public.%I for each statement execute function sync.deliver_write_backs()', t);
  end loop;
end
$$;

-- sync.claim_write_backs, which claims the due write-backs of a run, is defined in
-- 20261128003900_write_back_restore_retries.sql (one place per function).

-- Ends a claimed write-back: applied, conflict (with the source's values) or failed;
-- or, with p_status 'pending', schedules its next attempt after a backoff of 5 s
-- doubling per attempt up to 5 minutes, and fails it once write_back_max_attempts are
-- spent. Returns the status it ends with; null when p_worker no longer holds it.
create function sync.finish_write_back(p_id bigint, p_worker text, p_status text,
  p_detail text, p_source_values jsonb default null)
returns text
language plpgsql set search_path = ''
as $$
declare
  max_attempts integer := sync.integer_setting('write_back_max_attempts');
  result text;
begin
  if p_status not in ('pending', 'applied', 'conflict', 'failed') then
    raise exception 'sync.finish_write_back(%): unknown status %', p_id, p_status using errcode = 'SY002';
  end if;
  update sync.write_backs w
  set status = case when p_status = 'pending' and w.attempts >= max_attempts
                    then 'failed' else p_status end,
      detail = case when p_status = 'pending' and w.attempts >= max_attempts
                    then format('%s (gave up after %s attempts)', p_detail, w.attempts)
                    else p_detail end,
      restore_due = p_status = 'pending' and w.attempts >= max_attempts,
      source_values = coalesce(p_source_values, w.source_values),
      -- 5 s doubled each attempt, at most 5 minutes; the exponent capped before the
      -- product, which past 2^40 is out of an interval's range (write_back_max_attempts
      -- may be up to 100).
      next_attempt_at = case when p_status = 'pending'
        then now() + least(interval '5 minutes',
                           interval '5 seconds' * 2 ^ least(greatest(w.attempts - 1, 0), 6))
        else w.next_attempt_at end,
      lease_owner = case when p_status = 'pending' and w.attempts >= max_attempts
                         then p_worker end,
      lease_expires_at = case when p_status = 'pending' and w.attempts >= max_attempts
                              then now() + interval '2 minutes' end,
      updated_at = now()
  where w.id = p_id and w.lease_owner = p_worker
  returning w.status into result;
  return result;
end
$$;

-- Renews p_worker's lease of write-back p_id, if it still holds it, and answers whether:
-- asked just before the UpdateItem. A claim by another run takes the lease in one update
-- of the row, so a run that still owns it here is the only one that may write the edit
-- until the renewed lease runs out, and the UpdateItem is given less time than that: a
-- run slowed past its lease (DynamoDB's throttling, retried by the SDK) never writes an
-- edit another run has taken over.
create function sync.hold_write_back(p_id bigint, p_worker text,
  p_lease interval default '2 minutes')
returns boolean
language sql set search_path = ''
as $$
  with held as (
    update sync.write_backs w
    set lease_expires_at = now() + p_lease, updated_at = now()
    where w.id = p_id and w.lease_owner = p_worker and w.status = 'pending'
    returning 1
  )
  select exists (select from held)
$$;

-- Gives a claimed write-back back untried (the run's budget ran out before it): its
-- attempt does not count, and the next run may take it at once.
create function sync.release_write_back(p_id bigint, p_worker text) returns void
language sql set search_path = ''
as $$
  update sync.write_backs w
  set lease_owner = null, lease_expires_at = null, attempts = greatest(w.attempts - 1, 0),
      updated_at = now()
  where w.id = p_id and w.lease_owner = p_worker and w.status = 'pending'
$$;

revoke all on function sync.finish_write_back(bigint, text, text, text, jsonb),
  sync.hold_write_back(bigint, text, interval), sync.release_write_back(bigint, text)
  from public;

-- The sweep: every 10 seconds where pg_cron can (1.5 and later), else every minute, it
-- calls the function when a write-back is due (retries after their backoff, deliveries
-- pg_net lost).
select cron.schedule('sync-write-back', sync.sweep_schedule(),
  'select sync.wake_write_back() where sync.write_back_work_pending()');

-- Retention (docs/sync-semantics.md, "Retention"): a write-back that has ended (applied,
-- conflict, failed) is kept for write_back_retention after its last change, then
-- purged, so sync.write_backs does not grow without bound; pending ones are never
-- purged. The status counts read only the ones not applied (write_backs_open).
insert into sync.settings (key, value, description) values (
  'write_back_retention', '30 days',
  'How long an ended write-back (applied, conflict, failed) stays in sync.write_backs after its last change.'
);
create index write_backs_open on sync.write_backs (target_table) where status <> 'applied';
create index write_backs_ended on sync.write_backs (updated_at) where status <> 'pending';
-- Whether a run touched a pending edit lately (a claim, a retry's backoff, one given back):
-- sync.status counts edits overdue only when no run did (20261128005200_status.sql).
create index write_backs_pending_touched on sync.write_backs (updated_at) where status = 'pending';

-- They are purged by sync.purge_expired (20261128002700_retention_progress.sql, kind
-- write_backs), with the rest of retention.
