-- Consistent re-reads of a collapsed row whose held observation was removed
-- (docs/sync-semantics.md, "Collapsed tables" and "Retention").
--
-- A collapsed row (visitors, extraction jobs) is the newest live observation of its key.
-- The observations it does not hold are purged after `observation_retention`
-- (20261128002700_retention_progress.sql), though their items may well be live in
-- DynamoDB still. When a change then removes the observation the row holds, the merge can
-- only fall back to the newest observation kept here, or remove the row: wrong whenever an
-- older item that is still live was purged. The stream never brings such an item again
-- (it did not change), so the merge queues the key here (the `reread` step of
-- sync.collapsed_merge_body, 20261128001400_compiled_merges.sql), and the validator reads
-- its items consistently from DynamoDB (one Query of the partition) and applies them
-- through the one merge as a repair seen at the time of the removal
-- (functions-shared/collapsed_rereads.ts): a purged item comes back as an observation, and
-- the row is the newest live one again. A re-read only brings items back: an observation
-- whose item it does not find is left to that item's own stream record, as every other
-- removal is. pg_cron calls the validator (`{"rereads": true}`) while keys wait.
--
-- Whether anything was purged for a key is not tracked: removing the observation a row
-- holds is rare (a visitor's newest item, a job's latest state), and a re-read costs one
-- Query of one partition. Repairs (the re-read itself) and backfills (reads of the whole
-- table) queue none.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

create table sync.collapsed_rereads (
  target_table text not null references sync.source_tables (target_table),
  row_key jsonb not null,
  -- When the held observation was removed (the latest such removal): the re-read is a
  -- repair seen then.
  queued_at timestamptz not null default now(),
  -- Not claimed again before this: a claim's lease, or a failure's backoff.
  not_before timestamptz not null default now(),
  attempts integer not null default 0,
  error text,
  primary key (target_table, row_key)
);
comment on table sync.collapsed_rereads is
  'Collapsed rows whose held observation was removed, waiting for a consistent re-read of their items (older live items may have been purged here).';
revoke all on table sync.collapsed_rereads from public;

create index collapsed_rereads_not_before_idx on sync.collapsed_rereads (not_before);

-- When a request last claimed keys, of any table: sync.wake_rereads tells a queue that no
-- request works (the validator not deployed, or not answering) from a backlog that
-- requests work through, oldest first, each ending before the next tick (a request's
-- claims are gone by then: its keys re-read and out of the queue).
create table sync.reread_claims (
  singleton boolean primary key default true check (singleton),
  last_claimed_at timestamptz not null
);
comment on table sync.reread_claims is
  'One row: when a request of the data-checksum-validator last claimed collapsed keys to re-read.';
revoke all on table sync.reread_claims from public;

-- Up to p_limit waiting keys, oldest first, each leased for two minutes (a re-read takes
-- one Query and one merge), doubling with each attempt up to about an hour: a request
-- that dies on a key (its partition too big for the isolate, say) leaves it to the next
-- after that, and the key says so. The keys are picked once (a materialized CTE): a
-- limited subquery joined in a nested loop may run again for every row, and claim more.
-- A claim of any key notes when (sync.reread_claims).
create function sync.claim_rereads(p_limit integer)
returns table (target_table text, row_key jsonb, queued_at timestamptz, attempts integer)
language sql set search_path = ''
as $$
  with c as materialized (
    select q.target_table, q.row_key from sync.collapsed_rereads q
    where q.not_before <= now()
    order by q.not_before, q.queued_at
    limit p_limit
    for update skip locked
  ), noted as (
    insert into sync.reread_claims (singleton, last_claimed_at)
    select true, now() where exists (select from c)
    on conflict (singleton) do update set last_claimed_at = excluded.last_claimed_at
  )
  update sync.collapsed_rereads r
  set not_before = now() + interval '2 minutes' * 2 ^ least(r.attempts, 5),
      attempts = r.attempts + 1,
      error = case when r.attempts > 0 and r.error is null
                   then format('%s earlier re-read(s) of it ended without an answer (the request stopped: see the validator''s logs)',
                               r.attempts)
                   else r.error end
  from c
  where r.target_table = c.target_table and r.row_key = c.row_key
  returning r.target_table, r.row_key, r.queued_at, r.attempts
$$;
comment on function sync.claim_rereads(integer) is
  'Claims up to p_limit collapsed keys waiting for a re-read, each for two minutes (longer after attempts that ended without an answer).';
revoke all on function sync.claim_rereads(integer) from public;

-- The end of one key's re-read. Done: the key leaves the queue. Failed: the cause is
-- kept, and the key waits 30 s, doubling with each attempt up to about an hour. Either
-- way, a key queued again meanwhile (a later removal) is read again at once.
create function sync.finish_reread(
  p_target text, p_row_key jsonb, p_queued_at timestamptz, p_error text
) returns void
language plpgsql set search_path = ''
as $$
begin
  if p_error is null then
    delete from sync.collapsed_rereads r
    where r.target_table = p_target and r.row_key = p_row_key and r.queued_at = p_queued_at;
  else
    update sync.collapsed_rereads r
    set error = p_error,
        not_before = now() + interval '30 seconds' * 2 ^ (least(r.attempts, 8) - 1)
    where r.target_table = p_target and r.row_key = p_row_key and r.queued_at = p_queued_at;
  end if;
  -- Queued again since its claim (a later removal): read again at once. A re-read that
  -- succeeded sets the key's failures back; one that failed counts (sync.wake_rereads
  -- gives a key up after 10).
  if not found then
    update sync.collapsed_rereads r
    set not_before = now(),
        attempts = case when p_error is null then 0 else r.attempts end,
        error = p_error
    where r.target_table = p_target and r.row_key = p_row_key;
  end if;
