-- The validator's SQL half: one canonical form for both sides, bucketed comparison, and
-- every divergent key named with its kind.
set client_min_messages = warning;
begin;
select plan(20);

-- Runs of other tests (or of npm start) on this database are not this test's.
delete from public.sync_checksums;
delete from public.toledo_dashboard;
insert into public.toledo_dashboard (pk, sk, metrics, updated_at, sync_changed_at, sync_source) values
  ('p', 'same', '{"v": 1.50, "a": [1, 2]}', '2026-02-06 10:00:00+00', now(), 'stream'),
  ('p', 'changed', '{"v": 1}', '2026-02-06 10:00:00+00', now(), 'stream'),
  ('p', 'extra', '{}', null, now(), 'stream');
insert into public.sync_checksums (target_table) values ('toledo_dashboard');

-- What the source says, as the validator stages it (types as JSON: strings, numbers).
select is(
  sync.stage_checksum_items(
    (select max(id) from public.sync_checksums), 'toledo_dashboard',
    '[{"row": {"pk": "p", "sk": "same", "metrics": {"a": [1, 2], "v": 1.50}, "updated_at": "2026-02-06T10:00:00Z", "dashboard_data": {}}},
      {"row": {"pk": "p", "sk": "changed", "metrics": {"v": 2}, "updated_at": "2026-02-06T10:00:00Z", "dashboard_data": {}}},
      {"row": {"pk": "p", "sk": "missing", "metrics": {}, "updated_at": null, "dashboard_data": {}}}]'),
  3, 'a page of expected rows is staged'
);
create temporary table outcome as
select * from sync.compare_checksum((select max(id) from public.sync_checksums), 'toledo_dashboard', 4);
select results_eq(
  $$select kind, row_key from outcome where kind is not null order by kind, row_key::text$$,
  $$values ('different'::text, '{"pk": "p", "sk": "changed"}'::jsonb),
           ('missing', '{"pk": "p", "sk": "missing"}'::jsonb),
           ('unexpected', '{"pk": "p", "sk": "extra"}'::jsonb)$$,
  'missing, unexpected and different keys are named; equal rows are not, whatever the key order and timestamp spelling'
);
select results_eq(
  $$select distinct expected_rows, target_rows from outcome$$,
  $$values (3::bigint, 3::bigint)$$,
  'the counts of both sides come with the answer'
);
select results_eq(
  $$select distinct seen_at from outcome$$, $$values (now())$$,
  'every row carries when the divergence was seen: the comparing transaction''s now()'
);
select is(
  sync.canonical_digest('{"a": 1, "sync_sequence": 5, "synced_at": "x"}'::jsonb),
  sync.canonical_digest('{"a": 1, "sync_sequence": 6}'::jsonb),
  'the sync bookkeeping columns are not part of the canonical form'
);
select isnt(
  sync.canonical_digest('{"a": 12345678901234567890123}'::jsonb),
  sync.canonical_digest('{"a": 12345678901234567000000}'::jsonb),
  'a number that lost digits is different'
);

-- Nothing differs: only the counts row comes back.
delete from public.toledo_dashboard where sk = 'extra';
update public.toledo_dashboard set metrics = '{"v": 2}' where sk = 'changed';
insert into public.toledo_dashboard (pk, sk, metrics, dashboard_data, sync_changed_at, sync_source)
values ('p', 'missing', '{}', '{}', now(), 'stream');
select is(
  (select count(*)::int from sync.compare_checksum((select max(id) from public.sync_checksums), 'toledo_dashboard') where kind is not null),
  0, 'equal tables have no divergent key'
);
select is(
  (select count(*)::int from cron.job where jobname = 'sync-validate-all'), 1,
  'a pg_cron job validates every table daily'
);

-- Buckets never overflow: hashtext can return the smallest integer, whose abs() is out
-- of range (the old bucketing failed for such keys).
select throws_ok($$select abs(-2147483648::integer)$$, '22003', 'integer out of range',
  'abs() of the smallest integer overflows');
select is(sync.checksum_bucket(-2147483648, 256), 0, 'the smallest hash has a bucket');
select results_eq(
  $$select sync.checksum_bucket(h, 256) from unnest(array[2147483647, -1, 0, 255, 256, -2147483647]) h$$,
  $$values (255), (255), (0), (255), (0), (1)$$,
  'every hash lands in 0 .. 255'
);
-- A real key whose text hashes to exactly -2147483648 (found by a search over keys of
-- this shape), in a table that is compared.
select is(hashtext('{"pk": "p", "sk": "m06a63c449"}'::jsonb::text), -2147483648,
  'the test key hashes to the smallest integer');
insert into public.toledo_dashboard (pk, sk, metrics, dashboard_data, sync_changed_at, sync_source)
values ('p', 'm06a63c449', '{}', '{}', now(), 'stream');
select is(
  (select string_agg(kind || ' ' || row_key::text, ', ')
   from sync.compare_checksum((select max(id) from public.sync_checksums), 'toledo_dashboard')
   where kind is not null),
  'unexpected {"pk": "p", "sk": "m06a63c449"}', 'a table holding that key is compared, and the key named'
);

-- Runs killed mid-way are failed by the reaper, and their staging rows go by retention.
insert into public.sync_checksums (target_table, status, started_at, progress_at)
values ('firespring_actions', 'running', now() - interval '1 hour', now() - interval '20 minutes'),
       ('firespring_segments', 'running', now() - interval '1 hour', now() - interval '1 minute');
insert into sync.checksum_items (run_id, row_key, digest)
select id, '{"action_id": "a"}', 'x' from public.sync_checksums
where target_table in ('firespring_actions', 'firespring_segments');
select is(sync.reap_stalled_validations(), 1, 'one run made no progress for 15 minutes');
select results_eq(
  $$select status, error = 'stopped making progress at '
             || to_char((now() - interval '20 minutes') at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
           (select count(*)::int from sync.checksum_items i where i.run_id = c.id)
    from public.sync_checksums c where target_table in ('firespring_actions', 'firespring_segments')
    order by progress_at$$,
  $$values ('failed', true, 1), ('running', null, 1)$$,
  'the stalled run is failed, naming when it stopped; the live one runs on'
);
select results_eq(
  $$select removed, complete from sync.purge_expired_batch('validation_staging', 5000)$$,
  $$values (1::bigint, true)$$,
  'retention takes the failed run''s staging rows, a batch at a time'
);
select results_eq(
  $$select status, (select count(*)::int from sync.checksum_items i where i.run_id = c.id)
    from public.sync_checksums c where target_table in ('firespring_actions', 'firespring_segments')
    order by progress_at$$,
  $$values ('failed', 0), ('running', 1)$$,
  'and leaves the live run''s'
);
select is(sync.reap_stalled_validations(interval '30 seconds'), 1, 'the stall period is a parameter');
select is(
  (select schedule from cron.job where jobname = 'sync-reap-stalled-validations'), '*/10 * * * *',
  'a pg_cron job reaps stalled runs every 10 minutes'
);

-- A run with unmappable source items shows them in sync.status.
insert into public.sync_checksums (target_table, status, started_at, match, unmappable)
values ('firespring_searches', 'done', now() + interval '1 second', false,
        '[{"key": {"search_id": "s1"}, "reason": "firespring-backdoor-searches-dev [search_id=\"s1\"]: bad"}]');
select is(
  (select last_checksum_unmappable from sync.status where target_table = 'firespring_searches'), 1,
  'sync.status counts the last run''s unmappable source items'
);

select * from finish();
rollback;
