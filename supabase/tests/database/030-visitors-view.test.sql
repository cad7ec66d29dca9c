-- firespring_visitors_detailed: one row per session, every column, the location and
-- browser parsing rules of the contract, the sessions kept in step with their visitor,
-- and the indexes that the seed report's queries use.
set client_min_messages = warning;
begin;
select plan(23);

select tests.create_supabase_user('view_admin', '{"role": "admin"}');

-- 24 geolocation strings: US, international, non-Latin, odd spacing, empty and missing.
insert into public.firespring_visitors (visitor_id, session_data, sync_range_key, sync_changed_at, sync_source)
select 'geo', jsonb_build_object('sessions', jsonb_agg(
         case when g.geo is null then jsonb_build_object('session_id', g.id)
              else jsonb_build_object('session_id', g.id, 'geolocation', g.geo) end
         order by g.n)),
       1, now(), 'direct'
from (values
  (1, 'g01', 'Toledo, Ohio, USA'),
  (2, 'g02', 'Bangkok, Thailand'),
  (3, 'g03', 'Canada'),
  (4, 'g04', ''),
  (5, 'g05', null),
  (6, 'g06', '   '),
  (7, 'g07', 'São Paulo, São Paulo, Brazil'),
  (8, 'g08', 'Washington, D.C., District of Columbia, USA'),
  (9, 'g09', '  Toledo ,  Ohio ,USA  '),
  (10, 'g10', 'München, Bayern, Germany'),
  (11, 'g11', 'Tokyo, Japan'),
  (12, 'g12', '東京, 日本'),
  (13, 'g13', 'Zürich, Zurich, Switzerland'),
  (14, 'g14', 'Mexico City, CDMX, Mexico'),
  (15, 'g15', 'Saint-Denis, Île-de-France, France'),
  (16, 'g16', 'Ho Chi Minh City, Vietnam'),
  (17, 'g17', 'Port Louis, Port Louis District, Mauritius'),
  (18, 'g18', 'London, England, United Kingdom'),
  (19, 'g19', 'Kyiv, Ukraine'),
  (20, 'g20', 'Singapore'),
  (21, 'g21', 'Toledo, , USA'),
  (22, 'g22', 'A, B, C, D, E'),
  (23, 'g23', 'Toledo,Ohio,USA'),
  (24, 'g24', ', USA')
) as g(n, id, geo);

select results_eq(
  $$select session_id, city, state, country from public.firespring_visitors_detailed
    where visitor_id = 'geo' order by session_index$$,
  $$values
    ('g01', 'Toledo', 'Ohio', 'USA'),
    ('g02', 'Bangkok', null, 'Thailand'),
    ('g03', null, null, 'Canada'),
    ('g04', null, null, null),
    ('g05', null, null, null),
    ('g06', null, null, null),
    ('g07', 'São Paulo', 'São Paulo', 'Brazil'),
    ('g08', 'Washington, D.C.', 'District of Columbia', 'USA'),
    ('g09', 'Toledo', 'Ohio', 'USA'),
    ('g10', 'München', 'Bayern', 'Germany'),
    ('g11', 'Tokyo', null, 'Japan'),
    ('g12', '東京', null, '日本'),
    ('g13', 'Zürich', 'Zurich', 'Switzerland'),
    ('g14', 'Mexico City', 'CDMX', 'Mexico'),
    ('g15', 'Saint-Denis', 'Île-de-France', 'France'),
    ('g16', 'Ho Chi Minh City', null, 'Vietnam'),
    ('g17', 'Port Louis', 'Port Louis District', 'Mauritius'),
    ('g18', 'London', 'England', 'United Kingdom'),
    ('g19', 'Kyiv', null, 'Ukraine'),
    ('g20', null, null, 'Singapore'),
    ('g21', 'Toledo', null, 'USA'),
    ('g22', 'A, B, C', 'D', 'E'),
    ('g23', 'Toledo', 'Ohio', 'USA'),
    ('g24', null, null, 'USA')
  $$,
  'geolocation: one part is the country, two are city and country, more are city…, state, country; empty or missing is null'
);

-- 22 browser strings.
insert into public.firespring_visitors (visitor_id, session_data, sync_range_key, sync_changed_at, sync_source)
select 'browsers', jsonb_build_object('sessions', jsonb_agg(
         case when b.wb is null then jsonb_build_object('session_id', b.id)
              else jsonb_build_object('session_id', b.id, 'web_browser', b.wb) end
         order by b.n)),
       1, now(), 'direct'
