-- A backfill's pages against their job's state and their table's read budget
-- (supabase/migrations/20261128001800_backfill_turns.sql): a page of a job that is no
-- longer running is refused (SY002) and writes nothing; claims are shared between jobs;
-- the job's read ledger books each read's turn and settles what it cost.
set client_min_messages = warning;
begin;
select plan(35);

delete from sync.table_state;
select tests.forget_backfill_jobs();

-- Two jobs of two tables, queued without waking the worker.
do $$
begin
  perform sync.start_backfill('firespring-backdoor-segments-dev', 3, false);
  perform sync.start_backfill('firespring-backdoor-searches-dev', 3, false);
end
$$;
create temporary table job on commit drop as
  select (select id from sync.backfill_jobs where source_table = 'firespring-backdoor-segments-dev') as segments,
         (select id from sync.backfill_jobs where source_table = 'firespring-backdoor-searches-dev') as searches;

-- Claims: jobs alike (no page read yet) take turns, fewest segments in flight first.
select results_eq(
  $$select source_table, segment from sync.claim_segment('w1')$$,
  $$values ('firespring-backdoor-segments-dev'::text, 0)$$,
  'the first claim takes the oldest job''s first segment'
);
select results_eq(
  $$select source_table, segment from sync.claim_segment('w2')$$,
  $$values ('firespring-backdoor-searches-dev'::text, 0)$$,
  'the second claim takes the job with no segment in flight, not the first job''s next one'
);
-- The searches' pages cost 200 read units, the segments' 5: the searches have the most
-- reads left, so their segments come first...
insert into sync.backfill_read_ledger (job_id, next_at, units, rate)
values ((select segments from job), now() - interval '1 minute', 5, 250),
       ((select searches from job), now() - interval '1 minute', 200, 250);
select results_eq(
  $$select source_table, segment from sync.claim_segment('w3')$$,
  $$values ('firespring-backdoor-searches-dev'::text, 1)$$,
  'then the job with the most reads left, though it has more segments in flight'
);
-- ... until their turns are booked two pages ahead: then the other job's.
update sync.backfill_read_ledger set next_at = clock_timestamp() + interval '5 seconds'
where job_id = (select searches from job);
select results_eq(
  $$select source_table, segment from sync.claim_segment('w4')$$,
  $$values ('firespring-backdoor-segments-dev'::text, 1)$$,
  'a job booked two pages ahead (2 × 200 ÷ 250 s) has segments enough in flight: the other job''s'
);
delete from sync.backfill_read_ledger;

-- A page of a running job is written.
select lives_ok(
  $$select sync.checkpoint_segment((select segments from job), 0, 'w1',
      '{"segment_id": {"S": "seg-1"}}', 10, 10, false)$$,
  'a page of a running job checkpoints'
);

