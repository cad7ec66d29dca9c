-- Retention (20261128001000_retention.sql): sync.purge_expired removes each kind of
-- bookkeeping after its period in sync.settings and keeps it before; open dead letters,
-- the observation a row holds, and tombstones an older running backfill may still need
-- are never purged.
set client_min_messages = warning;
begin;
select plan(77);

-- Start from nothing, so that what purge_expired reports is exactly this test's rows.
delete from sync.superseded_purge_turns;
delete from sync.tombstones;
delete from sync.observations;
delete from public.firespring_visitors;
delete from public.firespring_extraction_jobs;
delete from sync.dead_letters;
delete from sync.webhook_deliveries;
delete from cron.job_run_details;
delete from sync.table_state;
select tests.forget_backfill_jobs();
delete from public.sync_checksums;

select results_eq(
  $$select key, value from sync.settings where key like '%\_retention' order by key$$,
  $$values ('backfill_job_retention'::text, '30 days'::text), ('checksum_run_retention', '30 days'),
           ('cron_history_retention', '7 days'), ('dead_letter_retention', '30 days'),
           ('observation_retention', '48 hours'), ('stream_note_retention', '48 hours'),
           ('tombstone_retention', '48 hours'),
           ('webhook_id_retention', '10 minutes'), ('write_back_retention', '30 days')$$,
  'the retention settings and their defaults'
);
select is((select count(*)::int from sync.settings where key like '%\_retention' and description <> ''), 9,
  'each setting says what it keeps');
select results_eq(
  $$select schedule, command from cron.job where jobname like 'sync-retention%' order by jobname$$,
  $$values ('* * * * *'::text, 'select sync.purge_expired(''3 seconds'')'::text),
           ('* * * * *', 'select sync.purge_superseded_turn()')$$,
  'pg_cron runs retention every minute for 3 s, and the superseded observations in a run of their own: what each deletes or locks is held a few seconds at most');

-- Tombstones: 49 h old (purged), 47 h old (kept).
insert into sync.tombstones (target_table, row_key, sync_sequence, deleted_at, recorded_at) values
  ('firespring_segments', '{"segment_id": "old"}', 1, now() - interval '49 hours', now() - interval '49 hours'),
  ('firespring_segments', '{"segment_id": "young"}', 2, now() - interval '47 hours', now() - interval '47 hours');

-- A collapsed table: v1 with three observations, all older than the retention (the
-- oldest two superseded, one of them deleted), its row written as long ago; v2 whose row
-- took its held observation just now: its older observation, recorded before the
-- retention but superseded just now, stays; v3 entirely deleted.
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  tests.visitor_change('upsert', 'v1', 100, '10', 1), tests.visitor_change('upsert', 'v1', 200, '11', 2),
  tests.visitor_change('upsert', 'v1', 300, '12', 3), tests.visitor_change('upsert', 'v2', 100, '13', 1),
  tests.visitor_change('upsert', 'v3', 100, '14', 1)));
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  tests.visitor_change('delete', 'v1', 200, '20', null), tests.visitor_change('delete', 'v3', 100, '21', null)));
update sync.observations set recorded_at = now() - interval '3 days', live_since = now() - interval '3 days' where target_table = 'firespring_visitors';
update public.firespring_visitors set synced_at = now() - interval '3 days';
select sync.merge_changes('firespring_visitors', jsonb_build_array(tests.visitor_change('upsert', 'v2', 200, '30', 2)));
create temp table visitors_before as select * from public.firespring_visitors;