from (values
  (1, 'b01', 'Chrome 120.0'),
  (2, 'b02', 'Mobile Safari 17.1'),
  (3, 'b03', 'Firefox'),
  (4, 'b04', ''),
  (5, 'b05', null),
  (6, 'b06', 'Microsoft Edge 120.0.2210.91'),
  (7, 'b07', 'Samsung Internet 23.0'),
  (8, 'b08', 'Opera Mini'),
  (9, 'b09', 'Chrome 120.0 beta'),
  (10, 'b10', 'IE 11'),
  (11, 'b11', 'Yandex Browser 23.11.0'),
  (12, 'b12', 'UC Browser 13.4.0.1306'),
  (13, 'b13', '  Chrome 120.0  '),
  (14, 'b14', 'Chrome v120'),
  (15, 'b15', '120.0'),
  (16, 'b16', 'Safari 17'),
  (17, 'b17', 'Chrome Mobile iOS 120.0'),
  (18, 'b18', 'Firefox 121.0a1'),
  (19, 'b19', 'Android WebView 4.0'),
  (20, 'b20', 'Brave'),
  (21, 'b21', 'QQ浏览器 12.1'),
  (22, 'b22', '   ')
) as b(n, id, wb);

select results_eq(
  $$select session_id, browser, browser_version from public.firespring_visitors_detailed
    where visitor_id = 'browsers' order by session_index$$,
  $$values
    ('b01', 'Chrome', '120.0'),
    ('b02', 'Mobile Safari', '17.1'),
    ('b03', 'Firefox', null),
    ('b04', null, null),
    ('b05', null, null),
    ('b06', 'Microsoft Edge', '120.0.2210.91'),
    ('b07', 'Samsung Internet', '23.0'),
    ('b08', 'Opera Mini', null),
    ('b09', 'Chrome 120.0 beta', null),
    ('b10', 'IE', '11'),
    ('b11', 'Yandex Browser', '23.11.0'),
    ('b12', 'UC Browser', '13.4.0.1306'),
    ('b13', 'Chrome', '120.0'),
    ('b14', 'Chrome v120', null),
    ('b15', '120.0', null),
    ('b16', 'Safari', '17'),
    ('b17', 'Chrome Mobile iOS', '120.0'),
    ('b18', 'Firefox', '121.0a1'),
    ('b19', 'Android WebView', '4.0'),
    ('b20', 'Brave', null),
    ('b21', 'QQ浏览器', '12.1'),
    ('b22', null, null)
  $$,
  'web_browser is split at its last space when a digit follows'
);

-- Every column of one complete session.
insert into public.firespring_visitors (visitor_id, page_views, last_visit_at, session_data, sync_range_key, sync_changed_at, sync_source)
values ('full', 7, '2026-02-06 12:00:00+00', '{
  "ip_address": "198.51.100.1",
  "sessions": [{
    "session_id": "s-full", "time": 1770379200, "time_total": 345, "ip_address": "203.0.113.9",
    "geolocation": "Toledo, Ohio, USA", "latitude": 41.66394, "longitude": -83.55521,
    "country_code": "us", "web_browser": "Chrome 120.0", "operating_system": "Windows 11",
    "device": "desktop", "screen_resolution": "1920x1080", "language": "en-US",
    "referrer_url": "https://www.google.com/search?q=toledo", "referrer_domain": "google.com",
    "referrer_type": "search", "referrer_search": "toledo", "landing_page": "/",
    "actions": 12, "hostname": "host.example.net", "organization": "Example ISP"
  }, {"session_id": "s-bare", "latitude": "not a number", "time": "yesterday"}]
}', 1770379200, now(), 'direct');

select results_eq(
  $$select visitor_id, session_id, session_index, session_started_at, last_visit_at, ip_address,
           city, state, country, country_code, latitude, longitude, browser, browser_version,
           os, device_type, screen_resolution, language, referrer_url, referrer_type,
           referrer_domain, referrer_search, landing_page, page_views, session_actions,
           session_duration_seconds, hostname, organization
    from public.firespring_visitors_detailed where session_id = 's-full'$$,
  $$values ('full', 's-full', 1, '2026-02-06 12:00:00+00'::timestamptz,
            '2026-02-06 12:00:00+00'::timestamptz, '203.0.113.9', 'Toledo', 'Ohio', 'USA', 'us',
            41.66394::numeric, -83.55521::numeric, 'Chrome', '120.0', 'Windows 11', 'desktop',
            '1920x1080', 'en-US', 'https://www.google.com/search?q=toledo', 'search',
            'google.com', 'toledo', '/', 7::numeric, 12::numeric, 345::numeric,
            'host.example.net', 'Example ISP')$$,
  'every column of a complete session'
);
select results_eq(
  $$select ip_address, latitude, session_started_at from public.firespring_visitors_detailed
    where session_id = 's-bare'$$,
  $$values ('198.51.100.1', null::numeric, null::timestamptz)$$,
  'a session without its own ip uses the visitor''s; values of the wrong type read as null'
);

