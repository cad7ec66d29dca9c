-- The control panel: sync.status (one row per target table) and
-- sync.backfill_progress (one row per backfill job) report what the tables hold.
set client_min_messages = warning;
begin;
select plan(12);

-- Start from empty tables (rolled back at the end, like everything here).
delete from public.firespring_actions;
delete from public.firespring_searches;
delete from sync.dead_letters;
delete from public.sync_checksums;
delete from sync.table_state;
select tests.forget_backfill_jobs();

insert into public.firespring_actions (action_id, sync_changed_at, sync_source, synced_at)
values ('a-1', now(), 'direct', '2026-02-06 10:00:00+00'), ('a-2', now(), 'direct', '2026-02-06 11:00:00+00');
insert into sync.dead_letters (source_table, target_table, record, reason)
values ('firespring-backdoor-actions-dev', 'firespring_actions', '{"eventID": "e1"}', 'missing key action_id'),
       ('firespring-backdoor-actions-dev', 'firespring_actions', '{"eventID": "e2"}', 'missing key action_id');
update sync.dead_letters set replayed_at = now(), replay_result = 'applied' where record ->> 'eventID' = 'e2';
insert into public.sync_checksums (target_table, status, started_at, checked_at, match)
values ('firespring_actions', 'done', '2026-02-06 09:00:00+00', '2026-02-06 09:01:00+00', false),
       ('firespring_actions', 'done', '2026-02-06 12:00:00+00', '2026-02-06 12:01:00+00', true);

select is((select count(*)::int from sync.status), 9, 'sync.status has one row per target table');
select results_eq(
  $$select rows, last_change_at, dead_letters, last_checksum_at, last_checksum_match
    from sync.status where target_table = 'firespring_actions'$$,
  $$values (2::bigint, '2026-02-06 11:00:00+00'::timestamptz, 1::bigint,
            '2026-02-06 12:01:00+00'::timestamptz, true)$$,
  'status shows rows, the last change, open dead letters and the latest checksum'
);
-- A run queued after them: the latest run has no verdict yet, the last result stands.
insert into public.sync_checksums (target_table, status, started_at)
values ('firespring_actions', 'queued', '2026-02-06 13:00:00+00');
select results_eq(
  $$select last_checksum_status, last_checksum_match, last_result_at, last_result_match
    from sync.status where target_table = 'firespring_actions'$$,
  $$values ('queued'::text, null::boolean, '2026-02-06 12:01:00+00'::timestamptz, true)$$,
  'while a run is queued, status shows it and the latest finished run''s result'
);
select results_eq(
  $$select rows, last_change_at, dead_letters, last_checksum_match
    from sync.status where target_table = 'firespring_searches'$$,
  $$values (0::bigint, null::timestamptz, 0::bigint, null::boolean)$$,
  'an empty table shows zeros and no checksum yet'
);
select is(
  (select region from sync.status where target_table = 'toledo_dashboard'), 'us-east-2',
  'status names the source region'
);

-- A job of 4 segments, 3 done.
insert into sync.backfill_jobs (source_table, total_segments, status, started_at)
values ('firespring-backdoor-segments-dev', 4, 'running', now() - interval '10 seconds');
insert into sync.backfill_segments (job_id, segment, status, items_scanned, rows_written)
select currval(pg_get_serial_sequence('sync.backfill_jobs', 'id')), s,
       case when s < 3 then 'done' else 'running' end, 500, 400
from generate_series(0, 3) s;
select results_eq(
  $$select target_table, status, segments_done, total_segments, items_scanned, rows_written
    from sync.backfill_progress$$,
  $$values ('firespring_segments'::text, 'running'::text, 3::bigint, 4, 2000::bigint, 1600::bigint)$$,
  'backfill_progress sums the segments of a job'
);
select cmp_ok(
  (select items_per_second from sync.backfill_progress), '>', 0::numeric,
  'backfill_progress shows a rate'
);
update sync.backfill_segments set updated_at = now() - interval '20 minutes'
where job_id = currval(pg_get_serial_sequence('sync.backfill_jobs', 'id'));
update sync.backfill_segments set updated_at = now() - interval '16 minutes'
where job_id = currval(pg_get_serial_sequence('sync.backfill_jobs', 'id')) and segment = 3;
update sync.backfill_jobs set status = 'failed', error = 'segment 3: the table is gone',
                             requested_at = now() - interval '30 minutes'
where id = currval(pg_get_serial_sequence('sync.backfill_jobs', 'id'));
select results_eq(
  $$select error, last_worked_at = now() - interval '16 minutes' from sync.backfill_progress$$,
  $$values ('segment 3: the table is gone'::text, true)$$,
  'backfill_progress shows why a job failed, and when a worker last worked on it'
);
update sync.backfill_jobs set sweep_state = jsonb_build_object('at', now() - interval '2 minutes')
where id = currval(pg_get_serial_sequence('sync.backfill_jobs', 'id'));
select is((select last_worked_at from sync.backfill_progress), now() - interval '2 minutes',
  'a chunk of its end counts as work');
select throws_ok(
  $$insert into sync.backfill_jobs (source_table, total_segments) values ('no-such-table', 4)$$,
  '23503', null, 'a backfill names a registered source table'
);
select throws_ok(
  $$insert into sync.backfill_jobs (source_table, total_segments) values ('firespring-backdoor-segments-dev', 0)$$,
  '23514', null, 'a backfill has at least one segment'
);

select tests.authenticate_as_service_role();
select throws_ok('select * from sync.status', '42501', null, 'not even service_role reads sync through the API');
select tests.clear_authentication();

select * from finish();
rollback;
