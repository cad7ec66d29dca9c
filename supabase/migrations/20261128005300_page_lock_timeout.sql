-- A backfill's page waits at most 30 s for its table's merge lock, then gives the page back.
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
-- sync.merge_page_changes is sync.merge_changes with lock_timeout 30 s for its own
-- duration (the function's SET clause; the setting is restored when it returns), and a
-- timeout that names the table's lock and what holds it. SQLSTATE 55P03 stays: the
-- import-worker gives a page that lost so back at once without counting it
-- (functions-shared/segment_scan.ts), and reads it again from its checkpoint.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

create function sync.merge_page_changes(p_target text, p_changes jsonb)
returns table (applied bigint, upserted bigint, deleted bigint)
language plpgsql set search_path = '' set lock_timeout = '30s'
as $$
begin
  return query select m.applied, m.upserted, m.deleted from sync.merge_changes(p_target, p_changes) m;
exception when lock_not_available then
  raise exception 'the merge lock of % was held by another transaction for 30 s (an export''s chunk or a retention purge of the table): the page is given back and read again later', p_target
    using errcode = 'lock_not_available';
end
$$;
comment on function sync.merge_page_changes(text, jsonb) is
  'sync.merge_changes for a backfill''s page: waits at most 30 s for the table''s merge lock (55P03, naming the lock, after).';
revoke all on function sync.merge_page_changes(text, jsonb) from public;
