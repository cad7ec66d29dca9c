-- Tombstones and observations are kept past the stream's 24 hours (docs/sync-semantics.md,
-- "Retention"): a stream record can still arrive, through a retry, a replayed dead letter
-- or a shard read again, until the stream trims it, and without the tombstone or the
-- newer observation it would bring a deleted item back or replace a newer state. So
-- sync.retention_setting (20261128001000_retention.sql) now refuses a tombstone_retention
-- or observation_retention under 24 hours, naming the setting, as it refuses a
-- webhook_id_retention under 10 minutes. And every retention setting is checked when it is
-- written (a trigger on sync.settings), so that a value that cannot be used is refused in
-- the statement that sets it, naming the setting, rather than stop every minute's purge
-- (of every kind: the run is one transaction) until someone reads pg_cron's history.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- A retention setting's value as a period, or an error naming the setting and the cause.
create function sync.retention_period(p_key text, p_raw text) returns interval
language plpgsql stable set search_path = ''
as $$
declare
  period interval;
  floor_period interval;
  why text;
begin
  -- '48' is 48 seconds to Postgres, and was meant as hours or days.
  if p_raw ~ '^\s*[-+]?[0-9.]+\s*$' then
    raise exception 'sync.settings % = % has no unit; write it as an interval (e.g. ''48 hours'')',
      p_key, quote_literal(p_raw) using errcode = '22023';
  end if;
  begin
    period := p_raw::interval;
  exception when invalid_datetime_format or datetime_field_overflow or interval_field_overflow then
    raise exception 'sync.settings % = % is not an interval (e.g. ''48 hours'')',
      p_key, quote_literal(p_raw)
      using errcode = '22023';
  end;
  if period < interval '0' then
    raise exception 'sync.settings % = % is negative', p_key, quote_literal(p_raw)
      using errcode = '22023';
  end if;
  if period > interval '100 years' then
    raise exception 'sync.settings % = % is longer than 100 years',
      p_key, quote_literal(p_raw) using errcode = '22023';
  end if;
  -- Each floor, and what is wrong below it (after "is shorter than ").
  select f.period, f.why into floor_period, why
  from (values
    -- A webhook-id dropped while its signed request could still be accepted (a timestamp
    -- up to 300 s ahead stays valid for 600 s) would let that request be replayed.
    ('webhook_id_retention', interval '10 minutes',
     '10 minutes, twice the webhook''s 300 s signature window, so a captured request could be replayed'),
    ('tombstone_retention', interval '24 hours',
     'the stream''s 24 hours, so a stream record arriving late could bring back a deleted item or an older state; set it to 24 hours or more'),
    ('observation_retention', interval '24 hours',
     'the stream''s 24 hours, so a stream record arriving late could bring back a deleted item or an older state; set it to 24 hours or more'),
    -- The lost-record check reads the notes of what the stream still holds (24 hours),
    -- one check interval (up to 3 hours) after it last looked.
    ('stream_note_retention', interval '27 hours',
     'the stream''s 24 hours and the 3 hours between lost-record checks, so applied records would look lost and every table be backfilled; set it to 27 hours or more'),
    -- The lost-record check looks for the backfill that heals a table; a day is the
    -- least a finished one is kept.
    ('backfill_job_retention', interval '24 hours',
     'a day, so the backfill that healed a table would be gone before its check looks for it; set it to 24 hours or more')
  ) as f (key, period, why)
  where f.key = p_key;
  if floor_period is not null and period < floor_period then
    raise exception 'sync.settings % = % is shorter than %',
      p_key, quote_literal(p_raw), why using errcode = '22023';
  end if;
  return period;
end
$$;

comment on function sync.retention_period(text, text) is
  'A retention setting''s value as an interval; an error (22023) naming the setting when it has no unit, is no interval, is negative, past 100 years or under its floor.';

-- A retention period from sync.settings, with an error naming the setting and the cause
-- when it is missing or not a usable interval (one set before the check below, or with it
-- disabled).
create or replace function sync.retention_setting(p_key text) returns interval
language plpgsql stable set search_path = ''
as $$
declare
  raw text;
begin
  select s.value into raw from sync.settings s where s.key = p_key;
  if not found then
    raise exception 'sync.settings has no row %; insert it again (README, "Retention")', p_key
      using errcode = '22023';
  end if;
  return sync.retention_period(p_key, raw);
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

-- Every retention setting is checked as it is written, and none may be deleted.
create function sync.check_retention_setting() returns trigger
language plpgsql set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    if old.key like '%\_retention' then
      raise exception 'sync.settings % cannot be deleted: retention reads it at every run; set its value instead (README, "Retention")',
        old.key using errcode = '22023';
    end if;
    return old;
  end if;
  if new.key like '%\_retention' then
    perform sync.retention_period(new.key, new.value);
  end if;
  return new;
end
$$;
create trigger settings_retention_checked
  before insert or update or delete on sync.settings
  for each row execute function sync.check_retention_setting();
revoke all on function sync.retention_period(text, text), sync.check_retention_setting()
  from public;
