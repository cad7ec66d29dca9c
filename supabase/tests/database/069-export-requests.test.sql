-- What an export backfill keeps between its runs (supabase/migrations/20261128003800_export_requests.sql):
-- the exports it asked for, taken up by a run stopped while it waited; one unfinished
-- export job per table; a file's lease kept while its loader reads back to its checkpoint.
set client_min_messages = warning;
begin;
select plan(12);

select tests.forget_backfill_jobs();
delete from sync.export_requests;

create function pg_temp.arn(p_id text) returns text language sql as $$
  select 'arn:aws:dynamodb:us-east-1:123456789012:table/firespring-backdoor-segments-dev/export/' || p_id
$$;

-- Remembered, and taken up: the newest of the table, bucket and prefix.
select sync.note_export_request('firespring-backdoor-segments-dev', 'exports', 'p', pg_temp.arn('older'));
update sync.export_requests set requested_at = now() - interval '2 hours';
select sync.note_export_request('firespring-backdoor-segments-dev', 'exports', 'p', pg_temp.arn('newer'));
select is(sync.export_request_to_resume('firespring-backdoor-segments-dev', 'exports', 'p'),
  pg_temp.arn('newer'), 'a run takes up the newest export asked for');
select is(sync.export_request_to_resume('firespring-backdoor-segments-dev', 'exports', 'other'),
  null, 'another prefix has its own exports');
select is(sync.export_request_to_resume('firespring-backdoor-actions-dev', 'exports', 'p'),
  null, 'another table has its own exports');
select lives_ok(
  $$select sync.note_export_request('firespring-backdoor-segments-dev', 'exports', 'p', pg_temp.arn('newer'))$$,
  'remembering an export twice is one request');

-- An export a job has loaded (or begun to) is not taken up again.
create temporary table job as select sync.start_export_backfill(
  'firespring-backdoor-segments-dev', pg_temp.arn('newer'), now() - interval '1 minute', 'exports',
  '[{"key": "p/AWSDynamoDB/x/data/a.json.gz", "itemCount": 2, "md5": "m1"}]') as id;
select is(sync.export_request_to_resume('firespring-backdoor-segments-dev', 'exports', 'p'),
  pg_temp.arn('older'), 'an export a job has taken is not taken up again');

-- One unfinished export job per table.
select throws_ok(
  $$select sync.start_export_backfill('firespring-backdoor-segments-dev', pg_temp.arn('older'),
      now() - interval '2 hours', 'exports', '[{"key": "k", "itemCount": 1, "md5": "m"}]')$$,
  '23505', null, 'a second unfinished export job of a table is refused');

-- The lease kept without moving the checkpoint; refused once it is another's.
select segment from sync.claim_export_file((select id from job), 'w1');
update sync.backfill_segments set lease_expires_at = now() + interval '1 second',
  exclusive_start_key = '{"line": 7}' where job_id = (select id from job);
select lives_ok($$select sync.renew_segment((select id from job), 0, 'w1')$$,
  'the holder renews its lease');
select results_eq(
  $$select lease_expires_at > now() + interval '50 seconds', exclusive_start_key, status
    from sync.backfill_segments where job_id = (select id from job)$$,
  $$values (true, '{"line": 7}'::jsonb, 'running'::text)$$,
  'the lease runs a whole lease_seconds again, the checkpoint where it was');
select throws_ok($$select sync.renew_segment((select id from job), 0, 'w2')$$,
  'SY001', null, 'a worker that does not hold the lease is refused (a lost lease)');
update sync.backfill_jobs set status = 'cancelled' where id = (select id from job);
select throws_like($$select sync.renew_segment((select id from job), 0, 'w1')$$,
  '%no longer holds the lease; another worker took over, or the job is over%',
  'a job that is over renews nothing');

-- Too old to be loaded: neither taken up nor kept.
update sync.export_requests set requested_at = now() - interval '25 hours'
where export_arn = pg_temp.arn('older');
select is(sync.export_request_to_resume('firespring-backdoor-segments-dev', 'exports', 'p'),
  null, 'an export asked for more than half the retention ago is not taken up');
select sync.note_export_request('firespring-backdoor-segments-dev', 'exports', 'p', pg_temp.arn('newest'));
select is((select count(*)::int from sync.export_requests where export_arn = pg_temp.arn('older')), 0,
  'remembering an export forgets those too old to take up');

select * from finish();
rollback;
