-- firespring_visitors_detailed: one row per element of session_data -> 'sessions' of
-- each visitor, with the location and browser parsed (docs/interfaces.md, "The view").
--
-- The sessions are kept flattened in analytics.visitor_sessions, maintained by triggers
-- on firespring_visitors, so that the common queries of the seed report (by country
-- and city/state, by referrer, by os/browser) can use indexes on the sessions' jsonb
-- paths: an index on the visitors table cannot serve a filter on an element of a
-- nested array. The filtered paths are stored generated columns, because under RLS a
-- filter can only become an index condition when its operator is leakproof, which
-- `text = text` is and jsonb's `->>` is not. The schema is not exposed through the
-- API; the view is the way in.

create schema if not exists analytics;
revoke all on schema analytics from public;
grant usage on schema analytics to authenticated, service_role;
comment on schema analytics is 'Derived data behind public views; not exposed through the API.';

create table analytics.visitor_sessions (
  visitor_id text not null references public.firespring_visitors (visitor_id) on delete cascade,
  ordinal integer not null,
  session jsonb not null,
  country_code text generated always as (session ->> 'country_code') stored,
  referrer_type text generated always as (session ->> 'referrer_type') stored,
  referrer_domain text generated always as (session ->> 'referrer_domain') stored,
  operating_system text generated always as (session ->> 'operating_system') stored,
  web_browser text generated always as (session ->> 'web_browser') stored,
  primary key (visitor_id, ordinal)
);
comment on table analytics.visitor_sessions is
  'The elements of firespring_visitors.session_data -> ''sessions'', one row each; kept by triggers.';

create index visitor_sessions_country_code_idx on analytics.visitor_sessions (country_code);
create index visitor_sessions_referrer_idx
  on analytics.visitor_sessions (referrer_type, referrer_domain);
create index visitor_sessions_os_browser_idx
  on analytics.visitor_sessions (operating_system, web_browser);

-- Same rules as the public tables: admins read, nobody but the service writes.
alter table analytics.visitor_sessions enable row level security;
alter table analytics.visitor_sessions force row level security;
revoke all on table analytics.visitor_sessions from public, anon, authenticated, service_role;
grant select on table analytics.visitor_sessions to authenticated;
grant select, insert, update, delete on table analytics.visitor_sessions to service_role;
create policy "admins can read" on analytics.visitor_sessions
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') in ('admin', 'superuser'));

-- The triggers run as the table owner: an admin who edits session_data must not need
-- (and does not get) write access to the derived table.
create function analytics.visitor_sessions_insert() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into analytics.visitor_sessions (visitor_id, ordinal, session)
  select n.visitor_id, e.ordinal, e.session
  from new_rows n
  cross join lateral jsonb_array_elements(
    case when jsonb_typeof(n.session_data -> 'sessions') = 'array'
         then n.session_data -> 'sessions' else '[]'::jsonb end
  ) with ordinality as e(session, ordinal);
  return null;
end
$$;

create function analytics.visitor_sessions_update() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from analytics.visitor_sessions s
  using old_rows o join new_rows n on n.visitor_id = o.visitor_id
  where s.visitor_id = o.visitor_id and n.session_data is distinct from o.session_data;

  insert into analytics.visitor_sessions (visitor_id, ordinal, session)
  select n.visitor_id, e.ordinal, e.session
  from new_rows n
  join old_rows o on o.visitor_id = n.visitor_id
  cross join lateral jsonb_array_elements(
    case when jsonb_typeof(n.session_data -> 'sessions') = 'array'
         then n.session_data -> 'sessions' else '[]'::jsonb end
  ) with ordinality as e(session, ordinal)
  where n.session_data is distinct from o.session_data;
  return null;
end
$$;

revoke all on function analytics.visitor_sessions_insert(), analytics.visitor_sessions_update()
  from public, anon, authenticated;

create trigger visitor_sessions_insert
  after insert on public.firespring_visitors
  referencing new table as new_rows
  for each statement execute function analytics.visitor_sessions_insert();

-- The key cannot change through the API (no update grant on it); the trigger pairs old
-- and new rows by key.
create trigger visitor_sessions_update
  after update on public.firespring_visitors
  referencing old table as old_rows new table as new_rows
  for each statement execute function analytics.visitor_sessions_update();

create view public.firespring_visitors_detailed with (security_invoker = true) as
select
  v.visitor_id,
  s.session ->> 'session_id' as session_id,
  s.ordinal as session_index,
  case when jsonb_typeof(s.session -> 'time') = 'number'
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

comment on view public.firespring_visitors_detailed is
  'One row per visit (element of firespring_visitors.session_data -> ''sessions''), with location and browser parsed. Same RLS as firespring_visitors.';
comment on column public.firespring_visitors_detailed.session_index is 'Position of the visit in the sessions list, from 1.';
comment on column public.firespring_visitors_detailed.city is 'From geolocation: with two parts the first, with three or more all but the last two.';
comment on column public.firespring_visitors_detailed.state is 'From geolocation: with three or more parts the one before the last.';
comment on column public.firespring_visitors_detailed.country is 'From geolocation: the last part.';
comment on column public.firespring_visitors_detailed.browser is 'web_browser up to its last space, when a version number follows it.';
comment on column public.firespring_visitors_detailed.browser_version is 'The version number after web_browser''s last space.';

revoke all on table public.firespring_visitors_detailed from public, anon, authenticated, service_role;
grant select on table public.firespring_visitors_detailed to authenticated, service_role;
