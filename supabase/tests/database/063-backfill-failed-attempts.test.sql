-- A backfill's segment whose attempts keep ending without a page written
-- (supabase/migrations/20261128002300_export_backfills.sql, sync.claim_segment and
-- sync.note_failed_attempt): each is counted, a checkpoint sets the count back, and at
-- sync.max_failed_attempts() in a row the job fails naming the table and the last cause,
-- instead of being claimed for ever (and holding every tombstone since its start).
set client_min_messages = warning;
begin;
select plan(12);

delete from sync.table_state;
delete from sync.backfill_jobs;

select is(sync.max_failed_attempts(), 5, 'five attempts in a row');

-- A job whose Scan fails every time (a start key DynamoDB refuses, no access).
select sync.start_backfill('firespring-backdoor-segments-dev', 1, false);
create temporary table job on commit drop as
  select id from sync.backfill_jobs where source_table = 'firespring-backdoor-segments-dev';

create function pg_temp.fail_once(worker text) returns boolean language plpgsql as $$
declare
  failed boolean;
begin
  perform sync.claim_segment(worker);
  failed := sync.note_failed_attempt((select id from job), 0, worker,
    'backfill job segment 0/1 of firespring-backdoor-segments-dev: ValidationException: The provided starting key is invalid');
  if not failed then
    perform sync.release_segment((select id from job), 0, worker);
  end if;
  return failed;
end
$$;

select is(array[pg_temp.fail_once('w1'), pg_temp.fail_once('w2'), pg_temp.fail_once('w3'),
                pg_temp.fail_once('w4')],
          array[false, false, false, false], 'four failed attempts give the segment back');
select results_eq(
  $$select status, takeovers, error like '%ValidationException%' from sync.backfill_segments
    where job_id = (select id from job)$$,
  $$values ('pending'::text, 4, true)$$,
  'each is counted, its cause kept on the segment'
);
select is(pg_temp.fail_once('w5'), true, 'the fifth fails the job');
select results_eq(
  $$select status, error from sync.backfill_jobs where id = (select id from job)$$,
  $$values ('failed'::text, 'segment 0: 5 attempts in a row ended without a page written; the last: backfill job segment 0/1 of firespring-backdoor-segments-dev: ValidationException: The provided starting key is invalid'::text)$$,
  'the job fails naming the segment, the table and the last cause'
);
select is_empty($$select * from sync.claim_segment('w6')$$, 'nothing of it is claimed any more');

-- A segment whose workers die mid-page: every claim after its lease ran out counts.
delete from sync.backfill_jobs;
select sync.start_backfill('firespring-backdoor-searches-dev', 1, false);
create temporary table job2 on commit drop as
  select id from sync.backfill_jobs where source_table = 'firespring-backdoor-searches-dev';
create function pg_temp.lapse() returns void language sql as $$
  update sync.backfill_segments set lease_expires_at = now() - interval '1 second'
  where job_id = (select id from job2)
$$;
select sync.claim_segment('k0');
select pg_temp.lapse();
select sync.claim_segment('k1');
select pg_temp.lapse();
select sync.claim_segment('k2');
select is((select takeovers from sync.backfill_segments where job_id = (select id from job2)),
  2, 'each claim of a lapsed lease counts');

-- A page written sets the count back.
select sync.checkpoint_segment((select id from job2), 0, 'k2', '{"source_id": {"S": "a"}}', 1, 1, false);
select is((select takeovers from sync.backfill_segments where job_id = (select id from job2)),
  0, 'a checkpoint sets the count back to 0');

select pg_temp.lapse();
select sync.claim_segment('k3');
select pg_temp.lapse();
select sync.claim_segment('k4');
select pg_temp.lapse();
select sync.claim_segment('k5');
select pg_temp.lapse();
select sync.claim_segment('k6');
select isnt_empty($$select 1 from sync.backfill_segments where job_id = (select id from job2)
                    and status = 'running' and lease_owner = 'k6'$$,
  'a fourth lapsed lease in a row is still a claim');
select pg_temp.lapse();
select is_empty($$select * from sync.claim_segment('k7')$$, 'the fifth is not: its job fails');
select matches(
  (select error from sync.backfill_jobs where id = (select id from job2)),
  '^segment 0: firespring-backdoor-searches-dev of us-east-1: 5 attempts in a row ended without a page written; the last: its lease \(\d+ s\) ran out: its worker was stopped or killed mid-page$',
  'naming the table, its region, and that the lease ran out'
);
select is((select status from sync.backfill_jobs where id = (select id from job2)), 'failed',
  'the job is failed');

select * from finish();
rollback;
