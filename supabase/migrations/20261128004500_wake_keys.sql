-- pg_cron wakes the functions with a wake key, never the service key (docs/interfaces.md,
-- "Who may do what"; README, "Deploying"). Found by a review of the migrations against
-- hosted Supabase.
--
-- sync.call_edge_function (20261128000100_sync_registry.sql) put the service key from
-- Vault in the request it queued with pg_net: `Authorization: Bearer <service key>`, a
-- row of net.http_request_queue until pg_net's worker sends it, every 10 s (the sweeps)
-- and at every admin edit. On hosted Supabase every role may read that table: pg_net
-- grants `usage on schema net` and `all on all tables in schema net` to PUBLIC
-- (supabase/pg_net, sql/pg_net--0.11.0--0.11.1.sql and later), which the database's owner
-- cannot revoke (the extension's objects are supabase_admin's). Any role with a SQL
-- session (a read-only user for a dashboard, a custom login role) could collect the key
-- and, with it, read and write every table through the API, past Row Level Security.
--
-- Now the request carries the service key's wake key for the hour it is queued in:
-- `sync_wake_<hour>_` and the hex SHA-256 of `dynamo-supabase-sync wake:<hour>:` followed
-- by the key, where <hour> is the Unix time in whole hours. The functions derive the same
-- from the keys they accept (functions-shared/service_auth.ts, wakeKeyOf) for the hour
-- the key names, take it only while that hour is the one before, the current one or the
-- one after (a call queued at the end of an hour, clocks a few seconds apart), and only
-- for what pg_cron asks of them: waking the import-worker, the write-back and
-- stream-check, and going on with a validation run or the collapsed keys' re-reads. It
-- opens nothing else (no table through the API, no new validation, no repair), the key
-- cannot be found from it, and a wake key read from the queue is refused two hours later
-- at most. Nothing new to set up: Vault keeps the service key, as before, where only
-- postgres and service_role may read it.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

-- The calls made below, kept as long as pg_net keeps their answers (pg_net.ttl, 6 hours
-- unless the platform sets it): which function, when, pg_net's request id, or why no
-- request was made. pg_cron counts a run as succeeded once the call is queued, and
-- nothing read the answer: a function not deployed (404), refused (401: the service key
-- in Vault), failing at its cold start (500, 503) or missing from Vault altogether was
-- seen by nothing. sync.function_problem() (20261128005200_status.sql) reads each
-- function's latest answer, and sync.status shows it.
create table sync.function_calls (
  id bigint generated always as identity primary key,
  function_name text not null,
  called_at timestamptz not null default now(),
  request_id bigint,
  problem text,
  check ((request_id is null) <> (problem is null))
);
create index function_calls_called_at on sync.function_calls (called_at);
-- Each function's latest calls (sync.function_problem, 20261128005200_status.sql).
create index function_calls_latest on sync.function_calls (function_name, id);
comment on table sync.function_calls is
  'The Edge Function calls sync.call_edge_function made (pg_net''s request id, or why none was made), kept as long as pg_net keeps answers.';
revoke all on table sync.function_calls from public;

