-- Scheduled work that stops without an error anyone reads shows in sync.status
-- (20261128005200_status.sql): a pg_cron job whose latest run failed or that is paused,
-- an Edge Function whose latest answered call failed, and an admin's edit due for 10
-- minutes while no write-back run was seen.
set client_min_messages = warning;
begin;
select plan(50);

-- pg_cron's jobs: a failed latest run is named with when and why, until a later run of
-- the job succeeds. (Runs numbered past any real one: pg_cron keeps running meanwhile.)
create function pg_temp.ran(p_job text, p_status text, p_message text, p_offset integer)
returns void language sql as $$
  insert into cron.job_run_details (jobid, runid, job_pid, database, username, command,
                                    status, return_message, start_time, end_time)
  select j.jobid, (select coalesce(max(runid), 0) from cron.job_run_details) + 1000000 + p_offset,
         0, current_database(), current_user, j.command, p_status, p_message,
         timestamptz '2026-12-01 10:00:00+00' + make_interval(mins => p_offset),
         timestamptz '2026-12-01 10:00:01+00' + make_interval(mins => p_offset)
  from cron.job j where j.jobname = p_job
$$;

-- Each job's latest run, to begin with, one that succeeded: a real run that failed while
-- the other files held their locks is not this test's.
insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status,
                                  return_message, start_time, end_time)
select j.jobid, (select coalesce(max(runid), 0) from cron.job_run_details) + 1000000
                + row_number() over (order by j.jobid),
       0, current_database(), current_user, j.command, 'succeeded', '1 row',
       timestamptz '2026-12-01 09:00:00+00', timestamptz '2026-12-01 09:00:01+00'
from cron.job j where j.jobname like 'sync-%';
select is(sync.scheduler_problem(), null, 'no job of the project failed or is paused');
select pg_temp.ran('sync-retention', 'failed',
  'ERROR:  canceling statement due to lock timeout', 1);
select is(sync.scheduler_problem(),
  'pg_cron job sync-retention failed at 2026-12-01T10:01:00Z: ERROR:  canceling statement due to lock timeout',
  'a job whose latest run failed is named, with when and pg_cron''s message');
select is((select count(distinct scheduler_problem)::int from sync.status where scheduler_problem like '%sync-retention%'), 1,
  'sync.status shows it on every row alike');
select is((select count(*)::int from sync.status where scheduler_problem is null), 0,
  'on every row');
select pg_temp.ran('sync-retention', 'succeeded', '1 row', 2);
select is(sync.scheduler_problem(), null, 'a later run that succeeded clears it');

-- A run that has not ended 10 minutes after it began: pg_cron starts no other run of its
-- job until it ends, so the job has stopped without an error.
create function pg_temp.began(p_job text, p_status text, p_pid integer, p_start timestamptz)
returns void language sql as $$
  insert into cron.job_run_details (jobid, runid, job_pid, database, username, command,
                                    status, start_time)
  select j.jobid, (select max(runid) from cron.job_run_details) + 1, p_pid,
         current_database(), current_user, j.command, p_status, p_start
  from cron.job j where j.jobname = p_job
$$;
select pg_temp.began('sync-write-back', 'running', 4242, now() - interval '11 minutes');
select is(sync.scheduler_problem(),
  format('pg_cron job sync-write-back has been running since %s (its runs take seconds, and pg_cron starts no other run of it until this one ends): its backend is pid 4242 in pg_stat_activity',
         sync.utc_text(now() - interval '11 minutes')),
  'a run not ended 10 minutes after it began is named, with its backend');
update cron.job_run_details set start_time = now() - interval '9 minutes'
where runid = (select max(runid) from cron.job_run_details);
select is(sync.scheduler_problem(), null, 'one that began less than 10 minutes ago is not');
-- Not started yet: it has no start_time, but was made before any later run started.
update cron.job_run_details set status = 'starting', start_time = null, job_pid = null
where runid = (select max(runid) from cron.job_run_details);
select pg_temp.began('sync-retention', 'succeeded', 1, now() - interval '11 minutes');
select is(sync.scheduler_problem(),
  format('pg_cron job sync-write-back has been starting since before %s (its runs take seconds, and pg_cron starts no other run of it until this one ends): it has no backend yet',
         sync.utc_text(now() - interval '11 minutes')),
  'a run not started while a later run of another job started 10 minutes ago is named');
