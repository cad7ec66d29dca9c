-- A backfill's end in chunks (20261128003600_sweep_in_chunks.sql): the sweep walks the
-- heap a few blocks a statement, each chunk removing what the Scan did not see and moving
-- the job's sweep_state; a collapsed table's observations first, then its rows; a row
-- written during the sweep stays, wherever it lands; the job is done, rows_removed summed
-- and the stale mark cleared only at the end; the workers see a sweep left to them.
set client_min_messages = warning;
begin;
select tests.set_aside_validation_runs();
select plan(23);

delete from sync.table_state;
select tests.forget_backfill_jobs();
delete from sync.tombstones;
delete from sync.observations;
delete from sync.dead_letters;
delete from public.firespring_segments;
delete from public.firespring_visitors;

-- 300 rows the stream wrote an hour ago, none of which the backfill will see: several
-- blocks of the table's heap.
select sync.merge_changes('firespring_segments', (
  select jsonb_agg(jsonb_build_object('op', 'upsert',
    'row', jsonb_build_object('segment_id', 'old-' || g, 'segment_name', repeat('x', 100),
                              'segment_criteria', '{}'::jsonb),
    'seq', g::text, 'changed_at', now() - interval '1 hour', 'source', 'stream'))
  from generate_series(1, 300) g));
select sync.mark_stale('firespring_segments', 'the stream lost records');
create temporary table job as
  select id from sync.backfill_jobs where source_table = 'firespring-backdoor-segments-dev';
update sync.backfill_jobs set started_at = now(), status = 'running' where id = (select id from job);
update sync.backfill_segments set status = 'done' where job_id = (select id from job);
update sync.backfill_jobs set sweep_state = sync.sweep_walk('rows', 'public.firespring_segments'), rows_removed = 0
where id = (select id from job);

select ok((select (sweep_state ->> 'end')::int > 3 from sync.backfill_jobs where id = (select id from job)),
  'the walk ends at the heap''s last block when it began');
select ok(sync.sweep_waiting(), 'a sweep left to the workers waits');
select ok(sync.backfill_work_pending(), 'and wakes them');
select is(sync.claim_sweep('w1'), (select id from job), 'a worker takes it');
select is(sync.claim_sweep('w2'), null, 'another finds none while it is held');
select ok(not sync.backfill_work_pending(), 'nor is a worker woken for it');
select throws_ok($$select sync.sweep_unseen_chunk((select id from job), 1, 'w2')$$, 'SY001', null,
  'a worker that does not hold it runs no chunk');

select is(sync.sweep_unseen_chunk((select id from job), 1, 'w1'), false, 'one block: the sweep goes on');
select results_eq(
  $$select status, (sweep_state ->> 'block')::int, rows_removed < 300,
           sweep_state ->> 'owner', (sweep_state ->> 'at')::timestamptz = now()
    from sync.backfill_jobs where id = (select id from job)$$,
  $$values ('running'::text, 1, true, 'w1'::text, true)$$,
  'the job still runs, its walk one block further (the block may hold other files'' dead rows only), its holder''s');
select sync.release_sweep((select id from job), 'w1');
select is(sync.claim_sweep('w2', interval '60 seconds'), null,
  'a run''s start takes no end whose last chunk ran within the minute');
update sync.backfill_jobs
set sweep_state = sweep_state || jsonb_build_object('at', now() - interval '2 minutes')
where id = (select id from job);
select is(sync.claim_sweep('w2', interval '60 seconds'), (select id from job),
  'one no chunk moved on for longer, it does');
select sync.release_sweep((select id from job), 'w2');
select is(sync.claim_sweep('w2'), (select id from job), 'given back, the next worker takes it');

-- A validation of the table waits while the sweep moves.
create temporary table run as select sync.start_validation('firespring_segments', false, 1, 10) as id;
select ok(sync.validation_waits_for_backfill((select id from run)), 'a validation waits for the sweep');
delete from public.sync_checksums where id = (select id from run);

-- A chunk that keeps failing: the fifth in a row fails the job, naming the cause.
create temporary table failing as
  select sync.start_backfill('firespring-backdoor-searches-dev', 1, false) as id;
