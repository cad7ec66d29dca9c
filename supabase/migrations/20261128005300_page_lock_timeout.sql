-- A Scan backfill's page waits at most 30 s for its table's merge lock, then is given back.
--
-- Every merge of a table takes the table's merge lock first (sync.enter_merge,
-- 20261128001400_compiled_merges.sql), and an export's chunk holds it for as long as the
-- chunk takes, minutes at 100× (functions-shared/export_file_load.ts), its loaders one
-- chunk behind another. A Scan's page of the same table (a heal, a backfill asked for by
-- hand beside an export) waited behind them with no lock timeout: past its 60 s lease
-- another worker took the segment over, naming the cause "stopped or killed mid-page",
-- and past the hosted 2-minute statement timeout (57014) the page counted as a failed
-- attempt; five in a row failed the job with a message that never named the lock (found
-- by a review). The sweep's chunks wait 30 s at most for the same reason
-- (20261128003600_sweep_in_chunks.sql).
--
-- sync.wait_for_merge_lock takes the lock sync.enter_merge takes (the same key), waiting
-- at most 30 s, or less when asked (lock_timeout is the caller's again once it returns;
-- the lock is the transaction's). A Scan's page calls it before its merge, whose own call of
-- sync.enter_merge then finds the lock held (functions-shared/backfill_page.ts); a
-- timeout is SQLSTATE 55P03, a statement that lost to another, which the import-worker
-- gives back at once without counting it (functions-shared/segment_scan.ts). Taken once
-- for the page, before any savepoint, the careful path's halvings (each in a savepoint)
-- keep it. The careful path, after the one statement failed on a value, waits only what
-- the one statement's wait left of the 30 s (at least 1 s): a page's waits together stay
-- well inside its 60 s lease. An export's own careful pages do not call it: its sibling loaders hold the
-- lock chunk after chunk, and they queue for it as before.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

create function sync.wait_for_merge_lock(p_target text, p_wait_ms integer default 30000)
returns text
language sql set search_path = '' set lock_timeout = '30s'
as $$
  -- A SET LOCAL of a variable the function's SET clause names ends with the function
  -- (CREATE FUNCTION, "SET"): the caller's lock_timeout is back once it returns.
  select pg_catalog.set_config('lock_timeout',
    greatest(1, least(coalesce(p_wait_ms, 30000), 30000))::text || 'ms', true);
  select pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtext('sync.merge_changes'), pg_catalog.hashtext(p_target));
  select p_target;
$$;
comment on function sync.wait_for_merge_lock(text, integer) is
  'Takes the table''s merge lock (sync.enter_merge''s) for this transaction, waiting at most p_wait_ms (1 ms to 30 s; 55P03 after); answers the table.';
revoke all on function sync.wait_for_merge_lock(text, integer) from public;
