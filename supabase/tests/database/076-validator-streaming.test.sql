-- A plain table's validation compares each page as it comes
-- (20261128001600_validator_streaming.sql): sync.check_checksum_page finds the page's
-- missing and different keys against the target's rows of the same keys and keeps the
-- keys seen; the unseen pass lists the target's rows the Scan never saw; together they
-- name exactly the keys the whole staged comparison names. The keys (and the items found
-- unmappable) are kept aside until the compare ends, then written to the run's lists
-- once (20261128003300_validation_findings_staged.sql), and sync.validation_findings
-- reads the first of each list with every count. A collapsed table's run is staged, and
-- an ended or deleted run leaves nothing aside.
set client_min_messages = warning;
begin;
select plan(22);

delete from public.sync_checksums;
select tests.forget_backfill_jobs();

create temporary table collapsed as select sync.start_validation('firespring_visitors') as id;
create temporary table run as select sync.start_validation('toledo_dashboard', false, 1, 1000) as id;
select ok(not (select streamed from public.sync_checksums where id = (select id from collapsed)),
  'a collapsed table''s run is staged');
select ok((select streamed from public.sync_checksums where id = (select id from run)),
  'a plain table''s run is streamed');

-- The target: 200 equal rows, one changed, one the source lacks.
delete from public.toledo_dashboard;
insert into public.toledo_dashboard (pk, sk, metrics, updated_at, sync_changed_at, sync_source)
select 'p', 'k' || g, '{}', null, now(), 'stream' from generate_series(1, 200) g;
insert into public.toledo_dashboard (pk, sk, metrics, updated_at, sync_changed_at, sync_source) values
  ('p', 'changed', '{"v": 1}', null, now(), 'stream'),
  ('p', 'extra', '{}', null, now(), 'stream');
-- The source's pages, as the validator sends them.
create temporary table pages (n int, rows jsonb);
insert into pages values
  (1, (select jsonb_agg(jsonb_build_object('row', jsonb_build_object('pk', 'p', 'sk', 'k' || g,
         'metrics', '{}'::jsonb, 'updated_at', null, 'dashboard_data', '{}'::jsonb)))
       from generate_series(1, 200) g)),
  (2, '[{"row": {"pk": "p", "sk": "changed", "metrics": {"v": 2}, "dashboard_data": {}}},
        {"row": {"pk": "p", "sk": "missing", "metrics": {}, "dashboard_data": {}}}]');

select is(sync.check_checksum_page((select id from run), 'toledo_dashboard', (select rows from pages where n = 1)),
  0, 'a page equal to its rows diverges nowhere');
select is(sync.check_checksum_page((select id from run), 'toledo_dashboard', (select rows from pages where n = 2)),
  2, 'a page with a changed and a missing key: two divergent keys');
select results_eq(
  $$select kind, row_key from sync.checksum_divergent where run_id = (select id from run) order by 1$$,
  $$values ('different', '{"pk": "p", "sk": "changed"}'::jsonb), ('missing', '{"pk": "p", "sk": "missing"}')$$,
  'the run keeps the divergent keys aside, one row each'
);
select results_eq(
  $$select missing, different, expected_rows, (select count(*)::int from sync.checksum_items)
    from public.sync_checksums where id = (select id from run)$$,
  $$values ('[]'::jsonb, '[]'::jsonb, 202::bigint, 0)$$,
  'its lists wait for the compare''s end (no list rewritten per page); the expected count grows; nothing is staged'
);
select is((select count(*)::int from sync.checksum_seen where run_id = (select id from run)), 202,
  'and the keys seen, for the unseen pass');

-- The whole staged comparison of the same pages, for reference. A table has one run at a
-- time (sync_checksums_one_active_run): the streamed run is set aside meanwhile.
update public.sync_checksums set status = 'done' where id = (select id from run);
select sync.start_validation('toledo_dashboard', false, 1, 1000) as staged_run \gset
update public.sync_checksums set streamed = false where id = :staged_run;
select sync.stage_checksum_items(:staged_run, 'toledo_dashboard', rows) from pages;
create temporary table whole as select * from sync.compare_checksum(:staged_run, 'toledo_dashboard');
update public.sync_checksums set status = 'done' where id = :staged_run;
update public.sync_checksums set status = 'running' where id = (select id from run);

-- Two items the pages found unmappable, kept aside in the order found.
insert into sync.checksum_unmappable (run_id, item)
select (select id from run), x from jsonb_array_elements(
  '[{"key": {"pk": "p", "sk": "u2"}, "reason": "second"}, {"key": {"pk": "p", "sk": "u1"}, "reason": "first"}]') x;

-- The unseen pass, under the run's lease, after its Scan.
update public.sync_checksums set phase = 'compare' where id = (select id from run);
select is(sync.claim_validation((select id from run), 'v1'), 'compare', 'a request takes the run''s compare');
-- More entries than a run lists: the compare's end fails, naming the counts and the cure.
update sync.settings set value = '4' where key = 'checksum_max_listed';
select throws_ok(
  $$select sync.compare_checksum_range((select id from run), 'v1')$$,
  '54000',
  format('validation run %s of toledo_dashboard: 5 divergent keys and unmappable items, more than the 4 a run lists (checksum_max_listed); the table diverges too far to name key by key: backfill it (select sync.start_backfill(%L)), then validate it again',
         (select id from run), (select source_table from sync.source_tables where target_table = 'toledo_dashboard')),
  'a run that finds more than checksum_max_listed fails, naming the counts and the backfill that heals the table'
);
update sync.settings set value = '1000000' where key = 'checksum_max_listed';
select is(sync.compare_checksum_range((select id from run), 'v1'), 'recheck',
  'at this size one statement covers the target; divergent keys mean rechecks');
