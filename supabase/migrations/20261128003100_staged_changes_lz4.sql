-- The export loader's staged changes (sync.staged_changes, 20261128001400_compiled_merges.sql)
-- compress with LZ4, as the columns that hold whole items do since
-- 20261128002600_visitors_write_cost.sql (whose note on LZ4 on Supabase's servers, and on
-- the lock an ALTER takes, holds here too). A chunk's visitors changes are compressed as
-- they are COPYed in and inflated again by its merge: on the export bench's 4 copies
-- Postgres spent 19.9 and 20.1 s with pglz here, 18.4 and 17.9 s with LZ4 (the import's
-- wall clock, bound by the loader, the same). Rows staged by a chunk in flight keep pglz
-- until their transaction ends; a server without LZ4 keeps pglz, and this says so.
do $$
begin
  perform set_config('lock_timeout', '5s', true);
  alter table sync.staged_changes alter column row set compression lz4;
exception when feature_not_supported then
  raise notice 'this server has no LZ4 (%): sync.staged_changes keeps pglz', sqlerrm;
end
$$;
