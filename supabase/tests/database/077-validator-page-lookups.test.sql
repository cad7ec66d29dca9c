-- The page compare of a streamed validation (20261128001600_validator_streaming.sql)
-- compares column by column, and its verdicts are those of sync.canonical_digest on
-- every edge of the canonical form: a number's written scale inside jsonb differs, a JSON
-- null and an SQL NULL in a jsonb column are the same, timestamps are compared as
-- instants. A page for a run that does not exist is refused with an error naming it; a
-- deleted run's seen keys go with it (the statement-level cascade).
set client_min_messages = warning;
begin;
select plan(7);

delete from public.sync_checksums;
select tests.forget_backfill_jobs();
create temporary table run as select sync.start_validation('toledo_dashboard', false, 1, 1000) as id;

delete from public.toledo_dashboard;
insert into public.toledo_dashboard (pk, sk, metrics, updated_at, dashboard_data, sync_changed_at, sync_source) values
  ('p', 'equal',      '{"v": 1}',    '2026-02-06 12:00:00+00', '{"a": [1, "x"]}', now(), 'stream'),
  ('p', 'scale',      '{"v": 1.0}',  null,                     '{}',              now(), 'stream'),
  ('p', 'json-null',  'null',        null,                     '{}',              now(), 'stream'),
  ('p', 'sql-null',   null,          null,                     '{}',              now(), 'stream'),
  ('p', 'instant',    null,          '2026-02-06 12:00:00+00', '{}',              now(), 'stream'),
  ('p', 'later',      null,          '2026-02-06 12:00:00+00', '{}',              now(), 'stream'),
  ('p', 'text',       null,          null,                     '{"s": "a"}',      now(), 'stream');

-- The page, as the validator sends it: each row as the source makes it.
create temporary table page as select '[
  {"row": {"pk": "p", "sk": "equal", "metrics": {"v": 1}, "updated_at": "2026-02-06T12:00:00.000Z", "dashboard_data": {"a": [1, "x"]}}},
  {"row": {"pk": "p", "sk": "scale", "metrics": {"v": 1.00}, "updated_at": null, "dashboard_data": {}}},
  {"row": {"pk": "p", "sk": "json-null", "metrics": null, "updated_at": null, "dashboard_data": {}}},
  {"row": {"pk": "p", "sk": "sql-null", "metrics": null, "updated_at": null, "dashboard_data": {}}},
  {"row": {"pk": "p", "sk": "instant", "metrics": null, "updated_at": "2026-02-06T14:00:00+02:00", "dashboard_data": {}}},
  {"row": {"pk": "p", "sk": "later", "metrics": null, "updated_at": "2026-02-06T12:00:00.000001Z", "dashboard_data": {}}},
  {"row": {"pk": "p", "sk": "text", "metrics": null, "updated_at": null, "dashboard_data": {"s": "a "}}},
  {"row": {"pk": "p", "sk": "absent", "metrics": null, "updated_at": null, "dashboard_data": {}}}
]'::jsonb as rows;

-- What sync.canonical_digest says of each key (the reference).
create temporary table reference as
select case when t is null then 'missing' else 'different' end as kind,
       jsonb_build_object('pk', r.pk, 'sk', r.sk) as row_key
from page, jsonb_array_elements(page.rows) x
cross join lateral jsonb_populate_record(null::public.toledo_dashboard, x -> 'row') r
left join public.toledo_dashboard t on t.pk = r.pk and t.sk = r.sk
where t is null or sync.canonical_digest(to_jsonb(r)) is distinct from sync.canonical_digest(to_jsonb(t));

select is(sync.check_checksum_page((select id from run), 'toledo_dashboard', (select rows from page)),
  (select count(*)::int from reference), 'as many divergent keys as the digests find');
select results_eq(
  $$select kind, row_key from sync.checksum_divergent where run_id = (select id from run) order by 1, 2$$,
  $$select kind, row_key from reference order by 1, 2$$,
  'the same missing and different keys as sync.canonical_digest'
);
select results_eq(
  $$select jsonb_agg(d.row_key -> 'sk' order by d.row_key -> 'sk') from sync.checksum_divergent d
    where d.run_id = (select id from run) and d.kind = 'different'$$,
  $$values ('["later", "scale", "text"]'::jsonb)$$,
  'a jsonb number''s scale, a microsecond and a space differ; a JSON null, an SQL NULL and the same instant written otherwise do not'
);
select is((select expected_rows::int from public.sync_checksums where id = (select id from run)), 8,
  'every row of the page is counted');

select throws_ok(
  $$select sync.check_checksum_page(-1, 'toledo_dashboard', '[]')$$,
  '22023', 'sync.check_checksum_page: validation run -1 of toledo_dashboard does not exist',
  'a page of a run that does not exist is refused, naming the run and the table'
);

select is((select count(*)::int from sync.checksum_seen where run_id = (select id from run)), 8,
  'the run keeps the keys it saw');
delete from public.sync_checksums where id = (select id from run);
select is((select count(*)::int from sync.checksum_seen where run_id = (select id from run)), 0,
  'a deleted run''s seen keys go with it');

select * from finish();
rollback;
