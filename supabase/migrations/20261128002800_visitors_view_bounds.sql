-- Replaces 20261128000800_visitors_detailed_view.sql's view (the same columns): a
-- session whose `time` is a number outside the years 1 to 9999 shows no
-- session_started_at; to_timestamp of it ("timestamp out of range") failed every query
-- of the view that read the column, for every visitor, until the item changed.

create or replace view public.firespring_visitors_detailed with (security_invoker = true) as
select
  v.visitor_id,
  s.session ->> 'session_id' as session_id,
  s.ordinal as session_index,
  -- Seconds since the epoch, within years 1 to 9999: any other number (milliseconds or
  -- microseconds by mistake, 1E+125) is no time this column can hold, and a to_timestamp
  -- of it would fail every query that reads the column.
  case when jsonb_typeof(s.session -> 'time') = 'number'
        and (s.session ->> 'time')::numeric between -62135596800 and 253402300799
       then to_timestamp((s.session ->> 'time')::double precision) end as session_started_at,
  v.last_visit_at,
  coalesce(s.session ->> 'ip_address', v.session_data ->> 'ip_address') as ip_address,
  s.session ->> 'geolocation' as geolocation,
  -- "City, State, Country": one part is the country; two are city and country; with
  -- three or more the last is the country, the one before it the state, and the rest
  -- (joined with ", ") the city.
  case when g.n = 2 then g.parts[1]
       when g.n >= 3 then nullif(array_to_string(g.parts[1:g.n - 2], ', '), '') end as city,
  case when g.n >= 3 then g.parts[g.n - 1] end as state,
  case when g.n >= 1 then g.parts[g.n] end as country,
  s.country_code,
  case when jsonb_typeof(s.session -> 'latitude') = 'number'
       then (s.session ->> 'latitude')::numeric end as latitude,
  case when jsonb_typeof(s.session -> 'longitude') = 'number'
       then (s.session ->> 'longitude')::numeric end as longitude,
  -- "Chrome 120.0": split at the last space when what follows starts with a digit.
  coalesce(rtrim(substring(b.raw from '^(.*) [0-9][^ ]*$')), b.raw) as browser,
  substring(b.raw from ' ([0-9][^ ]*)$') as browser_version,
  s.operating_system as os,
  s.session ->> 'device' as device_type,
  s.session ->> 'screen_resolution' as screen_resolution,
  s.session ->> 'language' as language,
  s.session ->> 'referrer_url' as referrer_url,
  s.referrer_type,
  s.referrer_domain,
  s.session ->> 'referrer_search' as referrer_search,
  s.session ->> 'landing_page' as landing_page,
  v.page_views,
  case when jsonb_typeof(s.session -> 'actions') = 'number'
       then (s.session ->> 'actions')::numeric end as session_actions,
  case when jsonb_typeof(s.session -> 'time_total') = 'number'
       then (s.session ->> 'time_total')::numeric end as session_duration_seconds,
  s.session ->> 'hostname' as hostname,
  s.session ->> 'organization' as organization
from analytics.visitor_sessions s
join public.firespring_visitors v on v.visitor_id = s.visitor_id
cross join lateral (
  select parts, cardinality(parts) as n
  from (
    select array(
      select nullif(btrim(part), '')
      from unnest(string_to_array(nullif(btrim(s.session ->> 'geolocation'), ''), ','))
        with ordinality as p(part, i)
      order by i
    ) as parts
  ) split
) g
cross join lateral (select nullif(btrim(s.web_browser), '') as raw) b;