-- Dead letters: replayed 31 days ago (purged), replayed 29 days ago (kept), open for
-- 100 days (kept), replayed 31 days ago but seen again since (kept: its record failed
-- again, and a backfill's end spares its key while it is).
insert into sync.dead_letters (received_at, last_seen_at, target_table, record, reason, replayed_at, replay_result, row_key) values
  (now() - interval '40 days', now() - interval '40 days', 'firespring_actions', '{"n": 1}', 'r', now() - interval '31 days', 'applied', null),
  (now() - interval '40 days', now() - interval '40 days', 'firespring_actions', '{"n": 2}', 'r', now() - interval '29 days', 'applied', null),
  (now() - interval '100 days', now() - interval '100 days', 'firespring_actions', '{"n": 3}', 'r', null, null, '{"action_id": "n3"}'),
  (now() - interval '40 days', now() - interval '1 day', 'firespring_actions', '{"n": 4}', 'r', now() - interval '31 days', 'applied', null);

-- Webhook-ids: 11 minutes (purged), 9 minutes (kept).
insert into sync.webhook_deliveries (webhook_id, received_at) values
  ('msg_old', now() - interval '11 minutes'), ('msg_young', now() - interval '9 minutes');

-- pg_cron's history: 8 days (purged), 6 days (kept). Run ids of our own: hosted,
-- postgres may not use pg_cron's sequences (sql/platform/01-extensions.sql).
-- And a run pg_cron marked failed at a restart before it started (no time at all), older
-- than the purged one: it goes with it.
insert into cron.job_run_details (runid, jobid, command, status, return_message, start_time, end_time) values
  (-999003, 999999, 'select 1', 'failed', 'server restarted', null, null),
  (-999001, 999999, 'select 1', 'succeeded', '1 row', now() - interval '8 days', now() - interval '8 days'),
  (-999002, 999999, 'select 1', 'succeeded', '1 row', now() - interval '6 days', now() - interval '6 days');

-- Backfill jobs of the segments table, finished 40 days ago: an older one (purged), one
-- a stale table points at (kept), the latest (kept); and a recent one of the actions.
insert into sync.backfill_jobs (source_table, total_segments, status, requested_at, started_at, finished_at)
select 'firespring-backdoor-segments-dev', 2, 'done', now() - interval '42 days' + g * interval '1 minute',
       now() - interval '42 days', now() - interval '40 days'
from generate_series(1, 3) g;
insert into sync.backfill_segments (job_id, segment, status) select id, 0, 'done' from sync.backfill_jobs;
insert into sync.table_state (target_table, stale_since, stale_reason, backfill_job_id)
select 'firespring_segments', null, 'trimmed', id from sync.backfill_jobs order by requested_at offset 1 limit 1;
insert into sync.backfill_jobs (source_table, total_segments, status, started_at, finished_at)
values ('firespring-backdoor-actions-dev', 1, 'done', now() - interval '2 days', now() - interval '2 days');

-- Checksum runs of the actions table, 40 days old: two done (the older purged, the
-- latest done kept), a later failed one (kept: the latest run); and a recent one.
insert into public.sync_checksums (target_table, status, started_at, checked_at, match) values
  ('firespring_actions', 'done', now() - interval '42 days', now() - interval '42 days', true),
  ('firespring_actions', 'done', now() - interval '41 days', now() - interval '41 days', true),
  ('firespring_actions', 'failed', now() - interval '40 days', null, null),
  ('firespring_segments', 'done', now() - interval '1 day', now() - interval '1 day', true);

create temp table purged as select sync.purge_expired() as result;
select is((select result from purged),
  '{"tombstones": 1, "cron_history": 2, "dead_letters": 1, "backfill_jobs": 2, "sync_checksums": 1,
    "webhook_deliveries": 1, "deleted_observations": 2, "incomplete": [],
    "stream_notes": 0, "write_backs": 0, "validation_staging": 0}'::jsonb,
  'purge_expired reports the rows it removed per kind (a backfill job and its segment: 2)');
-- The superseded observations, a table per transaction (pg_cron's turn, every minute).
select is(sync.purge_superseded_turn(),
  '{"table": "firespring_extraction_jobs", "superseded_observations": 0, "complete": true}'::jsonb,
  'the turn goes to a collapsed table never purged, in name order');
select is(sync.purge_superseded_turn(),
  '{"table": "firespring_visitors", "superseded_observations": 1, "complete": true}'::jsonb,
  'then to the other, reporting what it removed');
update sync.superseded_purge_turns set purged_at = now() - interval '1 hour'
where target_table = 'firespring_visitors';
select is(sync.purge_superseded_turn() ->> 'table', 'firespring_visitors',
  'then to the one purged longest ago, whatever its name');

select results_eq($$select row_key ->> 'segment_id' from sync.tombstones$$, $$values ('young')$$,
  'a tombstone is purged after tombstone_retention and kept before');
select results_eq(
  $$select row_key ->> 'visitor_id', range_key::int from sync.observations order by 1, 2$$,
  $$values ('v1'::text, 300), ('v2', 100), ('v2', 200)$$,
  'deleted observations, and ones superseded for the whole retention, are purged; the held ones stay');
select ok(exists (select from sync.observations where row_key = '{"visitor_id": "v1"}' and range_key = 300),
  'the held observation is never purged, however old');
select ok(exists (select from sync.observations where row_key = '{"visitor_id": "v2"}' and range_key = 100),
  'one recorded long ago but superseded just now stays: a removal of the held one falls back to it');
select set_eq($$select to_jsonb(v) from public.firespring_visitors v$$,
  $$select to_jsonb(v) from visitors_before v$$, 'no row of the collapsed table changed');
select results_eq($$select record ->> 'n' from sync.dead_letters order by id$$, $$values ('2'), ('3'), ('4')$$,
  'a replayed dead letter is purged after dead_letter_retention; younger ones, open ones and ones seen again since stay');
-- Only this test's ids: the stack's background tests may deliver to the webhook meanwhile.
select results_eq($$select webhook_id from sync.webhook_deliveries where webhook_id in ('msg_old', 'msg_young')$$, $$values ('msg_young')$$,
  'a webhook-id is purged after webhook_id_retention and kept before');
select is((select count(*)::int from cron.job_run_details where end_time < now() - interval '7 days'), 0,
  'pg_cron history older than cron_history_retention is purged');
select is((select count(*)::int from cron.job_run_details where jobid = 999999), 1, 'younger history stays');
select is((select count(*)::int from sync.backfill_jobs), 3,
  'an old finished backfill job is purged; the latest of its table, one a table_state points at and a recent one stay');
select is((select count(*)::int from sync.backfill_segments), 2, 'the purged job''s segments went with it');
select results_eq(
  $$select target_table, status from public.sync_checksums order by started_at$$,
  $$values ('firespring_actions'::text, 'done'::text), ('firespring_actions', 'failed'), ('firespring_segments', 'done')$$,
  'an old checksum run is purged; the latest run and the latest done run of a table stay');

select is(sync.purge_expired(),
  '{"tombstones": 0, "cron_history": 0, "dead_letters": 0, "backfill_jobs": 0, "sync_checksums": 0,
    "webhook_deliveries": 0, "deleted_observations": 0, "incomplete": [],
    "stream_notes": 0, "write_backs": 0, "validation_staging": 0}'::jsonb,
  'a second run finds nothing more');