-- How long pg_net keeps an answer: its setting pg_net.ttl, 6 hours unless the platform
-- sets it (`show pg_net.ttl` answers `6 hours` on a default install:
-- https://github.com/supabase/pg_net/issues/80).
create function sync.pg_net_ttl() returns interval
language sql stable set search_path = ''
as $$
  select coalesce(nullif(current_setting('pg_net.ttl', true), '')::interval, interval '6 hours')
$$;
comment on function sync.pg_net_ttl() is
  'How long pg_net keeps an answer in net._http_response (pg_net.ttl, 6 hours by default): sync.function_calls keeps its calls as long.';
revoke all on function sync.pg_net_ttl() from public;

-- The hour a wake key is made for: Unix time in whole hours (service_auth.ts, wakeHourOf).
create function sync.wake_hour() returns bigint
language sql volatile parallel safe set search_path = ''
as $$
  select floor(extract(epoch from clock_timestamp()) / 3600)::bigint
$$;
comment on function sync.wake_hour() is
  'The hour a wake key is made for now: Unix time in whole hours.';
revoke all on function sync.wake_hour() from public;

-- The wake key of a service key for an hour (functions-shared/service_auth.ts, wakeKeyOf,
-- is the same).
create function sync.wake_key(p_service_key text, p_hour bigint) returns text
language sql immutable parallel safe set search_path = ''
as $$
  select 'sync_wake_' || p_hour || '_'
         || encode(sha256(convert_to('dynamo-supabase-sync wake:' || p_hour || ':' || p_service_key, 'UTF8')), 'hex')
$$;
comment on function sync.wake_key(text, bigint) is
  'The wake key pg_cron''s calls carry instead of the service key, for one hour: what the functions take only for waking them, and only within an hour of the one it names.';
revoke all on function sync.wake_key(text, bigint) from public;

-- Replaces 20261128000100_sync_registry.sql's (whole; the same signature): the wake key
-- instead of the service key, and each call noted in sync.function_calls (above), with
-- those older than pg_net keeps their answers removed, a few at each call and none that
-- another call is removing (skip locked: an admin's edit never waits on another's), and
-- only in a read committed transaction (below).
create or replace function sync.call_edge_function(p_name text, p_body jsonb, p_timeout_ms integer)
returns bigint
language plpgsql set search_path = ''
as $$
declare
  project_url text;
  service_key text;
  region text;
  request bigint;
  refused text;
begin
  -- Under repeatable read or serializable a row another call deleted meanwhile would fail
  -- this one (40001), and with it the caller (an admin's edit): those calls leave the
  -- pruning to the next.
  if current_setting('transaction_isolation') = 'read committed' then
    delete from sync.function_calls f
    where f.id = any (array(
      select x.id from sync.function_calls x
      where x.called_at < now() - sync.pg_net_ttl()
      order by x.called_at
      limit 10
      for update skip locked));
  end if;
  select decrypted_secret into project_url from vault.decrypted_secrets where name = 'project_url';
  select decrypted_secret into service_key from vault.decrypted_secrets where name = 'service_role_key';
  select decrypted_secret into region from vault.decrypted_secrets where name = 'functions_region';
  if project_url is null or service_key is null then
    raise warning 'sync.call_edge_function(%): Vault has no project_url or service_role_key secret, so the function cannot be called (see README, "Deploying")',
      p_name;
    insert into sync.function_calls (function_name, problem)
    values (p_name, 'Vault has no project_url or service_role_key secret (see README, "Deploying")');
    return null;
  end if;
  -- A secret pasted with its line end is taken without it. pg_net hands the URL to
  -- libcurl in the caller's transaction and raises on one it cannot parse (no scheme,
  -- a space), which would fail the caller, an admin's edit say: such a secret is
  -- refused here, named with what is wrong and never its value, and no request made.
  project_url := btrim(project_url, E' \t\r\n');
  region := btrim(region, E' \t\r\n');
  refused := case
    when project_url !~* '^https?://[^/?#[:space:][:cntrl:]]' then
      'Vault''s project_url secret is not an https:// URL with a host'
    when project_url ~ '[[:space:][:cntrl:]]' then
      'Vault''s project_url secret holds a space or a control character'
    when region !~ '^[a-z0-9-]*$' then
      'Vault''s functions_region secret is not a region name (such as us-east-1)'
  end;
  if refused is not null then
    raise warning 'sync.call_edge_function(%): %, so the function cannot be called (see README, "Deploying")',
      p_name, refused;
    insert into sync.function_calls (function_name, problem)
    values (p_name, refused || ' (see README, "Deploying")');
    return null;
  end if;
  request := net.http_post(
    url := rtrim(project_url, '/') || '/functions/v1/' || p_name
           || coalesce('?forceFunctionRegion=' || nullif(region, ''), ''),
    -- A W3C trace of its own: the Edge Runtime counts the calls a function makes to
    -- functions by the trace of the request it serves, and a request without one against
    -- the function's one budget (supabase/edge-runtime, ext/runtime/rate_limit.rs), which
    -- each chain of hand-ons started here would then share.
    headers := jsonb_build_object('Content-Type', 'application/json',
                                  'Authorization', 'Bearer ' || sync.wake_key(trim(service_key), sync.wake_hour()),
                                  'traceparent',
                                  '00-' || replace(gen_random_uuid()::text, '-', '') || '-'
                                  || left(replace(gen_random_uuid()::text, '-', ''), 16) || '-01')
               || case when nullif(region, '') is null then '{}'::jsonb
                       else jsonb_build_object('x-region', region) end,
    body := p_body,
    timeout_milliseconds := p_timeout_ms);
  insert into sync.function_calls (function_name, request_id) values (p_name, request);
  return request;
end
$$;
comment on function sync.call_edge_function(text, jsonb, integer) is
  'Calls an Edge Function through pg_net with the project URL and optional region from Vault, and the wake key of the service key there for the hour (never the key itself: pg_net''s queue is readable by every role on hosted Supabase); notes the call in sync.function_calls.';