select pg_temp.ran('sync-write-back', 'succeeded', '1 row', 4);
select is(sync.scheduler_problem(), null, 'a later run of the job that ended clears it');
-- Not started, and no run of any job started since (pg_cron starting nothing): a job due
-- every minute made it within a minute of its previous run's end (10:04:01).
select pg_temp.began('sync-write-back', 'starting', null, null);
select pg_temp.began('sync-stream-check', 'starting', null, null);
select is(sync.scheduler_problem(),
  'pg_cron job sync-write-back has been starting since before 2026-12-01T10:05:01Z (its runs take seconds, and pg_cron starts no other run of it until this one ends): it has no backend yet',
  'a run not started while no later run started is named by its job''s previous end, for a job due every minute, not an hourly one');
select pg_temp.ran('sync-write-back', 'succeeded', '1 row', 5);
select pg_temp.ran('sync-stream-check', 'succeeded', '1 row', 6);
select is(sync.scheduler_problem(), null, 'later runs of the jobs that ended clear it');
select pg_temp.ran('sync-validator', 'failed', repeat('x', 400), 3);
select is(length(sync.scheduler_problem()),
  length('pg_cron job sync-validator failed at 2026-12-01T10:03:00Z: ') + 300,
  'a long message is cut at 300 characters');
select cron.alter_job((select jobid from cron.job where jobname = 'sync-stream-check'), active => false);
select ok(sync.scheduler_problem() ~ 'pg_cron job sync-stream-check is paused \(cron.job.active is false\): select cron.alter_job\([0-9]+, active => true\) runs it again; pg_cron job sync-validator failed',
  'a paused job is named with how to run it again, each problem in turn');

-- An edit due for 10 minutes that no run claimed: its attempts count only claims, so with
-- the write-back function never answering it would never reach its give-up.
delete from sync.write_backs;
insert into sync.write_backs (target_table, row_key, edited_by, edited_role, columns,
                              before_values, after_values, next_attempt_at, lease_expires_at)
values
  ('toledo_dashboard', '{"pk": "o1", "sk": "a"}', 'admin@example.com', 'authenticated', '{metrics}',
   '{}', '{}', now() - interval '11 minutes', null),
  -- behind an older pending edit of its row: that one is the overdue one
  ('toledo_dashboard', '{"pk": "o1", "sk": "a"}', 'admin@example.com', 'authenticated', '{metrics}',
   '{}', '{}', now() - interval '11 minutes', null),
  -- claimed, its lease live
  ('toledo_dashboard', '{"pk": "o2", "sk": "a"}', 'admin@example.com', 'authenticated', '{metrics}',
   '{}', '{}', now() - interval '20 minutes', now() + interval '1 minute'),
  -- due for less than 10 minutes
  ('toledo_dashboard', '{"pk": "o3", "sk": "a"}', 'admin@example.com', 'authenticated', '{metrics}',
   '{}', '{}', now() - interval '9 minutes', null),
  -- a lease that ran out long ago: its run died, nothing claimed it since
  ('toledo_dashboard', '{"pk": "o4", "sk": "a"}', 'admin@example.com', 'authenticated', '{metrics}',
   '{}', '{}', now() - interval '30 minutes', now() - interval '28 minutes');
update sync.write_backs set created_at = now() - interval '40 minutes',
                             updated_at = now() - interval '40 minutes';
select results_eq(
  $$select write_backs_pending, write_backs_overdue from sync.status where target_table = 'toledo_dashboard'$$,
  $$values (5::bigint, 2::bigint)$$,
  'with no run seen for 10 minutes, edits due 10 minutes unclaimed are overdue: not one waiting behind its row''s older edit, claimed, or due since less');