-- A pass takes a batch of each kind in turn until every kind is complete; a run out of
-- time names what it left.
insert into sync.webhook_deliveries (webhook_id, received_at)
select 'msg_many_' || g, now() - interval '1 hour' from generate_series(1, 12001) g;
insert into sync.tombstones (target_table, row_key, sync_sequence, deleted_at, recorded_at)
select 'firespring_searches', jsonb_build_object('search_id', 'many' || g), g,
       now() - interval '3 days', now() - interval '3 days'
from generate_series(1, 7000) g;
create temp table first_pass as select sync.purge_expired('0 seconds') as result;
select results_eq(
  $$select (result ->> 'webhook_deliveries')::int, (result ->> 'tombstones')::int,
           (select array_agg(k order by k) from jsonb_array_elements_text(result -> 'incomplete') k)
    from first_pass$$,
  $$values (5000, 5000, array['tombstones', 'webhook_deliveries'])$$,
  'a run out of time still takes a batch of every kind (the first pass), and names those it left');
create temp table many as select sync.purge_expired() as result;
select results_eq(
  $$select (result ->> 'webhook_deliveries')::int, (result ->> 'tombstones')::int, result -> 'incomplete'
    from many$$,
  $$values (7001, 2000, '[]'::jsonb)$$,
  'a run goes on, batch after batch, until each kind is complete');
select is((select count(*)::int from sync.webhook_deliveries where webhook_id like 'msg\_many\_%')
          + (select count(*)::int from sync.tombstones where row_key ->> 'search_id' like 'many%'), 0,
  'and leaves none of them');
-- A finished run whose staging rows are not gone yet stays until they are: they would go
-- with it in one statement.
insert into public.sync_checksums (target_table, status, started_at, checked_at, match)
values ('firespring_searches', 'done', now() - interval '40 days', now() - interval '40 days', true),
       ('firespring_searches', 'done', now() - interval '1 day', now() - interval '1 day', true);
insert into sync.checksum_seen (run_id, key_hash, row_key)
select (select min(id) from public.sync_checksums where target_table = 'firespring_searches'), g,
       jsonb_build_object('search_id', 'staged' || g)
from generate_series(1, 3) g;
select is((select removed from sync.purge_expired_batch('sync_checksums', 5000)), 0::bigint,
  'a finished run whose staging rows are left is not purged');
select is((select removed from sync.purge_expired_batch('validation_staging', 5000)), 3::bigint,
  'its staging rows go first, a batch at a time');
select is((select removed from sync.purge_expired_batch('sync_checksums', 5000)), 1::bigint,
  'then the run');
select throws_ok($$select * from sync.purge_expired_batch('everything', 1)$$, '22023',
  'sync.purge_expired_batch: everything is not a kind of retention',
  'a kind it does not know is named');
select is((sync.purge_superseded('firespring_visitors') ->> 'superseded_observations')::int, 0,
  'nor a second purge of the superseded observations');

