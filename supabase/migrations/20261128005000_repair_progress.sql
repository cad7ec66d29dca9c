-- A validation's repair key by key goes on where a request left it (docs/sync-semantics.md,
-- "Verification"), instead of healing the whole table by a backfill.
--
-- Until now a repair whose reads outlasted its request's CPU or wall budget applied what
-- it had read, then marked the table stale and queued a backfill of all of it: handed on,
-- every retry would have read the keys again from the first and stopped at the same
-- place. But the budget is the isolate's, shared with the other requests it serves: under
-- load a repair of four keys could start with little of it left, and a table of millions
-- of rows was then backfilled (its read capacity spent for hours) for want of a few point
-- reads. Now the repair records how many of the run's divergent keys it read again and
-- applied, and hands on: the next request goes on from the key after. Each request
-- repairs one key at least, so the repair ends; a key a request cannot read at all kills
-- request after request at the same place, counted as takeovers, the fifth of which fails
-- the run (20261128003400_validation_step_takeovers.sql).

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

alter table public.sync_checksums
  add column repair_read integer not null default 0 check (repair_read >= 0);
comment on column public.sync_checksums.repair_read is
  'How many of the run''s divergent keys (missing, unexpected, different, in that order) its repair read again and applied.';

-- The dead letters' key, as the backfill's sweep reads it since it keeps only a key whose
-- letter it met again (20261128003600_sweep_in_chunks.sql); the column is defined in
-- 20261128000400_dead_letters.sql, whose comment said any open letter kept its key.
comment on column sync.dead_letters.row_key is
  'The target row''s key, when the record names one; a backfill keeps the row of a key whose letter it recorded again (the item alive but unmappable).';
