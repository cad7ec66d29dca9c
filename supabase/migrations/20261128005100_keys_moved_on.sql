-- The validator's last look leaves out the keys the stream changed after it read them
-- (docs/sync-semantics.md, "Verification").
--
-- Until now a key that changes faster than the stream's lag varies (a counter updated
-- every few hundred milliseconds) was reported `different` by most validations: its row
-- never showed, at any of the look's compares, the version read, because by then the
-- stream had moved it past that version. The last look now asks, of the keys that still
-- differ, which the stream changed after they were read; a row holding a change made
-- after the read was written whole from the stream's new image, so a change lost before
-- it would not show either, and the key is not reported (plain tables: a collapsed row is
-- built from several items).

select set_config('lock_timeout', '5s', true);

-- The keys of p_keys (row keys of p_target, a plain table) whose row or tombstone a stream
-- record stamped at or after p_since plus the stream clock's granularity. Only the
-- stream's writes count: each holds the item whole, from its new image, stamped by
-- DynamoDB when the change was made (a person's direct request is stamped on the
-- function's clock, a read or a repair at its read, a backfill's sweep at its start).
-- The validator's last look asks it of the keys that still differ after its compares,
-- with p_since an instant after its reads of them: such a key changes faster than the
-- stream's lag varies (docs/sync-semantics.md, "Verification"), and its row holds a
-- change made after the read. A collapsed table's row is built from several items, so a
-- newer stamp on one of them proves nothing of the others: none of its keys is returned.
-- Each key by its primary key (a key among the table's millions is a probe, not a scan).
create function sync.keys_changed_since(p_target text, p_keys jsonb, p_since timestamptz)
returns setof jsonb
language plpgsql stable set search_path = ''
as $fn$
declare
  spec sync.source_tables;
  since timestamptz := p_since
    + (select value::interval from sync.settings where key = 'stream_clock_granularity');
begin
  select s.* into spec from sync.source_tables s where s.target_table = p_target;
  if spec.target_table is null then
    raise exception 'sync.keys_changed_since: % is not a target table', p_target
      using errcode = '22023';
  end if;
  if spec.collapsed then
    return;
  end if;
  return query execute format($sql$
    select k.key from jsonb_array_elements($1) as k(key)
    where exists (select from public.%1$I t
                  where (%2$s) = (%3$s) and t.sync_source = 'stream' and t.sync_changed_at >= $2)
       or exists (select from sync.tombstones s
                  where s.target_table = %1$L and s.row_key = k.key
                    and s.sync_sequence is not null and s.deleted_at >= $2)
    $sql$, p_target, sync.key_columns_sql(p_target, 't'), sync.key_columns_sql(p_target, null, 'k.key'))
  using p_keys, since;
end
$fn$;
revoke all on function sync.keys_changed_since(text, jsonb, timestamptz) from public;

-- The bounds of a look's reads, over the requests it spans, kept with each chunk's
-- checkpoint (functions-shared/validator_source.ts, `stage`): the request that ends the
-- look may have read none of its keys (its budget ran out after the reads), and the bound
-- is for every key of it.
alter table public.sync_checksums
  add column recheck_read_from timestamptz,
  add column recheck_read_before timestamptz;
comment on column public.sync_checksums.recheck_read_from is
  'On DynamoDB''s clock: the look under way''s first read of a key began no earlier than this.';
comment on column public.sync_checksums.recheck_read_before is
  'On DynamoDB''s clock: every read of the look under way ended before this (infinity when a read''s answer had no Date).';