-- Open dead letters are never purged, whatever the setting.
update sync.settings set value = '0 seconds' where key = 'dead_letter_retention';
select sync.purge_expired();
select results_eq($$select record ->> 'n' from sync.dead_letters order by id$$, $$values ('3')$$,
  'with dead_letter_retention at 0 only the open dead letter stays');

-- Settings are read from sync.settings at each run.
update sync.settings set value = '24 hours' where key = 'tombstone_retention';
select is((sync.purge_expired() ->> 'tombstones')::int, 1, 'a shorter tombstone_retention purges more');
select is((select count(*)::int from sync.tombstones), 0, 'the 47 h tombstone went with a 24 hour retention');
update sync.settings set value = '24 hours' where key = 'observation_retention';
select sync.merge_changes('firespring_visitors', jsonb_build_array(tests.visitor_change('upsert', 'v2', 300, '31', 3)));
delete from visitors_before where visitor_id = 'v2';
insert into visitors_before select * from public.firespring_visitors where visitor_id = 'v2';
select is((sync.purge_superseded('firespring_visitors') ->> 'superseded_observations')::int, 0,
  'a superseded observation recorded less than observation_retention ago stays');
update sync.observations set recorded_at = now() - interval '25 hours', live_since = now() - interval '25 hours'
where row_key = '{"visitor_id": "v2"}' and range_key = 200;
select is((sync.purge_superseded('firespring_visitors') ->> 'superseded_observations')::int, 1,
  'once the one after it is older, the first goes');
select results_eq(
  $$select range_key::int from sync.observations where row_key = '{"visitor_id": "v2"}' order by 1$$,
  $$values (200), (300)$$, 'and the second stays, superseded by one recorded just now');
update sync.observations set recorded_at = now() - interval '25 hours', live_since = now() - interval '25 hours'
where row_key = '{"visitor_id": "v2"}' and range_key = 300;
select is((sync.purge_superseded('firespring_visitors') ->> 'superseded_observations')::int, 1,
  'it goes once that one is older too');
select set_eq($$select to_jsonb(v) from public.firespring_visitors v$$,
  $$select to_jsonb(v) from visitors_before v$$, 'still no row changed');
update sync.settings set value = '48 hours' where key in ('tombstone_retention', 'observation_retention');

-- Tombstones stay while a backfill that started before them runs: one recorded 3 days
-- ago (before the backfill started) goes, one recorded 2.5 days ago stays.
insert into sync.backfill_jobs (source_table, total_segments, status, started_at)
values ('firespring-backdoor-actions-dev', 1, 'running', now() - interval '70 hours'),
       ('firespring-backdoor-extraction-jobs-dev', 1, 'running', now() - interval '70 hours');
insert into sync.tombstones (target_table, row_key, sync_sequence, deleted_at, recorded_at) values
  ('firespring_actions', '{"action_id": "before"}', 1, now() - interval '72 hours', now() - interval '72 hours'),
  ('firespring_actions', '{"action_id": "during"}', 2, now() - interval '60 hours', now() - interval '60 hours');
select sync.merge_changes('firespring_extraction_jobs', jsonb_build_array(
  jsonb_build_object('op', 'delete', 'seq', '5', 'changed_at', '2026-02-06T10:00:00Z', 'source', 'stream',
    'range_key', 100, 'rank', 0, 'row', '{"job_id": "j1"}'::jsonb),
  jsonb_build_object('op', 'delete', 'seq', '6', 'changed_at', '2026-02-06T10:00:00Z', 'source', 'stream',
    'range_key', 100, 'rank', 0, 'row', '{"job_id": "j2"}'::jsonb)));
update sync.observations set recorded_at = now() - interval '60 hours' where row_key = '{"job_id": "j1"}';
update sync.observations set recorded_at = now() - interval '72 hours' where row_key = '{"job_id": "j2"}';
select sync.purge_expired();
select results_eq($$select row_key ->> 'action_id' from sync.tombstones where target_table = 'firespring_actions'$$,
  $$values ('during')$$,
  'a tombstone recorded after the start of a running backfill stays past its retention');
select results_eq(
  $$select row_key ->> 'job_id' from sync.observations where target_table = 'firespring_extraction_jobs'
      and row_key ->> 'job_id' in ('j1', 'j2')$$,
  $$values ('j1')$$,
  'so does a deleted observation of its table; one recorded before the backfill started goes');
update sync.backfill_jobs set status = 'done', finished_at = now()
where status = 'running' and source_table = 'firespring-backdoor-extraction-jobs-dev';
select sync.purge_expired();
select is((select count(*)::int from sync.observations where row_key = '{"job_id": "j1"}'), 0,
  'a running backfill holds its own table''s tombstones only: another table''s deleted observation goes');
