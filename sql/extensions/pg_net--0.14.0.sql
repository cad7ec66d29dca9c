-- Local emulation of pg_net 0.14: the same schema, tables and functions, with the same
-- asynchronous behaviour. `net.http_post` only queues the request and returns its id;
-- the request is sent after the calling transaction commits (a rolled-back call sends
-- nothing), by a background process -- here the stack's pg_net worker
-- (local-stack/supabase/pg_net_worker.ts), which a trigger wakes with NOTIFY. The worker deletes
-- the queued request and records the outcome in `net._http_response`, as pg_net does,
-- and, as pg_net's worker does, deletes responses older than the `pg_net.ttl` setting
-- (default 6 hours) a batch at a time, along the index on `created`.

create schema net;

create domain net.http_method as text check (value in ('GET', 'POST', 'DELETE'));

create unlogged table net.http_request_queue (
  id bigserial,
  method net.http_method not null,
  url text not null,
  headers jsonb not null,
  body bytea,
  timeout_milliseconds integer not null
);
create index on net.http_request_queue (id);

create unlogged table net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz not null default now()
);
create index on net._http_response (created);

-- Wake the worker when a request is committed (NOTIFY is delivered at commit).
create function net._wake_worker() returns trigger
language plpgsql
as $$
begin
  perform pg_notify('pg_net_request', '');
  return null;
end
$$;
create trigger wake_worker after insert on net.http_request_queue
  for each statement execute function net._wake_worker();

-- A text URL-encoded as pg_net's C function does it: every byte of its UTF-8 but the
-- unreserved ones (letters, digits, - . _ ~) as %XX.
create function net._urlencode_string(string varchar) returns text
language sql immutable strict
as $$
  select coalesce(string_agg(
    case when b between 48 and 57 or b between 65 and 90 or b between 97 and 122
              or b in (45, 46, 95, 126)
         then chr(b) else '%' || upper(lpad(to_hex(b), 2, '0')) end, '' order by i), '')
  from (select i, get_byte(convert_to(string, 'UTF8'), i) as b
        from generate_series(0, octet_length(convert_to(string, 'UTF8')) - 1) i) bytes
$$;

-- Appends `params` to the URL as a query string, each key and value URL-encoded, as
-- pg_net does. Like pg_net, it first hands the URL to libcurl's URL parser
-- (`curl_url_set(h, CURLUPART_URL, url, 0)` in src/util.c), which refuses, in the
-- caller's transaction, a URL it cannot parse: pg_net raises `invalid URL "<url>":
-- <curl_url_strerror>` (src/errors.h, 0.19 and later). The cases refused here are
-- libcurl's for a URL given without flags (lib/urlapi.c, parseurl): a space or control
-- character ("Malformed input to a URL function"), no `scheme:` ("Bad scheme"), other
-- than one to three slashes after it ("Unsupported number of slashes following scheme"),
-- and no host ("No host part in the URL").
create function net._encode_url_with_params(url text, params jsonb) returns text
language plpgsql immutable
as $$
declare
  scheme constant text := '^[A-Za-z][A-Za-z0-9+.-]*:';
  reason text := case
    when url ~ '[\x01-\x20\x7f]' then 'Malformed input to a URL function'
    when url !~ scheme then 'Bad scheme'
    when url ~ (scheme || '/{1,3}($|[?#])') then 'No host part in the URL'
    when url !~ (scheme || '/{1,3}[^/]') then 'Unsupported number of slashes following scheme'
  end;
begin
  if reason is not null then
    raise exception 'invalid URL "%": %', url, reason using errcode = 'XX000';
  end if;
  return case
    when params is null or params = '{}'::jsonb then url
    else url || case when strpos(url, '?') > 0 then '&' else '?' end || (
      select string_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value), '&'
                        order by key)
      from jsonb_each_text(params)
    )
  end;
end
$$;

create function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language sql volatile
as $$
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('GET', net._encode_url_with_params(url, params), headers, timeout_milliseconds)
  returning id
$$;

-- As pg_net 0.14's: headers without a Content-Type get `application/json`; any other
-- Content-Type is refused.
create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language plpgsql volatile
as $$
declare
  content_type text;
  request_id bigint;
begin
  select h.value into content_type
  from jsonb_each_text(coalesce(headers, '{}'::jsonb)) h
  where lower(h.key) = 'content-type'
  limit 1;
  if content_type is null then
    headers := coalesce(headers, '{}'::jsonb) || '{"Content-Type": "application/json"}'::jsonb;
  elsif content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params(url, params), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;
  return request_id;
end
$$;

create function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language sql volatile
as $$
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('DELETE', net._encode_url_with_params(url, params), headers, timeout_milliseconds)
  returning id
$$;

-- The privileges as hosted Supabase has them, not fewer: pg_net grants the schema, its
-- tables and its sequences to PUBLIC (supabase/pg_net, sql/pg_net--0.11.0--0.11.1.sql:
-- "grant usage on schema net to PUBLIC; grant all on all sequences in schema net to
-- PUBLIC; grant all on all tables in schema net to PUBLIC"), so every role may read the
-- queued requests' headers; Supabase's grant_pg_net_access event trigger grants the
-- request functions to postgres, anon, authenticated and service_role. Nothing secret
-- may be queued here (20261128004500_wake_keys.sql).
revoke all on all functions in schema net from public;
grant usage on schema net to public;
grant all on all tables in schema net to public;
grant all on all sequences in schema net to public;
grant execute on function net.http_get(text, jsonb, jsonb, integer),
  net.http_post(text, jsonb, jsonb, jsonb, integer),
  net.http_delete(text, jsonb, jsonb, integer),
  net._encode_url_with_params(text, jsonb), net._urlencode_string(varchar)
  to postgres, anon, authenticated, service_role;