update sync.write_backs set updated_at = now() - interval '1 minute'
where row_key = '{"pk": "o2", "sk": "a"}';
select is((select write_backs_overdue from sync.status where target_table = 'toledo_dashboard'), 0::bigint,
  'while a run touched an edit in those 10 minutes (a claim), none is: a backlog being worked');
update sync.write_backs set updated_at = now() - interval '40 minutes';
select is((select write_backs_overdue from sync.status where target_table = 'firespring_actions'), 0::bigint,
  'another table has none');

-- The functions' answers: each call sync.call_edge_function makes is noted, and each
-- function's latest calls say whether it fails. (Function names of this test's own: the
-- stack's jobs call the real ones meanwhile.)
-- This test's functions' part of it: the stack's own calls may fail meanwhile.
create function pg_temp.fn_problem() returns text language sql as $$
  select nullif(array_to_string(array(
    select p from unnest(string_to_array(sync.function_problem(), '; ')) p
    where p like 'pgtap-%'), '; '), '')
$$;
create function pg_temp.answered(p_fn text, p_request bigint, p_ago interval, p_status integer,
  p_content text default null, p_error text default null) returns void language sql as $$
  insert into sync.function_calls (function_name, request_id, called_at)
  values (p_fn, p_request, now() - p_ago);
  insert into net._http_response (id, status_code, content, timed_out, error_msg, created)
  select p_request, p_status, p_content, false, p_error, now() - p_ago + interval '1 second'
  where p_status is not null or p_error is not null;
$$;
delete from sync.function_calls;
delete from vault.secrets where name in ('project_url', 'service_role_key');
select is(sync.call_edge_function('pgtap-fn', '{}'::jsonb, 1000), null,
  'with no project URL in Vault, no request is made');
select ok(pg_temp.fn_problem() ~ '^pgtap-fn was not called at [0-9T:-]+Z: Vault has no project_url or service_role_key secret',
  'and the function is named as not called, and why');