update sync.backfill_jobs set status = 'done', finished_at = now() where status = 'running';
select sync.purge_expired();
select is((select count(*)::int from sync.tombstones), 0, 'once the backfill is done the tombstone goes');
select is((select count(*)::int from sync.observations where row_key = '{"job_id": "j1"}'), 0,
  'and the deleted observation');

-- The superseded observations are walked in batches with a cursor that steps over the
-- held ones (oldest first, so the held ones come last): one observation per statement.
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  tests.visitor_change('upsert', 'v4', 100, '40', 1), tests.visitor_change('upsert', 'v4', 200, '41', 2),
  tests.visitor_change('upsert', 'v4', 300, '42', 3), tests.visitor_change('upsert', 'v5', 100, '43', 1),
  tests.visitor_change('upsert', 'v5', 200, '44', 2)));
update sync.observations set recorded_at = now() - interval '3 days' + range_key * interval '1 second', live_since = now() - interval '3 days' + range_key * interval '1 second'
where target_table = 'firespring_visitors';
update public.firespring_visitors set synced_at = now() - interval '3 days';
select results_eq(
  $$select removed, complete from sync.purge_superseded_observations(
      'firespring_visitors', now() - interval '1 hour', 1, 2, clock_timestamp() + interval '1 minute')$$,
  $$values (2::bigint, false)$$,
  'a run that reaches its bound says it is incomplete');
select results_eq(
  $$select removed, complete from sync.purge_superseded_observations(
      'firespring_visitors', now() - interval '1 hour', 1, 100, clock_timestamp() + interval '1 minute')$$,
  $$values (1::bigint, true)$$,
  'the next run finishes the rest, one observation per statement');
select results_eq(
  $$select row_key ->> 'visitor_id', range_key::int from sync.observations
    where row_key ->> 'visitor_id' in ('v4', 'v5') order by 1, 2$$,
  $$values ('v4'::text, 300), ('v5', 200)$$,
  'only the held observations are left');
select results_eq(
  $$select removed, complete from sync.purge_superseded_observations(
      'firespring_visitors', now() - interval '1 hour', 1, 100, clock_timestamp() - interval '1 second')$$,
  $$values (0::bigint, false)$$,
  'past its time budget a run starts no statement and says it is incomplete');
select throws_ok(
  $$select * from sync.purge_superseded_observations('firespring_actions', now(), 1, 1, now())$$, '22023',
  'sync.purge_superseded_observations: firespring_actions is not a collapsed target table',
  'only collapsed tables have superseded observations');

-- The walk goes on from where the last run stopped: observations a row holds (never
-- purged) ahead of a superseded one no longer stop every run at the same place.
delete from sync.purge_cursors;
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  tests.visitor_change('upsert', 'v6', 100, '46', 1), tests.visitor_change('upsert', 'v7', 100, '47', 1),
  tests.visitor_change('upsert', 'v7', 200, '48', 2)));
update sync.observations set recorded_at = now() - interval '5 days', live_since = now() - interval '5 days'
where row_key = '{"visitor_id": "v6"}';
update sync.observations set recorded_at = now() - interval '4 days', live_since = now() - interval '4 days'
where row_key = '{"visitor_id": "v7"}';
update public.firespring_visitors set synced_at = now() - interval '3 days';
select results_eq(
  $$select removed, complete from sync.purge_superseded_observations(
      'firespring_visitors', now() - interval '1 hour', 1, 1, clock_timestamp() + interval '1 minute')$$,
  $$values (0::bigint, false)$$,
  'a run that walked only a held observation stops there...');
select results_eq(
  $$select removed, complete from sync.purge_superseded_observations(
      'firespring_visitors', now() - interval '1 hour', 1, 1, clock_timestamp() + interval '1 minute')$$,
  $$values (1::bigint, false)$$,
  '...and the next goes on past it, to the superseded one');
select is((select count(*)::int from sync.observations where row_key = '{"visitor_id": "v7"}'), 1,
  'v7 keeps only its held observation');

-- A backfill reading every item again (one run more often than observation_retention)
-- records each observation anew but keeps when it became live: the superseded one still
-- goes. (By recorded_at, such a table never had one purged.)
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  tests.visitor_change('upsert', 'v8', 100, '50', 1), tests.visitor_change('upsert', 'v8', 200, '51', 2)));
update sync.observations set recorded_at = now() - interval '3 days', live_since = now() - interval '3 days'
where row_key = '{"visitor_id": "v8"}';
update public.firespring_visitors set synced_at = now() - interval '3 days' where visitor_id = 'v8';
select sync.merge_changes('firespring_visitors', (
  select jsonb_agg(c || jsonb_build_object('source', 'backfill', 'seq', null, 'changed_at', now()))
  from jsonb_array_elements(jsonb_build_array(tests.visitor_change('upsert', 'v8', 100, '0', 1),
                                              tests.visitor_change('upsert', 'v8', 200, '0', 2))) c));
