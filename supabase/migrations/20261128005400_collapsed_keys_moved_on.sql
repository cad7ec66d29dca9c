-- The validator's last look leaves out the keys of a collapsed table that the stream moved
-- past what the look read (docs/sync-semantics.md, "Verification"), as it does for plain
-- tables since 20261128005100_keys_moved_on.sql.
--
-- A collapsed row (visitors, extraction jobs) is the live observation with the largest
-- range key. sync.keys_changed_since returns none of a collapsed table's keys: a newer
-- stamp on one observation proves nothing of the others. So a key whose items change
-- faster than the stream's lag varies (an extraction job writing a new state every
-- 200 ms) was reported `different` by every validation that ran while it changed (found
-- by a review). But one observation does prove the row, when it is the row's source and
-- its range key is at least the largest the look read of the key: every item the look
-- read ranks at most that one, so no change lost before the read can show through it.
-- A change lost after the read (a larger item never applied) is the next validation's to
-- find, as a plain table's is.

select set_config('lock_timeout', '5s', true);

-- The keys of p_keys (row keys of p_target, a collapsed table, compared by validation run
-- p_run) whose row was written from a stream record stamped at or after p_since plus the
-- stream clock's granularity, and holds an item whose range key is at least the largest
-- the run staged for the key (any, when it staged none: the key had no item when read).
-- A key with no row is not returned (a delete proves nothing of the items left). Each key
-- by its primary key.
create function sync.collapsed_keys_changed_since(
  p_run bigint, p_target text, p_keys jsonb, p_since timestamptz
)
returns setof jsonb
language plpgsql stable set search_path = ''
as $fn$
declare
  spec sync.source_tables;
  since timestamptz := p_since
    + (select value::interval from sync.settings where key = 'stream_clock_granularity');
begin
  select s.* into spec from sync.source_tables s where s.target_table = p_target;
  if spec.target_table is null or not spec.collapsed then
    raise exception 'sync.collapsed_keys_changed_since: % is not a collapsed target table', p_target
      using errcode = '22023';
  end if;
  return query execute format($sql$
    select k.key from jsonb_array_elements($1) as k(key)
    where exists (select from public.%1$I t
                  where (%2$s) = (%3$s) and t.sync_source = 'stream' and t.sync_changed_at >= $2
                    and t.sync_range_key >= coalesce(
                      (select max(c.range_key) from sync.checksum_items c
                       where c.run_id = $3 and c.row_key = k.key),
                      t.sync_range_key))
    $sql$, p_target, sync.key_columns_sql(p_target, 't'), sync.key_columns_sql(p_target, null, 'k.key'))
  using p_keys, since, p_run;
end
$fn$;
revoke all on function sync.collapsed_keys_changed_since(bigint, text, jsonb, timestamptz) from public;