-- The sessions follow their visitor.
update public.firespring_visitors
  set session_data = '{"sessions": [{"session_id": "s-new-1"}, {"session_id": "s-new-2"}, {"session_id": "s-new-3"}]}'
  where visitor_id = 'full';
select results_eq(
  $$select session_id from public.firespring_visitors_detailed where visitor_id = 'full' order by session_index$$,
  $$values ('s-new-1'), ('s-new-2'), ('s-new-3')$$,
  'replacing session_data replaces the visitor''s sessions'
);
update public.firespring_visitors set session_data = '{"sessions": "not a list"}' where visitor_id = 'full';
select is(
  (select count(*)::int from public.firespring_visitors_detailed where visitor_id = 'full'),
  0,
  'a visitor whose sessions are not a list has no session rows'
);
update public.firespring_visitors set session_data = '{}' where visitor_id = 'geo';
select is(
  (select count(*)::int from analytics.visitor_sessions where visitor_id = 'geo'),
  0,
  'a visitor without sessions has none'
);
delete from public.firespring_visitors where visitor_id = 'browsers';
select is(
  (select count(*)::int from analytics.visitor_sessions where visitor_id = 'browsers'),
  0,
  'deleting a visitor deletes its sessions'
);
update public.firespring_visitors set page_views = 99 where visitor_id = 'full';
select is(
  (select count(*)::int from analytics.visitor_sessions where visitor_id = 'full'),
  0,
  'an update that leaves session_data alone leaves the sessions alone'
);
-- One statement that updates several visitors, the sessions of only some of them:
-- theirs are replaced, the others' stay (20261128002600_visitors_write_cost.sql).
insert into public.firespring_visitors (visitor_id, session_data, sync_range_key, sync_changed_at, sync_source)
values ('multi-a', '{"sessions": [{"session_id": "a-1"}]}', 1, now(), 'direct'),
       ('multi-b', '{"sessions": [{"session_id": "b-1"}]}', 1, now(), 'direct');
update public.firespring_visitors
  set page_views = 5,
      session_data = case when visitor_id = 'multi-a'
                          then '{"sessions": [{"session_id": "a-2"}, {"session_id": "a-3"}]}'::jsonb
                          else session_data end
  where visitor_id in ('multi-a', 'multi-b');
select results_eq(
  $$select visitor_id, session_id from public.firespring_visitors_detailed
    where visitor_id like 'multi-%' order by visitor_id, session_index$$,
  $$values ('multi-a', 'a-2'), ('multi-a', 'a-3'), ('multi-b', 'b-1')$$,
  'an update of several visitors replaces the sessions of those whose session_data changed, and only theirs'
);
select is(
  (select string_agg(format('%s.%s %s', attrelid::regclass, attname, attcompression), ', '
                     order by format('%s.%s', attrelid::regclass, attname))
   from pg_attribute
   where (attrelid, attname) in (('sync.observations'::regclass, 'row'),
                                 ('sync.staged_changes'::regclass, 'row'),
                                 ('public.firespring_visitors'::regclass, 'session_data'),
                                 ('analytics.visitor_sessions'::regclass, 'session'))),
  -- LZ4 where this server has it ('l'), else the default (20261128002600 skips it).
  (select format('analytics.visitor_sessions.session %1$s, firespring_visitors.session_data %1$s, '
                 'sync.observations.row %1$s, sync.staged_changes.row %1$s',
                 case when 'lz4' = any (enumvals) then 'l' else '' end)
   from pg_settings where name = 'default_toast_compression'),
  'the columns that hold whole items (and the export loader''s staged items, 20261128001400) compress with LZ4 where the server has it'
);

-- An admin edits a visitor through the API: the derived sessions follow, although the
-- admin has no write access to them.
select tests.authenticate_as('view_admin');
update public.firespring_visitors
  set session_data = '{"sessions": [{"session_id": "s-admin", "geolocation": "Kyiv, Ukraine"}]}'
  where visitor_id = 'full';
select results_eq(
  $$select session_id, country from public.firespring_visitors_detailed where visitor_id = 'full'$$,
  $$values ('s-admin', 'Ukraine')$$,
  'an admin''s edit of session_data shows in the view'
);
select throws_ok(
  $$insert into analytics.visitor_sessions (visitor_id, ordinal, session) values ('full', 9, '{}')$$,
  '42501', null, 'an admin cannot write the derived sessions directly'
);
select tests.clear_authentication();

