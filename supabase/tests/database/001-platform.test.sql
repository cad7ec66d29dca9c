-- The platform objects the local stack provides in place of a hosted Supabase project
-- (sql/platform, sql/extensions): extensions, roles, the auth claim helpers, Vault and
-- pg_net's request queue.
set client_min_messages = warning;
begin;
select plan(47);

-- Extensions a hosted project has (or offers) and the stack must have.
select has_extension('pg_cron', 'pg_cron is enabled (by a migration)');
select has_extension('pgtap', 'pgTAP is installed');
select has_extension('plpgsql_check', 'plpgsql_check is installed');
select has_extension('pgcrypto', 'pgcrypto is installed');
select has_extension('supabase_vault', 'Vault is installed');
select has_extension('pg_net', 'pg_net is enabled (by a migration)');
select is(current_setting('shared_preload_libraries'), 'pg_cron', 'pg_cron is preloaded');
select is(current_setting('cron.use_background_workers'), 'off',
  'pg_cron runs each job over a connection of its own, as hosted');
select is(
  (select count(*)::int from cron.job
   where (nodename, nodeport) is distinct from (current_setting('cron.host'), current_setting('port')::integer)),
  0,
  'every job connects to this server''s socket');

-- Roles, as on a hosted project.
select has_role('anon');
select has_role('authenticated');
select has_role('service_role');
select has_role('authenticator');
select ok((select rolbypassrls from pg_roles where rolname = 'service_role'), 'service_role bypasses RLS');
select ok(not (select rolbypassrls from pg_roles where rolname = 'authenticated'), 'authenticated does not bypass RLS');
select ok(pg_has_role('authenticator', 'anon', 'member'), 'authenticator can become anon');
select ok(
  current_setting('search_path') like '%extensions%',
  'extensions is on the search path'
);

-- The project's role is not a superuser, as hosted: the attributes and memberships of a
-- hosted project's postgres (sql/platform/00-roles.sql), run as it (pg_prove logs in as
-- postgres, as `supabase test db` does).
select is(current_user::text, 'postgres', 'the tests run as postgres');
select results_eq(
  $$select rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls
    from pg_roles where rolname = 'postgres'$$,
  $$values (false, true, true, true, true, true)$$,
  'postgres: NOSUPERUSER CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS'
);
select ok(
  pg_has_role('postgres', 'pg_monitor', 'member') and pg_has_role('postgres', 'pg_read_all_data', 'member')
    and pg_has_role('postgres', 'pg_signal_backend', 'member'),
  'postgres is a member of pg_monitor, pg_read_all_data and pg_signal_backend'
);
select is(
  (select extowner::regrole::text from pg_extension where extname = 'pg_cron'),
  'supabase_admin',
  'pg_cron, created by a migration as postgres, is supabase_admin''s, as supautils makes it'
);
select throws_ok(
  'update cron.job set active = active',
  '42501', 'permission denied for table job',
  'postgres changes pg_cron''s jobs only through its functions'
);
select ok(
  has_table_privilege('postgres', 'cron.job_run_details', 'select, delete')
    and not has_table_privilege('postgres', 'cron.job_run_details', 'trigger'),
  'postgres reads and deletes pg_cron''s history, but puts no trigger on it'
);
select ok(
  has_function_privilege('postgres', 'pg_catalog.pg_reload_conf()', 'execute'),
  'postgres may reload the configuration, as hosted'
);
select throws_ok(
  $$select nextval('cron.runid_seq')$$,
  '42501', null,
  'nor does it use pg_cron''s sequences'
);
select throws_ok(
  $$insert into vault.secrets (secret, name) values ('x', 'platform_direct')$$,
  '42501', null,
  'postgres writes Vault''s secrets only through its functions'
);
select throws_ok(
  $$copy (select 1) to program 'true'$$,
  '42501', null,
  'hosted, COPY ... PROGRAM is not supported'
);
select throws_ok(
  $$copy (select 1) to '/tmp/platform-probe'$$,
  '42501', null,
  'nor COPY to or from the server''s files'
);
select throws_ok(
  'alter role postgres superuser',
  '42501', null,
  'nor ALTER USER ... WITH SUPERUSER'
);