select results_eq(
  $$select range_key::int, sync_source, recorded_at = now(), live_since < now() - interval '2 days'
    from sync.observations where row_key = '{"visitor_id": "v8"}' order by 1$$,
  $$values (100, 'backfill'::text, true, true), (200, 'backfill', true, true)$$,
  'a backfill reading both again records them anew and keeps when they became live');
select is((sync.purge_superseded('firespring_visitors') ->> 'superseded_observations')::int, 1,
  'so the one superseded for the whole retention still goes');
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  tests.visitor_change('delete', 'v8', 200, '60', null) || jsonb_build_object('changed_at', now() + interval '1 minute')));
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  tests.visitor_change('upsert', 'v8', 200, '61', 3) || jsonb_build_object('changed_at', now() + interval '2 minutes')));
select ok((select live_since = now() from sync.observations
           where row_key = '{"visitor_id": "v8"}' and range_key = 200),
  'an observation put again after its delete is live from then');

-- A repair reading a live observation again keeps when it became live; one putting a
-- deleted one back makes it live from then, and so it stays a retention more, even below
-- one live for the whole retention (the walk reads only observations that old).
select sync.merge_changes('firespring_visitors', jsonb_build_array(
  tests.visitor_change('upsert', 'v9', 100, '70', 1), tests.visitor_change('upsert', 'v9', 200, '71', 2)));
select sync.merge_changes('firespring_visitors', jsonb_build_array(tests.visitor_change('delete', 'v9', 100, '72', null)));
update sync.observations set recorded_at = now() - interval '3 days', live_since = now() - interval '3 days'
where row_key = '{"visitor_id": "v9"}';
select sync.merge_changes('firespring_visitors', (
  select jsonb_agg(c || jsonb_build_object('source', 'repair', 'seq', null, 'changed_at', now(),
                                           'seen_at', now()))
  from jsonb_array_elements(jsonb_build_array(tests.visitor_change('upsert', 'v9', 100, '0', 1),
                                              tests.visitor_change('upsert', 'v9', 200, '0', 2))) c));
select results_eq(
  $$select range_key::int, sync_source, deleted, live_since = now()
    from sync.observations where row_key = '{"visitor_id": "v9"}' order by 1$$,
  $$values (100, 'repair'::text, false, true), (200, 'repair', false, false)$$,
  'a repair putting a deleted observation back makes it live from then; reading a live one again keeps when it became live');
select sync.purge_superseded('firespring_visitors');
select results_eq(
  $$select range_key::int from sync.observations where row_key = '{"visitor_id": "v9"}'$$,
  $$values (100), (200)$$,
  'one live only since now stays, though the one after it has been live for the whole retention');

-- A tombstone stays while an open dead letter of its key waits for its replay: the
-- letter's change is older than the delete, and would bring the row back without it.
insert into sync.tombstones (target_table, row_key, sync_sequence, deleted_at, recorded_at) values
  ('firespring_segments', '{"segment_id": "lettered"}', 9, now() - interval '4 days', now() - interval '4 days');
insert into sync.dead_letters (source_table, target_table, reason, record, row_key, position_seq)
values ('firespring-backdoor-segments-dev', 'firespring_segments', 'a value it could not map',
        '{"x": 1}', '{"segment_id": "lettered"}', 5);
select sync.purge_expired();
select is((select count(*)::int from sync.tombstones where row_key = '{"segment_id": "lettered"}'), 1,
  'an open dead letter of its key keeps a tombstone past its retention');
update sync.dead_letters set replayed_at = now(), replay_result = 'skipped'
where row_key = '{"segment_id": "lettered"}';
select sync.purge_expired();
select is((select count(*)::int from sync.tombstones where row_key = '{"segment_id": "lettered"}'), 0,
  'once the letter is replayed, the tombstone goes');