-- The job is cancelled (npm start's reset): its page in flight is refused.
update sync.backfill_jobs set status = 'cancelled', finished_at = now()
where id = (select segments from job);
select throws_like(
  $$select sync.checkpoint_segment((select segments from job), 0, 'w1',
      '{"segment_id": {"S": "seg-2"}}', 10, 10, false)$$,
  'backfill job % segment 0 of firespring-backdoor-segments-dev: the job is cancelled, so this page was not written; the segment stops',
  'a page of a cancelled job is refused, naming the table, the job and the segment'
);
select throws_ok(
  $$select sync.checkpoint_segment((select segments from job), 1, 'w4', null, 10, 10, true)$$,
  'SY002', null, 'with SQLSTATE SY002, the last page of a segment too'
);
select results_eq(
  $$select items_scanned, rows_written, pages, exclusive_start_key, status
    from sync.backfill_segments where job_id = (select segments from job) and segment = 0$$,
  $$values (10::bigint, 10::bigint, 1, '{"segment_id": {"S": "seg-1"}}'::jsonb, 'running'::text)$$,
  'the refused page left the segment''s checkpoint and counts as they were'
);
select is((select status from sync.backfill_jobs where id = (select segments from job)), 'cancelled',
  'the job stays cancelled (no sweep, no done)');
select is_empty(
  $$select from sync.claim_segment('w6') c where c.job_id = (select segments from job)$$,
  'no claim gives out a cancelled job''s segments'
);

-- A failed job (another segment's table went missing) refuses its other pages too.
do $$
begin
  perform sync.fail_segment((select searches from job), 0, 'w2', 'DynamoDB table gone');
end
$$;
update sync.backfill_segments set status = 'running', lease_owner = 'w5',
  lease_expires_at = now() + interval '1 minute'
where job_id = (select searches from job) and segment = 1;
select throws_like(
  $$select sync.checkpoint_segment((select searches from job), 1, 'w5', null, 1, 1, false)$$,
  '% of firespring-backdoor-searches-dev: the job is failed, so this page was not written%',
  'a page of a failed job is refused'
);
-- A lost lease is still SY001, checked first.
select throws_ok(
  $$select sync.checkpoint_segment((select searches from job), 1, 'not-w5', null, 1, 1, false)$$,
  'SY001', null, 'a worker without the lease gets SY001 as before'
);

-- The read ledger. A job's first turn starts now, booked at the most a page may cost.
create temporary table first_turn on commit drop as select clock_timestamp() as before;
select results_eq(
  $$select (t->>'wait_ms')::numeric, (t->>'units')::numeric
    from sync.backfill_read_turn((select segments from job), 250, null, 0, true) t$$,
  $$values (0::numeric, 257::numeric)$$,
  'the first turn: at once, booked at 257 read units'
);
select ok(
  (select next_at >= (select before from first_turn) + interval '0.028 seconds'
          and next_at <= clock_timestamp() + interval '0.028 seconds'
   from sync.backfill_read_ledger where job_id = (select segments from job)),
  'a job''s start is a pause: its first read catches up a second of the budget, its next turn a page''s time (257 ÷ 250 s) less that second away'
);
-- From here the ledger's next turn is put at a fixed instant in the future, so that what
-- is checked is the ledger's arithmetic, not how long the statements took.
update sync.backfill_read_ledger set next_at = '2100-01-01 00:00:00+00'
where job_id = (select segments from job);
create temporary table ledger_at on commit drop as
  select (select next_at from sync.backfill_read_ledger where job_id = (select segments from job)) as t0;
select ok(
  (select (t->>'wait_ms')::numeric > 0
   from sync.backfill_read_turn((select segments from job), 250, null, 0, true) t),
  'the next turn waits'
);
select is(
  (select next_at from sync.backfill_read_ledger where job_id = (select segments from job)),
  (select t0 from ledger_at) + interval '1.028 seconds',
  'for the first one''s units at the budget''s rate (257 ÷ 250 a second)'
);
-- The read cost 50, not 257: the turns move up by 207 ÷ 250 s, and are booked at 50.
select is(
  (select (t->>'units')::numeric
   from sync.backfill_read_turn((select segments from job), 250, 50, 257, true) t),
  50::numeric, 'a read''s real cost becomes the estimate'
);
select is(
  (select next_at from sync.backfill_read_ledger where job_id = (select segments from job)),
  (select t0 from ledger_at) + interval '0.4 seconds',
  'and corrects the ledger: its turns move up by (257 - 50) ÷ 250 s, the next booked at 50'
);
select is((select units from sync.backfill_read_ledger where job_id = (select segments from job)),
  50::numeric, 'the ledger keeps the last page''s cost');
-- A turn given back unused frees its place.
select is(
  (select sync.backfill_read_turn((select segments from job), 250, null, 50, false)),
  '{"wait_ms": null, "units": null}'::jsonb,
  'giving a turn back books nothing'
);
select is(
  (select next_at from sync.backfill_read_ledger where job_id = (select segments from job)),
  (select t0 from ledger_at) + interval '0.2 seconds',
  'the turn given back is the next one''s'
);
select is(
  (select (t->>'units')::numeric
   from sync.backfill_read_turn((select segments from job), 250, 0, 50, true) t),
  0.5, 'an empty page (no read units) makes the next turns cheap, not free'
);
-- A page read smaller than a whole one (the import-worker cut its Limit to its isolate's
-- room): what it cost is settled, the estimate stays a whole page's.
update sync.backfill_read_ledger set units = 257 where job_id = (select segments from job);
create temporary table before_small on commit drop as
  select next_at from sync.backfill_read_ledger where job_id = (select segments from job);
select is(
  (select (t->>'units')::numeric
   from sync.backfill_read_turn((select segments from job), 250, 25, 257, true, true, false) t),
  257::numeric, 'a page smaller than a whole one leaves a whole page''s cost the estimate'
);
select is(
  (select next_at from sync.backfill_read_ledger where job_id = (select segments from job)),
  (select next_at from before_small) + interval '0.1 seconds',
  'and settles what it cost: (25 - 257) ÷ 250 s, then the next turn''s 257 ÷ 250 s'
);
select throws_ok(
  $$select sync.backfill_read_turn((select segments from job), 0, null, 0, true)$$,
  '22023', null, 'a read budget that is not positive is refused'
);
select is(
  (select count(*)::int from sync.backfill_read_ledger where job_id = (select searches from job)),
  0, 'a job that booked no turn has no ledger row');

-- After a pause a job catches up on what it missed, up to backfill_catch_up_seconds (2
-- here) of its budget. turn_after_pause books a turn with the job's next read due 10 s ago (a
-- page costing 1 s of budget), and says when its next turn is due against the clock taken
-- just before and just after the statement: the turn's own moment lies between, so how
-- long the statement took does not count. Kept in last_turn too.
update sync.settings set value = '2' where key = 'backfill_catch_up_seconds';
create temporary table last_turn (
  wait_ms numeric, due_after_end interval, due_after_start interval
) on commit drop;
create function pg_temp.turn_after_pause(
  p_spent numeric, p_booked numeric, p_next boolean, p_catch_up boolean
) returns setof last_turn
language plpgsql as $fn$
declare
  started timestamptz;
  turn jsonb;
  ended timestamptz;
  due timestamptz;
begin
  update sync.backfill_read_ledger set next_at = clock_timestamp() - interval '10 seconds', units = 250
  where job_id = (select segments from job);
  started := clock_timestamp();
  turn := sync.backfill_read_turn((select segments from job), 250, p_spent, p_booked, p_next, p_catch_up);
  ended := clock_timestamp();
  select next_at into due from sync.backfill_read_ledger where job_id = (select segments from job);
  delete from last_turn;
  insert into last_turn values ((turn->>'wait_ms')::numeric, due - ended, due - started);
  return query select * from last_turn;
end
$fn$;
select ok(
  (select wait_ms = 0 and interval '-1 second' between due_after_end and due_after_start
   from pg_temp.turn_after_pause(null, 0, true, true)),
  'after a pause the next read starts at once, booked from 2 s back: one page (1 s) of ' ||
  'catch-up is still due, the pause''s other 8 s are lost'
);
-- With backfill_catch_up_seconds 0 the ledger paces strictly: a pause is lost.
update sync.settings set value = '0' where key = 'backfill_catch_up_seconds';
select ok(
  (select wait_ms = 0 and interval '1 second' between due_after_end and due_after_start
   from pg_temp.turn_after_pause(null, 0, true, true)),
  'paced strictly, the read after a pause starts at once, the next a page''s time from now'
);
-- A setting out of its bounds is refused as it is written (sync.check_bounded_setting);
-- one the ledger cannot use (its bounds dropped by hand) paces strictly (the side that
-- reads less), with a warning.
select throws_like($$update sync.settings set value = '11' where key = 'backfill_catch_up_seconds'$$,
  'sync.settings backfill_catch_up_seconds = ''11'' is not a whole number from 0 to 10%',
  'a catch-up setting out of range is refused as it is written');
update sync.settings set min_value = null, max_value = null, value = '11'
where key = 'backfill_catch_up_seconds';
set local client_min_messages = error;
select lives_ok(
  $$select pg_temp.turn_after_pause(null, 0, true, true)$$,
  'a catch-up setting the ledger cannot use stops no Scan'
);
set local client_min_messages = warning;
select ok(
  (select interval '1 second' between due_after_end and due_after_start from last_turn),
  'it paces strictly: nothing is caught up'
);
update sync.settings set value = '2', min_value = 0, max_value = 10
where key = 'backfill_catch_up_seconds';
-- A read that was retried (a throttle: the table at its capacity) catches nothing up,
-- and neither does a turn given back after giving up.
select ok(
  (select wait_ms = 0 and interval '1 second' between due_after_end and due_after_start
   from pg_temp.turn_after_pause(250, 250, true, false)),
  'after a retried read the next is booked from now, not from 2 s back'
);
select ok(
  (select wait_ms is null and interval '0' between due_after_end and due_after_start
   from pg_temp.turn_after_pause(null, 250, false, false)),
  'a turn given back after a throttle leaves the job nothing to catch up: its next turn is now'
);

-- A job whose reads are booked more than 20 s ahead is not claimed: another segment's
-- first read would wait longer than a request may sleep.
update sync.backfill_jobs set status = 'cancelled' where id = (select searches from job);
update sync.backfill_jobs set status = 'running', finished_at = null where id = (select segments from job);
update sync.backfill_segments set status = 'pending', lease_owner = null, lease_expires_at = null
where job_id = (select segments from job);
update sync.backfill_read_ledger set next_at = clock_timestamp() + interval '30 seconds'
where job_id = (select segments from job);
select is_empty($$select * from sync.claim_segment('w9')$$,
  'a job booked 30 s ahead gives out no segment');
update sync.backfill_read_ledger set next_at = clock_timestamp() + interval '10 seconds'
where job_id = (select segments from job);
select isnt_empty($$select * from sync.claim_segment('w9')$$,
  'booked 10 s ahead, it does');

select * from finish();
rollback;
