-- The validator's SQL half: one canonical form for both sides, bucketed comparison, and
-- every divergent key named with its kind.
set client_min_messages = warning;
begin;
select plan(7);

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

select * from finish();
rollback;