end
$$;
comment on function sync.finish_reread(text, jsonb, timestamptz, text) is
  'Ends a collapsed key''s re-read: removes it from the queue, or keeps why it failed and backs off.';
revoke all on function sync.finish_reread(text, jsonb, timestamptz, text) from public;

-- Gives a claimed key back untried (the request's budget ran out first): it waits for
-- no lease, and the attempt does not count.
create function sync.return_reread(p_target text, p_row_key jsonb, p_queued_at timestamptz)
returns void
language sql set search_path = ''
as $$
  update sync.collapsed_rereads r
  set not_before = now(), attempts = greatest(r.attempts - 1, 0)
  where r.target_table = p_target and r.row_key = p_row_key and r.queued_at = p_queued_at
$$;
comment on function sync.return_reread(text, jsonb, timestamptz) is
  'Gives a claimed collapsed key back untried, its attempt not counted.';
revoke all on function sync.return_reread(text, jsonb, timestamptz) from public;

-- sync.status counts each table's keys waiting for a re-read, and of those the ones whose
-- last re-read failed (rereads_waiting, rereads_failing: 20261128005200_status.sql).

-- A moment as messages name it: UTC, to the second, in ISO 8601 (as toISOString writes
-- it, less the milliseconds).
create function sync.utc_text(p_at timestamptz) returns text
language sql stable set search_path = ''
as $$ select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;
revoke all on function sync.utc_text(timestamptz) from public;

-- pg_cron's sweep: calls the validator while a key waits (a request re-reads keys until
-- none waits or its budget is spent; the next sweep goes on). Not after the cutover
-- (write_back = 'cutover', 20261128002500_write_back.sql): Supabase is then ahead of
-- DynamoDB on purpose, and a re-read would write DynamoDB's state over an admin's edit.
-- A key due again after 10 attempts (failed, or whose requests ended without an answer:
-- hours, with the backoff) is given up to a healing backfill of its table, which reads
-- every item again and so brings its purged items back (sync.heal_table,
-- 20261128004600_heal_table.sql: one backfill for however many keys): a re-read that can
-- never pass (a mapping's error, a request that dies on the key) no longer waits for ever.
-- So is a key due for an hour while no request claimed any key for an hour
-- (sync.reread_claims) and none is claimed or backing off now (a claim, or a failure's
-- backoff, moves not_before past now): its attempts count only claims, so with the
-- validator never answering (not deployed, its calls refused, a bad setting at its cold
-- start) it would wait for ever, counted in rereads_waiting but never in rereads_failing,
-- its row showing the fallback. While requests claim keys, a backlog of more than an hour
-- (a burst of removals) is worked, not given up, though each request ends before the next
-- tick (found by a review: with no claim left at a tick, such a backlog went to a
-- healing backfill of the whole table).
create function sync.wake_rereads() returns integer
language plpgsql set search_path = ''
as $$
declare
  given_up record;
begin
  if not exists (select from sync.collapsed_rereads r where r.not_before <= now())
     or sync.cut_over() then
    return 0;
  end if;
  for given_up in
    delete from sync.collapsed_rereads r
    where r.not_before <= now()
      and (r.attempts >= 10
           or (r.not_before < now() - interval '1 hour'
               and not exists (select from sync.collapsed_rereads x where x.not_before > now())
               and not exists (select from sync.reread_claims c
                               where c.last_claimed_at > now() - interval '1 hour')))
    returning r.target_table, r.row_key, r.attempts, r.error, r.not_before
  loop
    perform sync.heal_table(given_up.target_table, case
      when given_up.attempts >= 10 then format(
        'the re-read of %s %s failed %s times (%s): a backfill reads its items again',
        given_up.target_table, given_up.row_key, given_up.attempts,
        coalesce(given_up.error, 'no answer'))
      else format(
        'the re-read of %s %s was due since %s and no request of the data-checksum-validator took it (is the function deployed, and are its calls answered? net._http_response shows their status): a backfill reads its items again',
        given_up.target_table, given_up.row_key,
        sync.utc_text(given_up.not_before))
    end);
  end loop;
  if not exists (select from sync.collapsed_rereads r where r.not_before <= now()) then
    return 0;
  end if;
  perform sync.call_edge_function('data-checksum-validator', '{"rereads": true}'::jsonb, 60000);
  return 1;
end
$$;
comment on function sync.wake_rereads() is
  'Calls the data-checksum-validator to re-read the collapsed keys waiting in sync.collapsed_rereads; a key due after 10 attempts, or due an hour while no key was claimed for an hour, is given up to a healing backfill of its table.';
revoke all on function sync.wake_rereads() from public;

select cron.schedule('sync-collapsed-rereads', sync.sweep_schedule(), 'select sync.wake_rereads()');
