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

-- Appends `params` to the URL as a query string, as pg_net does.
create function net._encode_url_with_params(url text, params jsonb) returns text
language sql immutable
as $$
  select case
    when params is null or params = '{}'::jsonb then url
    else url || case when strpos(url, '?') > 0 then '&' else '?' end || (
      select string_agg(key || '=' || value, '&' order by key)
      from jsonb_each_text(params)
    )
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

create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language sql volatile
as $$
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params(url, params), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id
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

revoke all on all tables in schema net from public;
revoke all on all functions in schema net from public;
revoke all on all sequences in schema net from public;
grant usage on schema net to postgres, service_role;
grant all on all tables in schema net to postgres, service_role;
grant all on all sequences in schema net to postgres, service_role;
grant execute on function net.http_get(text, jsonb, jsonb, integer),
  net.http_post(text, jsonb, jsonb, jsonb, integer),
  net.http_delete(text, jsonb, jsonb, integer)
  to postgres, service_role;
