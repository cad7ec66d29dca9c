-- The validator on the backfill's leased segments (20261128001100_validator_segments.sql):
-- a run's own Scan job, claims kept apart from backfills, checkpoints and hand-on, the
-- compare in slices of keys giving exactly the whole comparison, the run lease, the end of
-- a run, the staggered validate_all, the reaper and the heartbeat.
set client_min_messages = warning;
begin;
select plan(56);

delete from public.sync_checksums;
select tests.forget_backfill_jobs();

-- A run and its Scan.
create temporary table run as
select sync.start_validation('toledo_dashboard', false, 3, 2) as id;
-- The staged compare (a collapsed table's; 076-validator-streaming tests a plain table's
-- compare as its pages come).
update public.sync_checksums set streamed = false where id = (select id from run);
select results_eq(
  $$select c.status, c.phase, j.total_segments, j.page_size, j.source_table
    from public.sync_checksums c join sync.backfill_jobs j on j.checksum_run_id = c.id$$,
  $$values ('running'::text, 'scan'::text, 3, 2, 'toledo-consulting-dashboard-data'::text)$$,
  'a run has a Scan job of its own, with its segments'
);
select throws_ok($$select sync.start_validation('nope')$$, '22023', null, 'an unknown table is refused');
select ok(not sync.backfill_work_pending(), 'a validation''s segments are no backfill work');
select is((select count(*)::int from sync.claim_segment('import-worker')), 0,
  'the import-worker claims no segment of a validation');
select is((select count(*)::int from sync.claim_segment('v1', (select id from run) + 1)), 0,
  'nor does a request of another run');
select results_eq(
  $$select segment, exclusive_start_key from sync.claim_segment('v1', (select id from run))$$,
  $$values (0, null::jsonb)$$,
  'a request of the run claims its first segment'
);

-- A page staged with its checkpoint, a hand-on, and the next request going on.
select sync.checkpoint_segment((select j.id from sync.backfill_jobs j), 0, 'v1', '{"pk": {"S": "p"}}', 2, 0, false);
select sync.release_segment((select j.id from sync.backfill_jobs j), 0, 'v1');
select results_eq(
  $$select segment, exclusive_start_key from sync.claim_segment('v2', (select id from run))$$,
  $$values (0, '{"pk": {"S": "p"}}'::jsonb)$$,
  'the next request goes on from the checkpoint'
);
select throws_ok(
  $$select sync.checkpoint_segment((select j.id from sync.backfill_jobs j), 0, 'v1', null, 1, 0, true)$$,
  'SY001', null, 'the request that handed on can no longer checkpoint'
);
select sync.checkpoint_segment((select j.id from sync.backfill_jobs j), 0, 'v2', null, 1, 0, true);
select segment from sync.claim_segment('v2', (select id from run));
select sync.checkpoint_segment((select j.id from sync.backfill_jobs j), 1, 'v2', null, 0, 0, true);
select is((select phase from public.sync_checksums), 'scan', 'the Scan is not done while a segment is left');
select segment from sync.claim_segment('v2', (select id from run));
select sync.checkpoint_segment((select j.id from sync.backfill_jobs j), 2, 'v2', null, 0, 0, true);
select results_eq(
  $$select c.phase, j.status, j.rows_removed from public.sync_checksums c
    join sync.backfill_jobs j on j.checksum_run_id = c.id$$,
  $$values ('compare'::text, 'done'::text, null::bigint)$$,
  'the last segment moves the run to its compare, with no sweep'
);
select is((select count(*)::int from sync.backfill_progress), 0, 'a validation''s Scan is not a backfill''s progress');

-- The compare: a table and what the source says (as in 070-checksum), plus more keys.
delete from public.toledo_dashboard;
insert into public.toledo_dashboard (pk, sk, metrics, updated_at, sync_changed_at, sync_source)
select 'p', 'k' || g, '{}', null, now(), 'stream' from generate_series(1, 200) g;
insert into public.toledo_dashboard (pk, sk, metrics, updated_at, sync_changed_at, sync_source) values
  ('p', 'changed', '{"v": 1}', null, now(), 'stream'),
  ('p', 'extra', '{}', null, now(), 'stream');
