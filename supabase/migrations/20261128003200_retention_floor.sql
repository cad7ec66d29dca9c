-- Tombstones and observations are kept past the stream's 24 hours (docs/sync-semantics.md,
-- "Retention"): a stream record can still arrive, through a retry, a replayed dead letter
-- or a shard read again, until the stream trims it, and without the tombstone or the
-- newer observation it would bring a deleted item back or replace a newer state. So
-- sync.retention_setting (20261128001000_retention.sql) now refuses a tombstone_retention
-- or observation_retention under 24 hours, naming the setting, as it refuses a
-- webhook_id_retention under 10 minutes; the purge then removes nothing until it is mended.
create or replace function sync.retention_setting(p_key text) returns interval
language plpgsql stable set search_path = ''
as $$
declare
  raw text;
  period interval;
begin
  select s.value into raw from sync.settings s where s.key = p_key;
  if not found then
    raise exception 'sync.purge_expired: sync.settings has no row %; insert it again (README, "Retention")', p_key
      using errcode = '22023';
  end if;
  begin
    period := raw::interval;
  exception when invalid_datetime_format or datetime_field_overflow or interval_field_overflow then
    raise exception 'sync.purge_expired: sync.settings % = % is not an interval (e.g. ''48 hours'')',
      p_key, quote_literal(raw)
      using errcode = '22023';
  end;
  if period < interval '0' then
    raise exception 'sync.purge_expired: sync.settings % = % is negative', p_key, quote_literal(raw)
      using errcode = '22023';
  end if;
  -- A webhook-id dropped while its signed request could still be accepted (a timestamp
  -- up to 300 s ahead stays valid for 600 s) would let that request be replayed.
  if p_key = 'webhook_id_retention' and period < interval '10 minutes' then
    raise exception 'sync.purge_expired: sync.settings webhook_id_retention = % is shorter than 10 minutes, twice the webhook''s 300 s signature window, so a captured request could be replayed',
      quote_literal(raw) using errcode = '22023';
  end if;
  if p_key in ('tombstone_retention', 'observation_retention') and period < interval '24 hours' then
    raise exception 'sync.purge_expired: sync.settings % = % is shorter than the stream''s 24 hours, so a stream record arriving late could bring back a deleted item or an older state; set it to 24 hours or more',
      p_key, quote_literal(raw) using errcode = '22023';
  end if;
  return period;
end
$$;

-- A value set under 24 hours before this migration is raised to 24 hours, with a notice
-- naming it, rather than left to stop the hourly purge of everything else. A value that
-- is no interval is left for the purge to name, as before.
do $$
declare
  s record;
begin
  for s in select key, value from sync.settings
           where key in ('tombstone_retention', 'observation_retention') loop
    begin
      if s.value::interval < interval '24 hours' then
        update sync.settings set value = '24 hours' where key = s.key;
        raise notice 'sync.settings %: % is shorter than the stream''s 24 hours; raised to 24 hours',
          s.key, quote_literal(s.value);
      end if;
    exception when invalid_datetime_format or datetime_field_overflow or interval_field_overflow then
      null;
    end;
  end loop;
end
$$;