-- auth.uid(), auth.role() and auth.jwt() read the claims PostgREST sets per request.
select tests.create_supabase_user('platform_admin', '{"role": "admin"}', '{"role": "nobody"}');
select tests.authenticate_as('platform_admin');
select is(auth.jwt() -> 'app_metadata' ->> 'role', 'admin', 'auth.jwt() returns the app_metadata claims');
select is(auth.jwt() -> 'user_metadata' ->> 'role', 'nobody', 'auth.jwt() returns the user_metadata claims');
select is(auth.uid(), tests.get_supabase_uid('platform_admin'), 'auth.uid() is the user''s id');
select is(auth.role(), 'authenticated', 'auth.role() is the claimed role');
select is(current_user::text, 'authenticated', 'the request runs as authenticated');
select tests.clear_authentication();
select is(auth.jwt(), null, 'without claims auth.jwt() is null');
select is(auth.uid(), null, 'without claims auth.uid() is null');
select set_config('request.jwt.claim.sub', 'c0ffee00-0000-4000-8000-000000000000', true);
select is(auth.uid(), 'c0ffee00-0000-4000-8000-000000000000'::uuid, 'auth.uid() also reads the older per-claim setting');
select set_config('request.jwt.claim.sub', '', true);

-- Vault: secrets are stored encrypted and read back through decrypted_secrets.
select vault.create_secret('s3cr3t-value', 'platform_test_secret', 'a test secret');
select is(
  (select decrypted_secret from vault.decrypted_secrets where name = 'platform_test_secret'),
  's3cr3t-value',
  'vault.decrypted_secrets returns the secret'
);
select isnt(
  (select secret from vault.secrets where name = 'platform_test_secret'),
  's3cr3t-value',
  'vault.secrets does not hold it in clear'
);
select vault.update_secret(
  (select id from vault.secrets where name = 'platform_test_secret'), 'rotated'
);
select is(
  (select decrypted_secret from vault.decrypted_secrets where name = 'platform_test_secret'),
  'rotated',
  'vault.update_secret replaces the secret'
);
select tests.authenticate_as_anon();
select throws_ok(
  'select decrypted_secret from vault.decrypted_secrets',
  '42501',
  null,
  'anon cannot read Vault'
);
select tests.clear_authentication();

-- pg_net: http_post queues the request; the stack's worker sends it after commit. The
-- request is found by its id: a pg_cron job may queue one of its own meanwhile.
create temporary table posted as
select net.http_post(
  'http://127.0.0.1:54321/functions/v1/nowhere',
  '{"hello": "world"}'::jsonb,
  '{"a": "1"}'::jsonb
) as id;
select ok((select id from posted) > 0, 'net.http_post returns a request id');
select results_eq(
  $$select method::text, url, convert_from(body, 'UTF8')::jsonb
    from net.http_request_queue join posted using (id)$$,
  $$values ('POST', 'http://127.0.0.1:54321/functions/v1/nowhere?a=1', '{"hello": "world"}'::jsonb)$$,
  'the request is queued with its method, url (params appended) and body'
);
create temporary table encoded as
select net.http_post('http://127.0.0.1:1/x', '{}', '{"q": "a b&c/é"}', '{"X-Id": "1"}') as id;
select results_eq(
  $$select url, headers from net.http_request_queue join encoded using (id)$$,
  $$values ('http://127.0.0.1:1/x?q=a%20b%26c%2F%C3%A9'::text,
            '{"X-Id": "1", "Content-Type": "application/json"}'::jsonb)$$,
  'as pg_net 0.14: params URL-encoded, and headers without a Content-Type get application/json'
);
select throws_ok(
  $$select net.http_post('http://127.0.0.1:1/', '{}', '{}', '{"content-type": "text/plain"}')$$,
  'P0001', 'Content-Type header must be "application/json"',
  'as pg_net 0.14: any other Content-Type is refused'
);
-- As on hosted Supabase, not more tightly: pg_net grants its schema and tables to PUBLIC
-- and Supabase's grant_pg_net_access grants the request functions to the API roles, so a
-- role with a SQL session reads every queued request's headers (nothing secret is ever
-- queued: 20261128004500_wake_keys.sql, checked in 060-backfill). PostgREST does not
-- expose the net schema.
select tests.authenticate_as_anon();
select lives_ok($$select count(*) from net.http_request_queue$$,
  'as on hosted, any role may read pg_net''s queue');
select lives_ok($$select net.http_post('http://127.0.0.1:1/')$$,
  'and queue a request');

select * from finish();
rollback;