update sync.backfill_jobs set status = 'running',
  sweep_state = sync.sweep_walk('rows', 'public.firespring_searches')
where id = (select id from failing);
create temporary table noted as select false as failed;
do $$
begin
  for i in 1..5 loop
    perform sync.claim_sweep('w3');
    update noted set failed = sync.note_sweep_failure((select id from failing), 'w3', 'canceling statement due to statement timeout');
  end loop;
end
$$;
select results_eq(
  $$select n.failed, j.status, j.error from noted n, sync.backfill_jobs j where j.id = (select id from failing)$$,
  $$values (true, 'failed'::text,
            'its end (removing the rows its Scan did not see) failed 5 times in a row: canceling statement due to statement timeout'::text)$$,
  'the fifth failure in a row fails the job, naming the cause');
select ok((select stale from sync.status where target_table = 'firespring_segments'),
  'the table stays stale while the sweep runs');

-- Written during the sweep (the stream): it stays, wherever its new version lands.
select sync.merge_changes('firespring_segments', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"segment_id": "old-300", "segment_name": "new", "segment_criteria": {}}'::jsonb,
    'seq', '1000', 'changed_at', now(), 'source', 'stream')));

create temporary table chunks as select 1 as n;
do $$
begin
  while not sync.sweep_unseen_chunk((select id from job), 1, 'w2') loop
    update chunks set n = n + 1;
  end loop;
end
$$;
select ok((select n > 2 from chunks), 'block by block, in several chunks');
select results_eq(
  $$select status, sweep_state, rows_removed, finished_at is not null
    from sync.backfill_jobs where id = (select id from job)$$,
  $$values ('done'::text, null::jsonb, 299::bigint, true)$$,
  'done at the walk''s end, every unseen row removed and counted once');
select results_eq(
  $$select segment_id, segment_name from public.firespring_segments$$,
  $$values ('old-300'::text, 'new'::text)$$,
  'only the row written during the sweep is left');
select is((select count(*)::int from sync.tombstones where target_table = 'firespring_segments'), 299,
  'each removal leaves its tombstone');
select ok(not (select stale from sync.status where target_table = 'firespring_segments'),
  'the table is no longer stale');
select ok(not sync.sweep_waiting(), 'nothing is left to sweep');

-- A collapsed table: its observations first, then its rows.
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v1", "page_views": 1, "session_data": {}}'::jsonb,
    'seq', '10', 'changed_at', now() - interval '1 hour', 'source', 'stream', 'range_key', 100),
  jsonb_build_object('op', 'upsert', 'row', '{"visitor_id": "v2", "page_views": 2, "session_data": {}}'::jsonb,
    'seq', '11', 'changed_at', now() - interval '1 hour', 'source', 'stream', 'range_key', 100)));
select sync.start_backfill('firespring-backdoor-visitors-dev', 1, false);
create temporary table visitors_job as
  select id from sync.backfill_jobs where source_table = 'firespring-backdoor-visitors-dev';
update sync.backfill_jobs set started_at = now(), status = 'running' where id = (select id from visitors_job);
update sync.backfill_jobs set sweep_state = sync.sweep_walk('observations', 'sync.observations'), rows_removed = 0
where id = (select id from visitors_job);
create temporary table phases as select null::text as phase;
do $$
begin
  while not sync.sweep_unseen_chunk((select id from visitors_job), 1) loop
    insert into phases
    select sweep_state ->> 'phase' from sync.backfill_jobs where id = (select id from visitors_job);
  end loop;
end
$$;
select ok((select 'rows' = any(array_agg(phase)) from phases), 'the rows after the observations');
select results_eq(
  $$select status, (select count(*)::int from public.firespring_visitors),
           (select count(*)::int from sync.observations where target_table = 'firespring_visitors' and not deleted)
    from sync.backfill_jobs where id = (select id from visitors_job)$$,
  $$values ('done'::text, 0, 0)$$,
  'the unseen visitors and their observations are removed');

select * from finish();
rollback;
