-- A backfill's segment whose attempts keep ending without a page written
-- (supabase/migrations/20261128002300_export_backfills.sql, sync.claim_segment,
-- sync.note_failed_attempt and sync.segment_gives_up): each is counted, with its cause
-- and when the first ended; a checkpoint clears them; at 5 in a row, the first more than
-- 10 minutes ago, the job fails naming the table and the last cause, instead of being
-- claimed for ever (and holding every tombstone since its start). An outage shorter than
-- that is waited out. A claim says whether it took a lapsed lease over (taken_over).
set client_min_messages = warning;
begin;
select plan(19);

delete from sync.table_state;
select tests.forget_backfill_jobs();

select is(
  array[sync.segment_gives_up(4, now() - interval '1 hour'),
        sync.segment_gives_up(5, now() - interval '9 minutes'),
        sync.segment_gives_up(5, now() - interval '11 minutes')],
  array[false, false, true],
  'a segment gives up at 5 failed attempts in a row, the first more than 10 minutes ago');

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
                pg_temp.fail_once('w4'), pg_temp.fail_once('w5'), pg_temp.fail_once('w6')],
          array[false, false, false, false, false, false],
          'six failed attempts within minutes give the segment back each time: an outage is waited out');
select results_eq(
  $$select status, takeovers, error like '%ValidationException%', failing_since is not null
    from sync.backfill_segments where job_id = (select id from job)$$,
  $$values ('pending'::text, 6, true, true)$$,
  'each is counted, its cause kept on the segment, and when the first ended'
);
select sync.claim_segment('w7');
update sync.backfill_segments set failing_since = now() - interval '11 minutes'
where job_id = (select id from job);
select is(
  sync.note_failed_attempt((select id from job), 0, 'w7',
    'backfill job segment 0/1 of firespring-backdoor-segments-dev: ValidationException: The provided starting key is invalid'),
  true, 'once they have gone on for more than 10 minutes, the next fails the job');
select matches(
  (select error from sync.backfill_jobs where id = (select id from job)),
  '^segment 0: 7 attempts in a row since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ended without a page written; the last: backfill job segment 0/1 of firespring-backdoor-segments-dev: ValidationException: The provided starting key is invalid$',
  'the job fails naming the segment, the table, since when and the last cause'
);
select is((select status from sync.backfill_jobs where id = (select id from job)), 'failed',
  'the job is failed');
select is_empty($$select * from sync.claim_segment('w8')$$, 'nothing of it is claimed any more');

-- A segment whose workers die mid-page: every claim after its lease ran out counts.
select tests.forget_backfill_jobs();
select sync.start_backfill('firespring-backdoor-searches-dev', 1, false);
create temporary table job2 on commit drop as
  select id from sync.backfill_jobs where source_table = 'firespring-backdoor-searches-dev';
create function pg_temp.lapse() returns void language sql as $$
  update sync.backfill_segments set lease_expires_at = now() - interval '1 second'
  where job_id = (select id from job2)
$$;
select is((select taken_over from sync.claim_segment('k0')), false,
  'a pending segment''s claim is no takeover');
select sync.note_failed_attempt((select id from job2), 0, 'k0', 'an old throttle');
select pg_temp.lapse();
select is((select taken_over from sync.claim_segment('k1')), true,
  'a claim of a lapsed lease says it took the segment over (its worker logs it)');
select pg_temp.lapse();
select sync.claim_segment('k2');
select results_eq(
  $$select takeovers, error from sync.backfill_segments where job_id = (select id from job2)$$,
  $$values (3, 'its lease (60 s) ran out: its worker was stopped or killed mid-page'::text)$$,
  'each claim of a lapsed lease counts, naming that the lease ran out'
);

-- A page written clears the count, the cause and when.
select sync.checkpoint_segment((select id from job2), 0, 'k2', '{"source_id": {"S": "a"}}', 1, 1, false);
select results_eq(
  $$select takeovers, error, failing_since from sync.backfill_segments
    where job_id = (select id from job2)$$,
  $$values (0, null::text, null::timestamptz)$$,
  'a checkpoint clears the count, the cause and since when'
);

select sync.note_failed_attempt((select id from job2), 0, 'k2', 'an unrelated throttle, long ago');
select sync.release_segment((select id from job2), 0, 'k2');
select is((select taken_over from sync.claim_segment('k3')), false,
  'a segment given back (for a budget) is claimed as routine, no takeover');
select pg_temp.lapse();
select sync.claim_segment('k4');
select pg_temp.lapse();
select sync.claim_segment('k5');
select pg_temp.lapse();
select sync.claim_segment('k6');
update sync.backfill_segments set failing_since = now() - interval '11 minutes'
where job_id = (select id from job2);
select isnt_empty($$select 1 from sync.backfill_segments where job_id = (select id from job2)
                    and status = 'running' and lease_owner = 'k6'$$,
  'a fourth attempt in a row is still a claim');
select pg_temp.lapse();
select is_empty($$select * from sync.claim_segment('k7')$$, 'the fifth, past 10 minutes, is not: its job fails');
select matches(
  (select error from sync.backfill_jobs where id = (select id from job2)),
  '^segment 0: firespring-backdoor-searches-dev of us-east-1: 5 attempts in a row since .* UTC ended without a page written; the last: its lease \(60 s\) ran out: its worker was stopped or killed mid-page$',
  'naming the table, its region, and that the lease ran out, not an older cause'
);
select is((select status from sync.backfill_jobs where id = (select id from job2)), 'failed',
  'the job is failed');

-- A validation run's Scan is counted but never failed here: its reaper ends it.
delete from public.sync_checksums;
create temporary table vrun on commit drop as
  select sync.start_validation('firespring_segments', false, 1, 1000) as id;
select sync.claim_segment('v1', (select id from vrun));
update sync.backfill_segments set takeovers = 9, failing_since = now() - interval '1 hour'
where job_id = (select j.id from sync.backfill_jobs j where j.checksum_run_id = (select id from vrun));
select is(
  sync.note_failed_attempt((select j.id from sync.backfill_jobs j where j.checksum_run_id = (select id from vrun)),
                           0, 'v1', 'a Scan that keeps failing'),
  false, 'a validation run''s failed attempt past the limit fails nothing');
select is(
  (select j.status from sync.backfill_jobs j where j.checksum_run_id = (select id from vrun)),
  'running', 'its job goes on, for the reaper to end');
select is(sync.note_failed_attempt(-1, 0, 'nobody', 'x'), false,
  'an attempt of no held segment changes nothing');

select * from finish();
rollback;
