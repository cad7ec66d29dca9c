-- Retention that holds the contract under bad settings and busy tables
-- (docs/sync-semantics.md, "Retention"). Found by a review of the purges:
--
-- * Superseded observations of a row that kept taking new ones were never purged: the
--   purge waited for the row to go 48 hours unwritten (synced_at), and an active visitor,
--   or a table backfilled more often than every 48 hours, kept every observation for
--   good. A superseded observation is now purged once it, and a live observation after
--   it, were recorded before the cutoff (it was superseded a retention ago), whatever its
--   row does since: a removal of the observation the row holds queues a consistent
--   re-read of the key (20261128002900_collapsed_rereads.sql), which brings the purged
--   items back, as it does for a row quiet for 48 hours. (recorded_at did not hold that
--   for a table backfilled more often than every 48 hours either: every backfill wrote
--   it again. 20261128001400_compiled_merges.sql's live_since does, and the purge asks it.)
-- * The purge of superseded observations waited for the table's merge lock, with no
--   time left or behind a long export chunk: past the statement timeout, the whole hourly
--   run rolled back. It now tries for the lock until the table's share of the run (10 s)
--   is spent, and starts only with time left.
-- * A replayed dead letter whose record failed again since (last_seen_at) was purged 30
--   days after its replay: a backfill's end, which spares its key while it is seen again,
--   then removed a live row. It is kept until it was last seen 30 days ago too.
-- * Three retention settings had no floor: stream_note_retention of '48' (seconds) made
--   the lost-record check take applied records for lost ones and queue a backfill of
--   every table every two hours; backfill_job_retention of minutes purged the job a
--   stale table's check looks for. A value without a unit, or past 100 years (which
--   failed as "timestamp out of range", naming nothing), is refused now, naming it.

-- sync.retention_setting, with this change, is defined in
-- 20261128003200_retention_floor.sql (one place per function).
-- A value below its new floor is raised to it, with a notice naming it, rather than left
-- to stop the hourly purge of everything else. A bare number is left for the purge to
-- name, as a value that is no interval is.
do $$
declare
  s record;
  least_value text;
begin
  for s in select key, value from sync.settings
           where key in ('stream_note_retention', 'backfill_job_retention') loop
    least_value := case s.key when 'stream_note_retention' then '27 hours' else '24 hours' end;
    begin
      if s.value ~* '[a-z]' and s.value::interval < least_value::interval then
        update sync.settings set value = least_value where key = s.key;
        raise notice 'sync.settings %: % is below its floor; raised to it', s.key, quote_literal(s.value);
      end if;
    exception when invalid_datetime_format or datetime_field_overflow or interval_field_overflow then
      null;
    end;
  end loop;
end
$$;

-- sync.purge_superseded_observations, with this change, is defined in
-- 20261128002700_retention_progress.sql (one place per function).
-- sync.purge_expired, with this change, is defined in
-- 20261128002700_retention_progress.sql (one place per function).
