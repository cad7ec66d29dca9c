-- A validation run's step whose requests keep stopping fails the run
-- (20261128003400_validation_step_takeovers.sql): a claim after a lapsed lease counts a
-- takeover, progress since the last one starts a new series, a claim after a hand-on or
-- in the Scan counts none, and the fifth in a row ends the run failed, naming its table
-- and step. A look's checkpoint starts empty.
set client_min_messages = warning;
begin;
select plan(15);

delete from public.sync_checksums;
select tests.forget_backfill_jobs();

create temporary table run as select sync.start_validation('firespring_actions', false, 2, 10) as id;
-- Every statement of this transaction sees the same now(): a lease lapses, and progress
-- comes after a takeover, by moving their times.
create function pg_temp.lapse() returns void language sql as $$
  update public.sync_checksums set lease_expires_at = now() - interval '1 second'
  where id = (select id from run)
$$;

select is(sync.claim_validation((select id from run), 'scan-1'), 'scan', 'the run starts in its Scan');
update public.sync_checksums set lease_owner = 'someone', lease_expires_at = now() - interval '1 second';
select is((select takeovers from public.sync_checksums), 0, 'the Scan''s segments have leases of their own: no takeover');

update public.sync_checksums set phase = 'recheck', lease_owner = null, lease_expires_at = null;
select results_eq(
  $$select recheck_keys, recheck_read from public.sync_checksums$$,
  $$values (null::jsonb, 0)$$,
  'no look under way'
);
select is(sync.claim_validation((select id from run), 'a'), 'recheck', 'a request takes the step');
select is((select takeovers from public.sync_checksums), 0, 'a run nobody held: no takeover');

select pg_temp.lapse();
select is(sync.claim_validation((select id from run), 'b'), 'recheck', 'a request takes over a lapsed lease');
select is((select takeovers from public.sync_checksums), 1, 'and counts it');

select pg_temp.lapse();
select sync.claim_validation((select id from run), 'c');
select is((select takeovers from public.sync_checksums), 2, 'a second in a row, with no progress between');

-- Progress after the last takeover: the next one starts a new series.
update public.sync_checksums
set taken_over_at = now() - interval '2 seconds', progress_at = now() - interval '1 second';
select pg_temp.lapse();
select sync.claim_validation((select id from run), 'd');
select is((select takeovers from public.sync_checksums), 1, 'progress between: a new series');

-- A renewal of the lease is no progress: the series goes on after it.
select throws_ok($$select sync.renew_validation((select id from run), 'not-d')$$, 'SY001', null,
  'only the holder renews the lease');
select lives_ok($$select sync.renew_validation((select id from run), 'd')$$, 'the holder does');
select ok((select progress_at < taken_over_at from public.sync_checksums),
  'without moving the run''s progress');

-- A hand-on gives the step back: the next claim is no takeover.
select sync.release_validation((select id from run), 'd');
select sync.claim_validation((select id from run), 'e');
select is((select takeovers from public.sync_checksums), 1, 'a claim after a hand-on is none');

-- Four more without progress: the fifth fails the run.
select pg_temp.lapse();
select sync.claim_validation((select id from run), 'f');
select pg_temp.lapse();
select sync.claim_validation((select id from run), 'g');
select pg_temp.lapse();
select sync.claim_validation((select id from run), 'h');
select pg_temp.lapse();
select is(sync.claim_validation((select id from run), 'i'), null, 'the fifth takeover in a row gets no step');
select results_eq(
  $$select status, lease_owner,
           error ~ ('^validation run \d+ of firespring_actions: its recheck step was taken over 5 times in a row with no progress between')
    from public.sync_checksums$$,
  $$values ('failed'::text, null::text, true)$$,
  'it ends the run failed, naming its table and step'
);

select * from finish();
rollback;
