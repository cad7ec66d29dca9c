-- The ordering guard's clock granularity becomes a setting. AWS rounds a stream
-- record's ApproximateCreationDateTime down to the second; DynamoDB Local rounds it down
-- to the minute, so the local stack sets 60 seconds. With a granularity that is too
-- small, a backfill page read shortly before a delete could resurrect the row.
create table sync.settings (
  key text primary key,
  value text not null,
  description text not null
);
comment on table sync.settings is 'Settings of the sync machinery.';
insert into sync.settings (key, value, description) values (
  'stream_clock_granularity', '1 second',
  'How coarse ApproximateCreationDateTime is: AWS rounds down to the second, DynamoDB Local to the minute.'
);

-- is_newer reads the granularity that merge_changes sets for its transaction.
create or replace function sync.is_newer(
  new_seq numeric, new_at timestamptz, old_seq numeric, old_at timestamptz
) returns boolean
language sql stable parallel safe set search_path = ''
as $$
  select case
    when new_seq is not null and old_seq is not null then new_seq > old_seq
    when new_seq is not null then new_at >= old_at - g.granularity
    when old_seq is not null then old_at < new_at - g.granularity
    else new_at >= old_at
  end
  from (select coalesce(nullif(current_setting('sync.clock_granularity', true), '')::interval,
                        interval '1 second') as granularity) g
$$;

create or replace function sync.merge_changes(p_target text, p_changes jsonb)
returns table (applied bigint, upserted bigint, deleted bigint)
language plpgsql set search_path = ''
as $fn$
declare
  spec sync.source_tables;
begin
  select * into spec from sync.source_tables s where s.target_table = p_target;
  if not found then
    raise exception 'sync.merge_changes: % is not a registered target table', p_target
      using errcode = '22023';
  end if;
  if jsonb_typeof(p_changes) is distinct from 'array' then
    raise exception 'sync.merge_changes(%): changes must be a JSON array', p_target
      using errcode = '22023';
  end if;
  perform set_config('sync.clock_granularity',
    (select value from sync.settings where key = 'stream_clock_granularity'), true);
  perform pg_advisory_xact_lock(hashtext('sync.merge_changes'), hashtext(p_target));
  if spec.collapsed then
    return query select * from sync.merge_collapsed(p_target, spec.key_columns, p_changes);
  else
    return query select * from sync.merge_plain(p_target, spec.key_columns, p_changes);
  end if;
end
$fn$;
