-- A validation run's divergent keys are kept in a staging table while it compares, and
-- written to the run's lists once, when its compare ends (docs/sync-semantics.md,
-- "Verification"; issue 17, big tables).
--
-- Until now each page (sync.check_checksum_page) and each range of buckets
-- (sync.compare_checksum_range) appended its divergent keys to the run's `missing`,
-- `unexpected` and `different` jsonb lists: every append rewrites the whole list, so a
-- run that finds many keys costs the square of their number. Measured on the local
-- stack, pages of 1,000 keys none of which the target held: 63 ms a page at 25,000 keys
-- kept, 309 ms at 200,000, growing by about 1.5 ms per 1,000 keys. A table a hundred
-- times the report's (2.9 million actions), emptied or mapped wrong, would have spent
-- hours rewriting its lists, writing their every copy to the WAL.
--
-- Now the keys go to sync.checksum_divergent, one row each. It is logged, unlike
-- sync.checksum_items and sync.checksum_seen (a crash that empties those could make a run
-- miss a key on both sides, so a run that outlived one cannot end with a verdict:
-- 20261128004400_validation_restart_guard.sql); one that emptied this would lose keys
-- found divergent before it, and the run resumed from its checkpoints could then report
-- a match. Rows are only appended, so its WAL grows
-- with the keys found, not with their square. The compare's last slice
-- writes the lists from it, in the order they had (kind, then key), and empties it. The
-- lists hold the same keys as before, in the same order; nothing reads them before the
-- compare ends (the rechecks, the report and the repair come after it).
--
-- The same for the items a page finds unmappable (sync.checksum_unmappable, in the order
-- they were found): appended to the run's `unmappable` list page by page, a Scan of a
-- table whose every item maps to no row (a renamed attribute, say) rewrote a list of
-- hundreds of thousands of entries on each page.
--
-- And a request reads at most a bounded number of each list (sync.validation_findings):
-- the validator read the whole lists into its isolate, where millions of keys would pass
-- the Edge Runtime's 256 MB and get the isolate killed, request after request, until the
-- run was failed as stalled. It needs every key only to look at each again or repair it
-- (200 at most, functions-shared/checksum_validator.ts, MAX_KEYS_BY_KEY); its answer lists
-- the first keys of each kind with every list's count, and the run's row keeps them all.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

create table sync.checksum_divergent (
  -- No foreign key to its run, as sync.checksum_seen (a check per key written): the
  -- statements that write here read and update the run's row, and the trigger's function below
  -- deletes a deleted run's keys.
  run_id bigint not null,
  kind text not null check (kind in ('missing', 'unexpected', 'different')),
  row_key jsonb not null
);
create index checksum_divergent_run_idx on sync.checksum_divergent (run_id, kind);
comment on table sync.checksum_divergent is
  'Divergent keys a validation run has found while it compares; written to its lists when the compare ends, then gone.';

-- Logged, as sync.checksum_divergent: an item lost here would let the run match.
create table sync.checksum_unmappable (
  run_id bigint not null,
  -- The order the Scan's pages found them in, which the run's list keeps.
  seq bigint generated always as identity,
  item jsonb not null
);
create index checksum_unmappable_run_idx on sync.checksum_unmappable (run_id, seq);
comment on table sync.checksum_unmappable is
  'Source items a validation run''s Scan found unmappable ({key, reason}); written to its unmappable list when the compare ends, then gone.';

-- A run's lists are jsonb values, which Postgres caps at 256 MB (about 2 to 4 million
-- keys, so the setting goes to 2 million at most): a run that finds more entries than
-- this setting fails, naming the counts and the
-- backfill that heals the table, rather than with Postgres's own message.
insert into sync.settings (key, value, description, min_value, max_value) values
  ('checksum_max_listed', '1000000',
   'Divergent keys and unmappable items together that one validation run lists at most; a run that finds more fails, naming the backfill that heals the table (a jsonb list is capped at 256 MB).',
   1, 2000000);

-- sync.forget_seen_of_deleted_runs, with this change, is defined in
-- 20261128001600_validator_streaming.sql (one place per function).
-- A run's list of one kind: the keys it already holds and those kept for it, in key order.
create function sync.divergent_list(p_run bigint, p_kind text, p_held jsonb) returns jsonb
language sql stable set search_path = ''
as $$
  select coalesce(jsonb_agg(k order by k), '[]')
  from (select x as k from jsonb_array_elements(p_held) x
        union all
        select d.row_key from sync.checksum_divergent d where d.run_id = p_run and d.kind = p_kind) s
$$;

-- sync.end_validation, with this change, is defined in
-- 20261128001600_validator_streaming.sql (one place per function).
-- What a request reads of a run's findings: the first p_limit entries of each list (in
-- the lists' order) and how many each holds. A run that does not exist gives no row.
create function sync.validation_findings(p_run bigint, p_limit integer)
returns table (missing jsonb, unexpected jsonb, different jsonb, unmappable jsonb,
               missing_count integer, unexpected_count integer, different_count integer,
               unmappable_count integer)
language sql stable set search_path = ''
as $$
  select jsonb_path_query_array(c.missing, '$[0 to $n]', n.vars),
         jsonb_path_query_array(c.unexpected, '$[0 to $n]', n.vars),
         jsonb_path_query_array(c.different, '$[0 to $n]', n.vars),
         jsonb_path_query_array(c.unmappable, '$[0 to $n]', n.vars),
         jsonb_array_length(c.missing), jsonb_array_length(c.unexpected),
         jsonb_array_length(c.different), jsonb_array_length(c.unmappable)
  from public.sync_checksums c
  cross join (select jsonb_build_object('n', greatest(p_limit, 1) - 1) as vars) n
  where c.id = p_run
$$;

revoke all on function sync.divergent_list(bigint, text, jsonb),
  sync.validation_findings(bigint, integer) from public;