select sync.stage_checksum_items((select id from run), 'toledo_dashboard', (
  select jsonb_agg(jsonb_build_object('row', jsonb_build_object('pk', 'p', 'sk', 'k' || g,
           'metrics', '{}'::jsonb, 'updated_at', null, 'dashboard_data', '{}'::jsonb)))
  from generate_series(1, 200) g));
select sync.stage_checksum_items((select id from run), 'toledo_dashboard',
  '[{"row": {"pk": "p", "sk": "changed", "metrics": {"v": 2}, "dashboard_data": {}}},
    {"row": {"pk": "p", "sk": "missing", "metrics": {}, "dashboard_data": {}}}]');
-- Several observations of a key, as a collapsed table's: the one with the largest range
-- key (then rank) is the expected row. k1 .. k100 have a later, equal one; k5 a later
-- still that differs (in the third slice of 64 below); k7 two at that range key, the
-- higher rank equal, the lower one differing.
select sync.stage_checksum_items((select id from run), 'toledo_dashboard', (
  select jsonb_agg(jsonb_build_object('range_key', 1, 'row', jsonb_build_object('pk', 'p', 'sk', 'k' || g,
           'metrics', '{}'::jsonb, 'updated_at', null, 'dashboard_data', '{}'::jsonb)))
  from generate_series(1, 100) g));
select sync.stage_checksum_items((select id from run), 'toledo_dashboard',
  '[{"range_key": 2, "row": {"pk": "p", "sk": "k5", "metrics": {"v": 5}, "dashboard_data": {}}},
    {"range_key": 3, "rank": 2, "row": {"pk": "p", "sk": "k7", "metrics": {}, "dashboard_data": {}}},
    {"range_key": 3, "rank": 1, "row": {"pk": "p", "sk": "k7", "metrics": {"v": 7}, "dashboard_data": {}}}]');
create temporary table whole as
select * from sync.compare_checksum((select id from run), 'toledo_dashboard');
create temporary table ranged as
select r.* from generate_series(0, 255, 64) f
cross join lateral sync.compare_checksum((select id from run), 'toledo_dashboard', 256, f, f + 63) r;
select results_eq(
  $$select kind, row_key from ranged where kind is not null order by kind, row_key$$,
  $$select kind, row_key from whole where kind is not null order by kind, row_key$$,
  'four ranges of buckets name exactly the keys the whole comparison names'
);
select results_eq(
  $$select distinct expected_rows, target_rows from whole$$,
  $$values (202::bigint, 202::bigint)$$,
  'the whole comparison counts both sides'
);
select ok(exists (select from whole where kind = 'different' and row_key = '{"pk": "p", "sk": "k5"}'),
  'a key''s expected row is its observation with the largest range key');
select ok(not exists (select from whole where row_key = '{"pk": "p", "sk": "k7"}'),
  'and of those, the one with the highest rank');