-- The seed report's queries and their indexes: 3,000 visitors with 4 sessions each,
-- where 'us', 'email' and 'Linux' are rare enough for an index to pay.
delete from public.firespring_visitors;
insert into public.firespring_visitors (visitor_id, session_data, sync_range_key, sync_changed_at, sync_source)
select 'bulk-' || v, jsonb_build_object('sessions', (
         select jsonb_agg(jsonb_build_object(
           'session_id', 'bulk-' || v || '-' || s,
           'time_total', s * 10,
           'geolocation', case when (v * 4 + s) % 50 = 0 then 'Toledo, Ohio, USA' else 'Bangkok, Thailand' end,
           'country_code', case when (v * 4 + s) % 50 = 0 then 'us' else (array['th', 'ca', 'de', 'jp'])[s] end,
           'referrer_type', case when (v * 4 + s) % 50 = 1 then 'email' else (array['search', 'social', 'link', 'direct'])[s] end,
           'referrer_domain', (array['google.com', 'facebook.com', 'example.org', ''])[s],
           'operating_system', case when (v * 4 + s) % 50 = 2 then 'Linux' else (array['Windows 11', 'macOS', 'iOS', 'Android'])[s] end,
           'web_browser', (array['Chrome 120.0', 'Safari 17.1', 'Firefox 121.0', 'Edge 120.0'])[s]))
         from generate_series(1, 4) s)),
       1, now(), 'direct'
from generate_series(1, 3000) v;
analyze public.firespring_visitors;
analyze analytics.visitor_sessions;

select tests.authenticate_as('view_admin');
select matches(
  tests.explain($$select city, state, count(*), avg(session_duration_seconds)
                  from public.firespring_visitors_detailed where country_code = 'us'
                  group by city, state order by count(*) desc$$),
  'visitor_sessions_country_code_idx',
  'US visitors by city and state use the country_code index'
);
select matches(
  tests.explain($$select referrer_type, referrer_domain, count(*)
                  from public.firespring_visitors_detailed where referrer_type = 'email'
                  group by referrer_type, referrer_domain order by count(*) desc$$),
  'visitor_sessions_referrer_idx',
  'traffic by referrer uses the referrer index'
);
select matches(
  tests.explain($$select os, browser, count(*)
                  from public.firespring_visitors_detailed where os = 'Linux'
                  group by os, browser order by count(*) desc$$),
  'visitor_sessions_os_browser_idx',
  'the device breakdown for an os uses the os/browser index'
);
-- The latest sessions, by either time, read the first rows of an index (28 s at 100x the
-- report's volume without them, past authenticated's 8 s; 20261128004900).
select matches(
  tests.explain($$select * from public.firespring_visitors_detailed
                  order by session_started_at desc limit 50$$),
  'Index Scan Backward using visitor_sessions_started_at_idx',
  'the latest sessions by their start read the sessions'' start index from its end'
);
select matches(
  tests.explain($$select * from public.firespring_visitors_detailed
                  order by last_visit_at desc limit 50$$),
  'Index Scan Backward using firespring_visitors_last_visit_at_idx',
  'the latest sessions by their visitor''s last visit read the visitors'' last-visit index from its end'
);
select is(
  (select count(*)::int from public.firespring_visitors_detailed where country_code = 'us'),
  240,
  'the admin sees every US session (1 in 50 of 12,000)'
);
select tests.clear_authentication();

-- A session time the column cannot hold (microseconds by mistake, 1E+125) shows no time,
-- and the view stays readable for every visitor.
insert into public.firespring_visitors (visitor_id, session_data, sync_range_key, sync_changed_at, sync_source)
values ('odd-times', jsonb_build_object('sessions', jsonb_build_array(
          jsonb_build_object('session_id', 'us', 'time', 1700000000000000),
          jsonb_build_object('session_id', 'huge', 'time', 1E+125::numeric),
          jsonb_build_object('session_id', 'ok', 'time', 1700000000))),
        1, now(), 'direct');
select results_eq(
  $$select session_id, session_started_at from public.firespring_visitors_detailed
    where visitor_id = 'odd-times' order by session_index$$,
  $$values ('us'::text, null::timestamptz), ('huge', null),
           ('ok', '2023-11-14 22:13:20+00'::timestamptz)$$,
  'a session time outside the years 1 to 9999 shows none; the others theirs'
);
select lives_ok(
  $$select count(session_started_at) from public.firespring_visitors_detailed$$,
  'and every query of the column still reads the whole view'
);

select tests.create_supabase_user('view_nobody');
select tests.authenticate_as('view_nobody');
select is(
  (select count(*)::int from public.firespring_visitors_detailed),
  0,
  'a user without the admin role sees no session through the view'
);
select tests.authenticate_as_anon();
select throws_ok(
  'select * from public.firespring_visitors_detailed',
  '42501', null, 'anon cannot read the view'
);
select tests.clear_authentication();

select * from finish();
rollback;