-- The same for a deleted observation (a collapsed table's delete is its own tombstone).
select sync.merge_changes('firespring_extraction_jobs', jsonb_build_array(
  jsonb_build_object('op', 'delete', 'seq', '7', 'changed_at', '2026-02-06T10:00:00Z', 'source', 'stream',
    'range_key', 100, 'rank', 0, 'row', '{"job_id": "lettered"}'::jsonb)));
update sync.observations set recorded_at = now() - interval '4 days' where row_key = '{"job_id": "lettered"}';
insert into sync.dead_letters (source_table, target_table, reason, record, row_key)
values ('firespring-backdoor-extraction-jobs-dev', 'firespring_extraction_jobs', 'a value it could not map',
        '{"x": 2}', '{"job_id": "lettered"}');
select sync.purge_expired();
select is((select count(*)::int from sync.observations where row_key = '{"job_id": "lettered"}'), 1,
  'an open dead letter of its key keeps a deleted observation past its retention');

-- An open dead letter whose record named no key may name any key once mended: it holds
-- its table's tombstones and deleted observations recorded after its record's position
-- (less ten minutes), not those recorded before, nor another table's.
insert into sync.tombstones (target_table, row_key, sync_sequence, deleted_at, recorded_at) values
  ('firespring_segments', '{"segment_id": "before"}', 1, now() - interval '6 days', now() - interval '6 days'),
  ('firespring_segments', '{"segment_id": "after"}', 2, now() - interval '4 days', now() - interval '4 days'),
  ('firespring_searches', '{"search_id": "other"}', 3, now() - interval '4 days', now() - interval '4 days');
insert into sync.dead_letters (source_table, target_table, reason, record, position_seq, position_at)
values ('firespring-backdoor-segments-dev', 'firespring_segments', 'Keys: segment_id is missing',
        '{"x": 3}', 4, now() - interval '5 days');
select sync.merge_changes('firespring_extraction_jobs', jsonb_build_array(
  jsonb_build_object('op', 'delete', 'seq', '8', 'changed_at', '2026-02-06T10:00:00Z', 'source', 'stream',
    'range_key', 100, 'rank', 0, 'row', '{"job_id": "unkeyed"}'::jsonb)));
update sync.observations set recorded_at = now() - interval '4 days' where row_key = '{"job_id": "unkeyed"}';
insert into sync.dead_letters (source_table, target_table, reason, record)
values ('firespring-backdoor-extraction-jobs-dev', 'firespring_extraction_jobs', 'Keys: job_id is missing',
        '{"x": 4}');
select sync.purge_expired();
select results_eq($$select target_table, row_key::text from sync.tombstones
                    where row_key ->> 'segment_id' in ('before', 'after') or row_key ->> 'search_id' = 'other'$$,
  $$values ('firespring_segments'::text, '{"segment_id": "after"}'::text)$$,
  'an open dead letter that names no key keeps its table''s tombstones recorded after its position, no others');
select is((select count(*)::int from sync.observations where row_key = '{"job_id": "unkeyed"}'), 1,
  'an open dead letter that names no key, nor a position, keeps every deleted observation of its table');
update sync.dead_letters set replayed_at = now(), replay_result = 'skipped'
where row_key is null and record ->> 'x' in ('3', '4');
select sync.purge_expired();
select is((select count(*)::int from sync.tombstones where row_key = '{"segment_id": "after"}')
          + (select count(*)::int from sync.observations
           where row_key = '{"job_id": "unkeyed"}'), 0,
  'once those letters are replayed, the tombstone and the deleted observation go');

-- A backfill whose segments ended long ago, and whose end (its sweep) walks on, is making
-- progress: it is left running.
insert into sync.backfill_jobs (source_table, total_segments, status, requested_at, started_at,
                                sweep_state)
values ('firespring-backdoor-searches-dev', 1, 'running', now() - interval '4 days',
        now() - interval '4 days', jsonb_build_object('phase', 'rows', 'at', now() - interval '1 minute'));
insert into sync.backfill_segments (job_id, segment, status, updated_at)
select id, 0, 'done', now() - interval '3 days' from sync.backfill_jobs
where source_table = 'firespring-backdoor-searches-dev' and status = 'running';
select sync.purge_expired();
select is((select status from sync.backfill_jobs where source_table = 'firespring-backdoor-searches-dev'
           order by id desc limit 1), 'running',
  'a backfill whose end walked a minute ago is not failed for its segments'' old progress');
delete from sync.backfill_jobs where source_table = 'firespring-backdoor-searches-dev';

-- A backfill that has made no progress for longer than tombstones are kept fails, saying
-- so, and holds its table's tombstones no longer. (Of a table whose older backfills are
-- gone: one that ended since counts as when this one could start, sync.backfill_ready_since.)
insert into sync.backfill_jobs (source_table, total_segments, status, requested_at, started_at)
values ('firespring-backdoor-searches-dev', 1, 'running', now() - interval '4 days', now() - interval '4 days');
insert into sync.backfill_segments (job_id, segment, status, updated_at)
select id, 0, 'pending', now() - interval '3 days' from sync.backfill_jobs where status = 'running';
select is(
  (select jsonb_array_length(sync.purge_expired() -> 'stalled_backfills_failed')), 1,
  'the purge fails a backfill without progress for longer than tombstone_retention, and says which');