select results_eq(
  $$select kind, row_key from sync.compare_checksum((select id from run), 'toledo_dashboard', 256, 0, null,
      '[{"pk": "p", "sk": "changed"}, {"pk": "p", "sk": "k1"}]') where kind is not null$$,
  $$values ('different'::text, '{"pk": "p", "sk": "changed"}'::jsonb)$$,
  'a comparison restricted to keys looks at those keys only'
);
-- Each key asked for found by the primary key (a look's keys), whatever kind it is.
select results_eq(
  $$select kind, row_key, expected_rows, target_rows
    from sync.compare_checksum((select id from run), 'toledo_dashboard', 256, 0, null,
      '[{"pk": "p", "sk": "changed"}, {"pk": "p", "sk": "k1"}, {"pk": "p", "sk": "missing"},
        {"pk": "p", "sk": "extra"}, {"pk": "p", "sk": "nowhere"}, {"pk": "p", "sk": "k1"}]')
    order by kind nulls last, row_key$$,
  $$values ('different'::text, '{"pk": "p", "sk": "changed"}'::jsonb, 3::bigint, 3::bigint),
           ('missing', '{"pk": "p", "sk": "missing"}', 3, 3),
           ('unexpected', '{"pk": "p", "sk": "extra"}', 3, 3),
           (null, null, 3, 3)$$,
  'keys asked for: the missing, unexpected and different among them, and the counts of them alone'
);

-- The run's compare, slice by slice of keys, under its lease: 64 keys a statement here.
update sync.settings set value = '64' where key = 'checksum_rows_per_statement';
select is(sync.claim_validation((select id from run), 'v3'), 'compare', 'a request takes the run''s lease');
select is(sync.claim_validation((select id from run), 'v4'), null, 'another cannot while it holds it');
select throws_ok($$select sync.compare_checksum_range((select id from run), 'v4')$$, 'SY001', null,
  'nor compare a slice');
select is(sync.compare_checksum_range((select id from run), 'v3'), 'compare', 'one slice at a time');
select is((select compare_after from public.sync_checksums),
  jsonb_build_object('expected', (select k from (select distinct row_key as k from sync.checksum_items) d
                                  order by k offset 63 limit 1)),
  'each slice is checkpointed: the 64th expected key, in key order');
select sync.release_validation((select id from run), 'v3');
select is(sync.claim_validation((select id from run), 'v4'), 'compare', 'after a hand-on the next request takes over');
create temporary table steps as
select sync.compare_checksum_range((select id from run), 'v4') as phase from generate_series(1, 7);
select results_eq(
  $$select phase, count(*)::int from steps group by phase order by phase$$,
  $$values ('compare'::text, 6), ('recheck', 1)$$,
  '202 expected keys and 202 target rows take four slices of 64 each; a divergent key means rechecks'
);
-- What a run's lists and counts must be: the whole comparison's keys, in its order.
create temporary view whole_lists as
select (select jsonb_agg(row_key order by row_key) from whole where kind = 'missing') as missing,
       (select jsonb_agg(row_key order by row_key) from whole where kind = 'unexpected') as unexpected,
       (select jsonb_agg(row_key order by row_key) from whole where kind = 'different') as different,
       202::bigint as expected_rows, 202::bigint as target_rows;
select results_eq(
  $$select missing, unexpected, different, expected_rows, target_rows from public.sync_checksums$$,
  $$select * from whole_lists$$,
  'the run holds the whole comparison''s keys, in its order, and counts summed over the slices'
);
-- Both sides exactly two full slices: each side ends at a third, empty one.
update sync.settings set value = '101' where key = 'checksum_rows_per_statement';
update public.sync_checksums
set phase = 'compare', compare_after = null, missing = '[]', unexpected = '[]', different = '[]',
    expected_rows = null, target_rows = null
where id = (select id from run);
select results_eq(
  $$select sync.compare_checksum_range((select id from run), 'v4') from generate_series(1, 6)$$,
  $$values ('compare'::text), ('compare'), ('compare'), ('compare'), ('compare'), ('recheck')$$,
  'a full last slice on either side is followed by an empty one, which ends the side'
);
select results_eq(
  $$select missing, unexpected, different, expected_rows, target_rows from public.sync_checksums$$,
  $$select * from whole_lists$$,
  'and the same keys and counts'
);
-- A slice of the expected side reads its keys through the staged rows' index, in the
-- order it needs, and stops (the first part of sync.compare_checksum_slice's statement):
-- no sort of the run's every staged row.
insert into sync.checksum_items (run_id, row_key, range_key, rank, digest)
select (select id from run), jsonb_build_object('pk', 'q', 'sk', 's' || g), g % 3, 0, 'd'
from generate_series(1, 30000) g;
analyze sync.checksum_items;
select unalike(
  tests.explain(format($$select distinct on (i.row_key) i.row_key, i.digest
    from sync.checksum_items i where i.run_id = %s and i.row_key > '{"pk": "q", "sk": "s1"}'
    order by i.row_key, i.range_key desc nulls last, i.rank desc limit 100$$, (select id from run))),
  '%Sort%',
  'an expected slice needs no sort'
);

-- The end of a run.
select sync.end_validation((select id from run), 'done');
select results_eq(
  $$select status, phase, lease_owner, (select count(*)::int from sync.checksum_items) from public.sync_checksums$$,
  $$values ('done'::text, 'done'::text, null::text, 30305)$$,
  'an ended run leaves no lease, and its staging rows to retention'
);
select results_eq(
  $$select removed, complete from sync.purge_expired_batch('validation_staging', 30000)$$,
  $$values (30000::bigint, false)$$,
  'retention deletes them a batch at a time'
);
select results_eq(
  $$select removed, complete from sync.purge_expired_batch('validation_staging', 30000)$$,
  $$values (305::bigint, true)$$,
  'until none is left'
);
select is((select count(*)::int from sync.checksum_items), 0, 'no staging row is left'
);
select throws_ok($$select sync.end_validation((select id from run), 'running')$$, '22023', null,
  'a run ends done or failed');

-- validate_all queues a run per table and starts validation_concurrency of them.
select is(sync.validate_all(), (select count(*)::int from sync.source_tables), 'one run per table');
select results_eq(
  $$select status, count(*)::int from public.sync_checksums where id <> (select id from run)
    group by status order by status$$,
  $$values ('queued'::text, (select count(*)::int - 2 from sync.source_tables)), ('running', 2)$$,
  'two run at once, the others wait'
);
select is(sync.validate_all(), 0, 'a table whose run is queued or running gets no second one');
select is((select count(*)::int from public.sync_checksums where status in ('queued', 'running')),
  (select count(*)::int from sync.source_tables), 'still one run per table');
-- A run ended without starting queued runs (a repair's, whose revalidation is to take its
-- slot) leaves them queued for its caller to start.
select sync.end_validation((select min(id) from public.sync_checksums where status = 'running'),
  'done', null, false);
select is((select count(*)::int from public.sync_checksums where status = 'running'), 1,
  'a run ended with p_start_queued false frees its slot to nobody yet');
select is(sync.start_queued_validations(), 1, 'the caller then starts one queued run in it');

-- A run started by hand between validate_all's look and its start is that table's run:
-- the start is refused (SY006; simulated here, the race needing two sessions) and the
-- other tables' runs are queued, the daily job not failed.
update public.sync_checksums set status = 'done' where status in ('queued', 'running');
create function pg_temp.lose_to_a_hand_start() returns trigger language plpgsql as $$
begin
  if new.target_table = 'firespring_actions' then
    raise exception 'validation run 0 of firespring_actions is already running' using errcode = 'SY006';
  end if;
  return new;
end $$;
create trigger lose_to_a_hand_start before insert on public.sync_checksums
  for each row execute function pg_temp.lose_to_a_hand_start();
select is(sync.validate_all(), (select count(*)::int - 1 from sync.source_tables),
  'a start that lost to a hand start does not stop the other tables'' runs');
drop trigger lose_to_a_hand_start on public.sync_checksums;

-- A whole-number setting out of its bounds is refused as it is written, naming it, rather
-- than found by its readers (a run that never ends: 0 keys a statement never moves on; a
-- pg_cron job failing every minute), and such a setting cannot be deleted.
select throws_like($$update sync.settings set value = '0' where key = 'checksum_rows_per_statement'$$,
  'sync.settings checksum_rows_per_statement = ''0'' is not a whole number from 1 to 10000000; set it again%',
  'a slice of 0 keys is refused as it is written, naming the setting');
select throws_like($$update sync.settings set value = 'two' where key = 'validation_concurrency'$$,
  'sync.settings validation_concurrency = ''two'' is not a whole number from 1 to 100%',
  'a concurrency that is not a number is refused as it is written, naming the setting');
select throws_like($$delete from sync.settings where key = 'validation_concurrency'$$,
  'sync.settings validation_concurrency cannot be deleted: it is read as a whole number from 1 to 100; set its value instead',
  'nor can it be deleted');
select throws_like($$update sync.settings set min_value = 5, max_value = 4 where key = 'validation_concurrency'$$,
  '%is not a whole number from 5 to 4%', 'bounds that hold no value are refused');
-- A reader still names a setting it cannot use: one whose bounds were dropped by hand.
update sync.settings set min_value = null, max_value = null, value = 'two'
where key = 'validation_concurrency';
select throws_like($$select sync.start_queued_validations()$$,
  'sync.settings has no whole-number setting ''validation_concurrency'' (a row with min_value and max_value); set its bounds again (update sync.settings set min_value = ..., max_value = ... where key = ''validation_concurrency'')%',
  'a reader of a setting with no bounds stops, naming it');
update sync.settings set min_value = 1, max_value = 100, value = '2'
where key = 'validation_concurrency';
select sync.end_validation((select min(id) from public.sync_checksums where status = 'running'), 'failed', 'x');
select is((select count(*)::int from public.sync_checksums where status = 'running'), 2,
  'a queued run takes the slot an ended one frees');

-- The reaper and the heartbeat.
update public.sync_checksums set progress_at = now() - interval '1 hour', phase = 'compare',
  lease_owner = 'live', lease_expires_at = now() + interval '1 minute'
where status = 'running';
select is(sync.reap_stalled_validations(), 0, 'a run whose lease is live is not reaped');
select is(sync.wake_validations(), 0, 'nor woken');
update public.sync_checksums set lease_expires_at = now() - interval '1 second' where status = 'running';
select is(sync.wake_validations(), 2, 'a run whose lease lapsed is woken');
-- In its Scan, a run is woken only when no request holds one of its segments: a request
-- scanning it claims the pending segments itself as its lanes free up.
create temporary table scanning as
  select min(id) as id from public.sync_checksums where status = 'running';
update public.sync_checksums set phase = 'scan', lease_owner = null
where id = (select id from scanning);
update public.sync_checksums set lease_expires_at = now() + interval '1 minute'
where status = 'running' and id <> (select id from scanning);
update sync.backfill_segments s set status = case when s.segment = 0 then 'running' else 'pending' end,
  lease_owner = case when s.segment = 0 then 'live' end,
  lease_expires_at = case when s.segment = 0 then now() + interval '1 minute' end
from sync.backfill_jobs j
where s.job_id = j.id and j.checksum_run_id = (select id from scanning);
select is(sync.wake_validations(), 0, 'a Scan with a segment leased live, others pending, is not woken');
update sync.backfill_segments s set lease_expires_at = now() - interval '1 second'
from sync.backfill_jobs j
where s.job_id = j.id and j.checksum_run_id = (select id from scanning) and s.segment = 0;
select is(sync.wake_validations(), 1, 'its lease lapsed (the request killed), it is woken');
-- Taken over again and again (a page that kills its isolate each time), its segment's
-- lease is live most of the time: once the segment gives up (sync.segment_gives_up), the
-- live lease no longer keeps the reaper from the run, which is failed naming the cause.
savepoint killed_again;
update sync.backfill_segments s set status = 'running', lease_owner = 'again',
  lease_expires_at = now() + interval '1 minute', updated_at = now(), takeovers = 5,
  failing_since = now() - interval '11 minutes',
  error = 'its lease (60 s) ran out: its worker was stopped or killed mid-page'
from sync.backfill_jobs j
where s.job_id = j.id and j.checksum_run_id = (select id from scanning) and s.segment = 0;
select is(sync.reap_stalled_validations(), 1,
  'a Scan whose segment is killed mid-page again and again is reaped, its lease live');
select matches((select error from public.sync_checksums where id = (select id from scanning)),
  '^stopped making progress at .*; its Scan last gave up: its lease \(60 s\) ran out: its worker was stopped or killed mid-page$',
  'naming why');
rollback to savepoint killed_again;
update public.sync_checksums set phase = 'compare', lease_expires_at = now() - interval '1 second'
where status = 'running';
-- One of them never got past the throttle: its Scan gave its segment back, saying why.
update sync.backfill_segments s set error = 'Scan failed 3 times in a row (each after the SDK''s own retries): ProvisionedThroughputExceededException: rate exceeded'
from sync.backfill_jobs j
where s.job_id = j.id and s.segment = 0
  and j.checksum_run_id = (select min(id) from public.sync_checksums where status = 'running');
select is(sync.reap_stalled_validations(), 2, 'and, after making no progress for 15 minutes, reaped');
select matches(
  (select error from public.sync_checksums
   where id = (select min(id) from public.sync_checksums where status = 'failed' and error like 'stopped%')),
  '^stopped making progress at .*; its Scan last gave up: Scan failed 3 times in a row .*ProvisionedThroughputExceededException: rate exceeded$',
  'a run reaped after its Scan gave up names why');
select is((select count(*)::int from cron.job where jobname = 'sync-validator'), 1,
  'a pg_cron heartbeat resumes validation runs');

select * from finish();
rollback;
