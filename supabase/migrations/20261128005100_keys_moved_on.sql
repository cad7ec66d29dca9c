-- The validator's last look leaves out the keys the stream changed after it read them
-- (docs/sync-semantics.md, "Verification").
--
-- Until now a key that changes faster than the stream's lag varies (a counter updated
-- every few hundred milliseconds) was reported `different` by most validations: its row
-- never showed, at any of the look's compares, the version read, because by then the
-- stream had moved it past that version. The last look now asks, of the keys that still
-- differ, which the stream changed after they were read; a row holding a change made
-- after the read was written whole from the stream's new image, so a change lost before
-- it would not show either, and the key is not reported.

select set_config('lock_timeout', '5s', true);

-- The keys of p_keys (row keys of p_target) that the sync changed at or after p_since
-- plus the stream clock's granularity: a row, a tombstone or (a collapsed table) an
-- observation stamped then or later. The validator's last look asks it of the keys that
-- still differ after its compares, with p_since an instant after its reads of them: such
-- a key changes faster than the stream's lag varies (docs/sync-semantics.md,
-- "Verification"), and its row holds a change made after the read. Each key by its
-- primary key (a key among the table's millions is a probe, not a scan).
create function sync.keys_changed_since(p_target text, p_keys jsonb, p_since timestamptz)
returns setof jsonb
language plpgsql stable set search_path = ''
as $fn$
declare
  since timestamptz := p_since
    + (select value::interval from sync.settings where key = 'stream_clock_granularity');
begin
  if not exists (select from sync.source_tables s where s.target_table = p_target) then
    raise exception 'sync.keys_changed_since: % is not a target table', p_target
      using errcode = '22023';
  end if;
  return query execute format($sql$
    select k.key from jsonb_array_elements($1) as k(key)
    where exists (select from public.%1$I t
                  where (%2$s) = (%3$s) and t.sync_changed_at >= $2)
       or exists (select from sync.tombstones s
                  where s.target_table = %1$L and s.row_key = k.key and s.deleted_at >= $2)
       or exists (select from sync.observations o
                  where o.target_table = %1$L and o.row_key = k.key and o.sync_changed_at >= $2)
    $sql$, p_target, sync.key_columns_sql(p_target, 't'), sync.key_columns_sql(p_target, null, 'k.key'))
  using p_keys, since;
end
$fn$;
revoke all on function sync.keys_changed_since(text, jsonb, timestamptz) from public;