select matches(
  (select error from sync.backfill_jobs where source_table = 'firespring-backdoor-searches-dev'
   order by id desc limit 1),
  '^no progress since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, longer than tombstones are kept \(tombstone_retention, 48 hours\): its workers stopped; start the backfill again$',
  'its error says why and what to do');

-- A setting that cannot be used is refused when it is written, naming it and the cause:
-- retention is one transaction a minute, and a value it could not use would stop every
-- kind of it.
select throws_ok($$update sync.settings set value = 'soon' where key = 'tombstone_retention'$$, '22023',
  'sync.settings tombstone_retention = ''soon'' is not an interval (e.g. ''48 hours'')',
  'a value that is not an interval is refused, naming it');
select throws_ok($$update sync.settings set value = '-1 hour' where key = 'tombstone_retention'$$, '22023',
  'sync.settings tombstone_retention = ''-1 hour'' is negative', 'a negative one too');
select throws_ok($$update sync.settings set value = '1 second' where key = 'webhook_id_retention'$$,
  '22023', null, 'a webhook_id_retention shorter than twice the signature window is refused');
select throws_ok($$update sync.settings set value = '23 hours' where key = 'observation_retention'$$, '22023',
  'sync.settings observation_retention = ''23 hours'' is shorter than the stream''s 24 hours, so a stream record arriving late could bring back a deleted item or an older state; set it to 24 hours or more',
  'an observation_retention shorter than the stream''s 24 hours is refused, naming it');
select throws_ok($$update sync.settings set value = '1 hour' where key = 'tombstone_retention'$$,
  '22023', null, 'so is a tombstone_retention shorter than 24 hours');
-- A bare number is seconds to Postgres, and was meant otherwise: refused, naming it.
select throws_ok($$update sync.settings set value = '48' where key = 'stream_note_retention'$$, '22023',
  'sync.settings stream_note_retention = ''48'' has no unit; write it as an interval (e.g. ''48 hours'')',
  'a number without a unit is refused, naming the setting');
select throws_ok($$update sync.settings set value = '26 hours' where key = 'stream_note_retention'$$, '22023',
  'sync.settings stream_note_retention = ''26 hours'' is shorter than the stream''s 24 hours and the 3 hours between lost-record checks, so applied records would look lost and every table be backfilled; set it to 27 hours or more',
  'stream notes kept less than the stream and a check interval are refused');
select throws_ok($$update sync.settings set value = '1 hour' where key = 'backfill_job_retention'$$,
  '22023', null, 'finished backfills kept less than a day are refused');
select throws_like($$update sync.settings set value = '300000 years' where key = 'dead_letter_retention'$$,
  '%dead_letter_retention = ''300000 years'' is longer than 100 years%',
  'a period past any timestamp is named, not a timestamp out of range');
select throws_ok($$insert into sync.settings (key, value, description) values ('new_retention', 'soon', 'x')$$,
  '22023', 'sync.settings new_retention = ''soon'' is not an interval (e.g. ''48 hours'')',
  'a retention setting inserted is checked too');
select throws_ok($$delete from sync.settings where key = 'cron_history_retention'$$, '22023',
  'sync.settings cron_history_retention cannot be deleted: retention reads it at every run; set its value instead (README, "Retention")',
  'a retention setting cannot be deleted');
select lives_ok($$update sync.settings set value = '72 hours' where key = 'tombstone_retention'$$,
  'a usable value is taken');
update sync.settings set value = '48 hours' where key = 'tombstone_retention';
-- One that got in anyway (the check disabled) stops the run, naming it.
alter table sync.settings disable trigger settings_retention_checked;
update sync.settings set value = 'soon' where key = 'tombstone_retention';
select throws_ok($$select sync.purge_expired()$$, '22023',
  'sync.settings tombstone_retention = ''soon'' is not an interval (e.g. ''48 hours'')',
  'a value that got in anyway is named by the run');
delete from sync.settings where key = 'cron_history_retention';
update sync.settings set value = '48 hours' where key = 'tombstone_retention';
select throws_ok($$select sync.purge_expired()$$, '22023',
  'sync.settings has no row cron_history_retention; insert it again (README, "Retention")',
  'a missing setting is named');
alter table sync.settings enable trigger settings_retention_checked;

select * from finish();
rollback;