select results_eq(
  $$select missing, unexpected, different, expected_rows, target_rows
    from public.sync_checksums where id = (select id from run)$$,
  $$select (select jsonb_agg(row_key order by row_key) from whole where kind = 'missing'),
           (select jsonb_agg(row_key order by row_key) from whole where kind = 'unexpected'),
           (select jsonb_agg(row_key order by row_key) from whole where kind = 'different'),
           202::bigint, 202::bigint$$,
  'the streamed run names exactly the keys and counts of the whole staged comparison'
);
select is((select count(*)::int from sync.checksum_divergent where run_id = (select id from run))
          + (select count(*)::int from sync.checksum_unmappable where run_id = (select id from run)), 0,
  'the compare''s end wrote the kept keys and items to the lists and removed them');
select is((select unmappable from public.sync_checksums where id = (select id from run)),
  '[{"key": {"pk": "p", "sk": "u2"}, "reason": "second"}, {"key": {"pk": "p", "sk": "u1"}, "reason": "first"}]'::jsonb,
  'the unmappable items are listed in the order the pages found them');
-- What a request reads of the lists (sync.validation_findings): the first entries, the counts.
update public.sync_checksums
set missing = '[{"pk": "p", "sk": "m1"}, {"pk": "p", "sk": "m2"}, {"pk": "p", "sk": "m3"}]'
where id = (select id from run);
select results_eq(
  $$select missing, unexpected, different, unmappable -> 0 -> 'reason',
           missing_count, unexpected_count, different_count, unmappable_count
    from sync.validation_findings((select id from run), 2)$$,
  $$values ('[{"pk": "p", "sk": "m1"}, {"pk": "p", "sk": "m2"}]'::jsonb,
            '[{"pk": "p", "sk": "extra"}]'::jsonb, '[{"pk": "p", "sk": "changed"}]'::jsonb,
            '"second"'::jsonb, 3, 1, 1, 2)$$,
  'a request reads the first entries of each list and every list''s count'
);
select is_empty($$select * from sync.validation_findings(-1, 10)$$,
  'a run that does not exist gives no row');

-- Slices: with a small statement size the unseen pass takes several, and finds the same.
update sync.settings set value = '40' where key = 'checksum_rows_per_statement';
update public.sync_checksums set phase = 'compare', compare_after = null, unexpected = '[]', target_rows = null
where id = (select id from run);
create temporary table steps as
select sync.compare_checksum_range((select id from run), 'v1') as phase from generate_series(1, 6);
select results_eq(
  $$select phase, count(*)::int from steps group by phase order by phase$$,
  $$values ('compare'::text, 5), ('recheck', 1)$$,
  'past checksum_rows_per_statement the pass goes by slices of the target''s keys: 202 rows, six of 40'
);
select results_eq(
  $$select unexpected, target_rows from public.sync_checksums where id = (select id from run)$$,
  $$values ('[{"pk": "p", "sk": "extra"}]'::jsonb, 202::bigint)$$,
  'and finds the same unexpected key, counting the target once'
);
-- A table of exactly two slices: the pass ends at the third, empty one.
update sync.settings set value = '101' where key = 'checksum_rows_per_statement';
update public.sync_checksums set phase = 'compare', compare_after = null, unexpected = '[]', target_rows = null
where id = (select id from run);
select results_eq(
  $$select sync.compare_checksum_range((select id from run), 'v1') from generate_series(1, 3)$$,
  $$values ('compare'::text), ('compare'), ('recheck')$$,
  'a last slice that is full is followed by an empty one, which ends the pass'
);
select results_eq(
  $$select unexpected, target_rows from public.sync_checksums where id = (select id from run)$$,
  $$values ('[{"pk": "p", "sk": "extra"}]'::jsonb, 202::bigint)$$,
  'and the same key and count'
);

select sync.end_validation((select id from run), 'done');
select sync.purge_expired_batch('validation_staging', 5000);
select is((select count(*)::int from sync.checksum_seen where run_id = (select id from run)), 0,
  'an ended run leaves no seen keys once retention ran');

-- A run ended before its compare ends (failed) leaves no divergent keys either once
-- retention ran, and a deleted run's go with it.
select sync.start_validation('toledo_dashboard', false, 1, 1000) as failing_run \gset
select sync.check_checksum_page(:failing_run, 'toledo_dashboard', (select rows from pages where n = 2));
insert into sync.checksum_unmappable (run_id, item) values (:failing_run, '{}');
select sync.end_validation(:failing_run, 'failed', 'test');
select sync.purge_expired_batch('validation_staging', 5000);
select is((select count(*)::int from sync.checksum_divergent where run_id = :failing_run)
          + (select count(*)::int from sync.checksum_unmappable where run_id = :failing_run), 0,
  'nor does a failed run leave divergent keys or unmappable items aside');
select sync.check_checksum_page(:staged_run, 'toledo_dashboard', (select rows from pages where n = 2));
insert into sync.checksum_unmappable (run_id, item) values (:staged_run, '{}');
delete from public.sync_checksums where id = :staged_run;
select is((select count(*)::int from sync.checksum_divergent where run_id = :staged_run)
          + (select count(*)::int from sync.checksum_unmappable where run_id = :staged_run), 0,
  'a deleted run''s go with it');

select * from finish();
rollback;