-- A project URL pg_net cannot take: pg_net would raise in the caller (an admin's edit),
-- so none is sent, and the function is named with what is wrong, never the value.
select vault.create_secret('ref.example.co', 'project_url');
select vault.create_secret('sb_secret_pgtap', 'service_role_key');
select is(sync.call_edge_function('pgtap-url', '{}'::jsonb, 1000), null,
  'a project URL without https:// makes no request, and fails nothing');
select ok(pg_temp.fn_problem() ~ 'pgtap-url was not called at [0-9T:-]+Z: Vault''s project_url secret is not an https:// URL with a host \(see README',
  'and the function is named, with what is wrong and not the value');
select throws_ok($$select net.http_post('ref.example.co/functions/v1/x')$$, 'XX000',
  'invalid URL "ref.example.co/functions/v1/x": Bad scheme',
  'as pg_net itself refuses such a URL, in the caller''s transaction');
delete from vault.secrets where name = 'project_url';
select vault.create_secret(E'https://ref.example.co/\n', 'project_url');
create temp table pgtap_url_call as select sync.call_edge_function('pgtap-url', '{}'::jsonb, 1000) as id;
select is((select q.url from net.http_request_queue q join pgtap_url_call c using (id)),
  'https://ref.example.co/functions/v1/pgtap-url',
  'a project URL pasted with its line end is taken without it');
delete from sync.function_calls where function_name = 'pgtap-url';
select vault.create_secret('us east 1', 'functions_region');
select is(sync.call_edge_function('pgtap-url', '{}'::jsonb, 1000), null,
  'a region name with spaces makes no request');
select ok(pg_temp.fn_problem() ~ 'pgtap-url was not called at [0-9T:-]+Z: Vault''s functions_region secret is not a region name',
  'and the function is named, with the secret at fault');
delete from sync.function_calls where function_name = 'pgtap-url';
delete from vault.secrets where name in ('project_url', 'service_role_key', 'functions_region');
select vault.create_secret('https://ref.example.co/', 'project_url');
select vault.create_secret('sb_secret_pgtap', 'service_role_key');
-- Calls older than pg_net keeps its responses are pruned by the next call, no others.
insert into sync.function_calls (function_name, request_id, called_at) values
  ('pgtap-old', -50, now() - sync.pg_net_ttl() - interval '1 minute'),
  ('pgtap-young', -51, now() - sync.pg_net_ttl() + interval '1 minute');
create temp table pgtap_call as select sync.call_edge_function('pgtap-other', '{}'::jsonb, 1000) as id;
select is((select count(*)::int from sync.function_calls where request_id = -50), 0,
  'a call older than pg_net.ttl is pruned by the next call');
select is((select count(*)::int from sync.function_calls where request_id = -51), 1,
  'a younger one is kept');
delete from sync.function_calls where request_id = -51;
select is((select request_id from sync.function_calls order by id desc limit 1), (select id from pgtap_call),
  'a request made is noted with pg_net''s id');
select is(pg_temp.fn_problem(), null,
  'a request made since, of any function: Vault holds the secrets, and the first is no longer named');
insert into net._http_response (id, status_code, content, timed_out)
values ((select id from pgtap_call), 401, '{"error": "the service key is not this project''s"}', false);
select ok(pg_temp.fn_problem() ~ '^pgtap-other answered 401 to its call at [0-9T:-]+Z: \{"error": "the service key is not this project''s"\}$',
  'a 4xx names the function, the status and its body, at once');
select is((select count(distinct function_problem)::int from sync.status where function_problem like '%pgtap-other answered 401%'), 1,
  'sync.status shows it on every row alike');
select pg_temp.answered('pgtap-third', -10, interval '0 seconds', 202, '{}');
select ok(pg_temp.fn_problem() ~ '^pgtap-other answered 401',
  'a 401 stays until that function answers otherwise: another''s success does not clear it (a function deployed to check a JWT refuses alone)');
delete from sync.function_calls;
select pg_temp.answered('pgtap-fn', -1, interval '3 minutes', 202, '{}');
select pg_temp.answered('pgtap-fn', -2, interval '2 minutes', 546, '{"code":"WORKER_LIMIT"}');
select is(pg_temp.fn_problem(), null, 'a 5xx after a success is a hiccup, not named');
select pg_temp.answered('pgtap-fn', -3, interval '1 minute', 503, 'Service Unavailable');
select is(pg_temp.fn_problem(),
  format('pgtap-fn answered 503 to its call at %s: Service Unavailable', sync.utc_text(now() - interval '1 minute')),
  'two in a row are named, the last');
select pg_temp.answered('pgtap-fn', -4, interval '50 seconds', null, null, 'Timeout of 1000 ms reached');
select pg_temp.answered('pgtap-fn', -5, interval '40 seconds', null, null, 'Timeout was reached');
select ok(pg_temp.fn_problem() ~ '^pgtap-fn answered 503',
  'a call pg_net stopped waiting for gives no verdict (the stand-in''s words and curl''s): the one before decides');
select pg_temp.answered('pgtap-fn', -6, interval '30 seconds', null, null, 'Couldn''t connect to server');
select ok(pg_temp.fn_problem() ~ '^pgtap-fn: its calls failed, the last at [0-9T:-]+Z: Couldn''t connect to server$',
  'a failed connection after a failure is named with pg_net''s error');
select pg_temp.answered('pgtap-fn', -7, interval '20 seconds', 202, '{}');
select is(pg_temp.fn_problem(), null, 'a later answer that succeeded clears it');
insert into sync.function_calls (function_name, request_id, called_at)
values ('pgtap-fn', -8, now() - interval '4 minutes');
select is(pg_temp.fn_problem(), null, 'a call not answered for less than 5 minutes gives no verdict');
update sync.function_calls set called_at = now() - interval '6 minutes' where request_id = -8;
update sync.function_calls set called_at = now() - interval '10 minutes' where request_id <> -8;
select ok(pg_temp.fn_problem() ~ '^pgtap-fn: its call at [0-9T:-]+Z has no answer after 5 minutes \(is pg_net''s worker running\?',
  'a call pg_net has not answered in 5 minutes is named, with where to look');
-- A function called every 10 s whose calls pg_net no longer sends: its latest 20 calls are
-- all younger than 5 minutes, and the older ones still say so.
insert into sync.function_calls (function_name, request_id, called_at)
select 'pgtap-fn', -100 - g, now() - make_interval(secs => 10 * g) from generate_series(0, 59) g;
select ok(pg_temp.fn_problem() ~ '^pgtap-fn: its call at [0-9T:-]+Z has no answer after 5 minutes',
  'a function called every 10 s whose calls go unanswered is named too');
delete from sync.function_calls where request_id <= -100;
-- An answer stamped a little before its call (pg_net stamps a batch's answers with its
-- start) is its answer still.
update net._http_response set created = now() - interval '10 minutes 5 seconds' where id = -7;
update sync.function_calls set called_at = now() - interval '10 minutes' where request_id = -7;
update sync.function_calls set called_at = now() - interval '7 hours' where request_id = -8;
select is(pg_temp.fn_problem(), null,
  'an answer stamped a few seconds before its call counts, and a call older than pg_net keeps answers gives no verdict');
-- Nor one at the edge of what pg_net keeps: its answer, stamped before the call, may be
-- gone already while the call is not (pg_net prunes by the answer's stamp).
delete from sync.function_calls where request_id <> -7;
update sync.function_calls set called_at = now() - sync.pg_net_ttl() + interval '2 minutes'
where request_id = -7;
delete from net._http_response where id = -7;
select is(pg_temp.fn_problem(), null,
  'a call within 5 minutes of pg_net''s ttl gives no verdict: its answer may be pruned before it');
delete from sync.function_calls;

-- After the cutover the jobs that read DynamoDB are paused on purpose (README, "The
-- cutover"), and the stream is no longer read: neither is a problem then. A failure is.
delete from sync.stream_checks where target_table = 'firespring_segments';
delete from sync.table_state where target_table = 'firespring_segments';
delete from sync.backfill_jobs where source_table = 'firespring-backdoor-segments-dev';
insert into sync.backfill_jobs (source_table, total_segments, requested_at)
values ('firespring-backdoor-segments-dev', 1, now() - interval '4 hours');
select is((select stream_check_overdue from sync.status where target_table = 'firespring_segments'),
  true, 'before the cutover, a table not checked 4 hours after its backfill is overdue');
update sync.settings set value = 'cutover' where key = 'write_back';
select is((select stream_check_overdue from sync.status where target_table = 'firespring_segments'),
  false, 'after it, not: the stream is no longer read');
select is(sync.scheduler_problem(),
  'pg_cron job sync-validator failed at 2026-12-01T10:03:00Z: ' || repeat('x', 300),
  'nor is a job the cutover pauses: only the failure of a job still running is named');
select cron.alter_job((select jobid from cron.job where jobname = 'sync-validator'), active => false);
select is(sync.scheduler_problem(), null,
  'a job the cutover pauses is not named once paused, whatever its last run (its advice would undo the cutover)');
select cron.alter_job((select jobid from cron.job where jobname = 'sync-retention'), active => false);
select ok(sync.scheduler_problem() ~ '^pg_cron job sync-retention is paused',
  'a job the cutover does not pause is named, cut over or not');
select is(
  (select array_agg(jobname::text order by jobname) from cron.job where jobname = any (sync.cutover_paused_jobs())),
  array['sync-collapsed-rereads', 'sync-import-worker', 'sync-stream-check', 'sync-validate-all', 'sync-validator'],
  'the jobs the cutover pauses are scheduled jobs of the project');

-- A job that is not scheduled any more never runs, and leaves no run to read.
select set_eq($$select jobname::text from cron.job where jobname like 'sync-%'$$,
  $$select unnest(sync.scheduled_jobs())$$,
  'sync.scheduled_jobs() names the jobs the migrations schedule');
select ok(sync.cutover_paused_jobs() <@ sync.scheduled_jobs(), 'the cutover pauses some of them');
select cron.unschedule('sync-retention-superseded');
select ok(sync.scheduler_problem() ~ 'pg_cron job sync-retention-superseded is not scheduled: schedule it again as the migration that adds it does \(grep supabase/migrations for ''sync-retention-superseded''\)',
  'a job no longer scheduled is named, with where to find how it was');

select * from finish();
rollback;
