-- Write-back (20261128002500_write_back.sql; docs/interfaces.md, "write-back"): the
-- trigger records admin edits of data columns and nothing else (never the merge's own
-- writes), the switch (on, off, cutover), the claim and its backoff, sync.status's
-- counts, and who may read sync.write_backs.
set client_min_messages = warning;
begin;
select tests.set_aside_validation_runs();
select plan(83);

-- Start from no write-backs (end-to-end runs leave theirs; all of this is rolled back).
delete from sync.write_backs;
-- The function's address in Vault, as deployed: its calls are queued to pg_net (sent
-- only once a transaction commits: never, here).
delete from vault.secrets where name in ('project_url', 'service_role_key');
select vault.create_secret('https://ref.example.co/', 'project_url');
select vault.create_secret('sb_secret_pgtap', 'service_role_key');
-- The calls made from here on: the count of all would shrink as calls are pruned (on a
-- stack that has run for a while, older calls go as new ones are made).
create temporary table calls_before as
  select coalesce(max(id), 0) as last_id from sync.function_calls;

select tests.create_supabase_user('wb_admin', '{"role": "admin"}');
select tests.create_supabase_user('wb_superuser', '{"role": "superuser"}');
select tests.create_supabase_user('wb_no_role');

-- Rows as the sync writes them: through the one merge.
select * from sync.merge_changes('firespring_segments', $$[
  {"op": "upsert", "row": {"segment_id": "g-1", "segment_name": "returning",
   "member_count": 12345678901234567890.5, "segment_criteria": {"raw": {"n": 1}}},
   "seq": "100", "changed_at": "2026-11-28T10:00:00Z", "source": "stream"},
  {"op": "upsert", "row": {"segment_id": "g-2", "segment_name": "new", "segment_criteria": {}},
   "seq": "101", "changed_at": "2026-11-28T10:00:00Z", "source": "stream"}
]$$);
select * from sync.merge_changes('firespring_actions', $$[
  {"op": "upsert", "row": {"action_id": "a-1", "action_type": "click",
   "occurred_at": "2026-11-28T10:00:00.000001Z", "action_data": {}},
   "seq": null, "changed_at": "2026-11-28T10:00:00Z", "source": "backfill"}
]$$);
select is((select count(*)::int from sync.write_backs), 0, 'the merge''s inserts record nothing');

-- The merge's updates record nothing either.
select * from sync.merge_changes('firespring_segments', $$[
  {"op": "upsert", "row": {"segment_id": "g-2", "segment_name": "renamed by the source",
   "segment_criteria": {}}, "seq": "102", "changed_at": "2026-11-28T10:00:01Z", "source": "stream"}
]$$);
select is((select segment_name from public.firespring_segments where segment_id = 'g-2'),
  'renamed by the source', 'the merge updated the row');
select is((select count(*)::int from sync.write_backs), 0, 'the merge''s updates record nothing');

-- Nor do the staged merge's (an export backfill's chunk).
insert into sync.staged_changes (ord, op, "row", seq, changed_at, source) values
  (1, 'upsert', '{"segment_id": "g-2", "segment_name": "renamed by an export", "segment_criteria": {}}',
   null, '2026-11-28T10:00:05Z', 'backfill');
select * from sync.merge_staged('firespring_segments');
select is((select segment_name from public.firespring_segments where segment_id = 'g-2'),
  'renamed by an export', 'the staged merge updated the row');
select is((select count(*)::int from sync.write_backs), 0,
  'the staged merge''s updates record nothing either');

-- An admin's edit through the Data API.
select tests.authenticate_as('wb_admin');
update public.firespring_segments set segment_name = 'Returning visitors',
  member_count = 98765432109876543210987654321.000001 where segment_id = 'g-1';
select tests.clear_authentication();
select is((select count(*)::int from sync.write_backs), 1, 'an admin''s update is recorded');
select results_eq(
  $$select target_table, row_key, edited_by, edited_role, columns, status, attempts
    from sync.write_backs$$,
  $$values ('firespring_segments', '{"segment_id": "g-1"}'::jsonb, 'wb_admin@test.local',
            'authenticated', array['member_count', 'segment_name'], 'pending', 0)$$,
  'with the table, key, who, the edited columns, pending'
);
select is((select before_values from sync.write_backs),
  '{"member_count": "12345678901234567890.5", "segment_name": "returning"}'::jsonb,
  'the values before, numbers with every digit as text');
select is((select after_values from sync.write_backs),
  '{"member_count": "98765432109876543210987654321.000001", "segment_name": "Returning visitors"}'::jsonb,
  'and after');
select is((select row_sequence::text || ' ' || row_source from sync.write_backs), '100 stream',
  'with the stamp of the change the row was built from');
select is((select write_backs_pending::int from sync.status where target_table = 'firespring_segments'),
  1, 'sync.status counts it as pending');
-- The statement that recorded it calls the function at once (the sweep is the fallback).
select is((select count(*)::int from sync.function_calls where function_name = 'write-back'
          and id > (select last_id from calls_before)),
  1, 'the edit''s statement calls write-back, the merges none');
select is((select count(*)::int from net.http_request_queue q
           join sync.function_calls f on f.request_id = q.id
           where f.function_name = 'write-back'
             and q.url like 'https://ref.example.co/functions/v1/write-back%'), 1,
  'through pg_net, to the project''s write-back function');
select is(coalesce(current_setting('sync.write_back_queued', true), ''), '',
  'the statement''s flag is reset for the next one');

-- A superuser's edit of a catch-all and a timestamp; the timestamp kept exactly, in UTC.
select tests.authenticate_as('wb_superuser');
set local timezone = 'America/New_York';
update public.firespring_actions set occurred_at = '2026-11-28T11:00:00.000002Z',
  action_data = '{"url": "/pricing"}' where action_id = 'a-1';
reset timezone;
select tests.clear_authentication();
select is(
  (select after_values from sync.write_backs where target_table = 'firespring_actions'),
  '{"occurred_at": "2026-11-28T11:00:00.000002Z", "action_data": {"url": "/pricing"}}'::jsonb,
  'a superuser''s edit: timestamps as UTC text with microseconds, jsonb as jsonb');

-- No role claim: RLS lets nothing through, nothing is recorded.
select is(tests.outcome_as('wb_no_role',
  $$update public.firespring_segments set segment_name = 'x' where segment_id = 'g-2'$$),
  'rows:0', 'a user without the admin claim changes nothing');
select is((select count(*)::int from sync.write_backs), 2, 'and records nothing');
select is((select count(*)::int from sync.function_calls where function_name = 'write-back'
          and id > (select last_id from calls_before)),
  1, 'one call per transaction that recorded edits: its later edits call no more');
-- A savepoint rolled back takes its call back with its edits: the next statement that
-- records an edit calls again. (On a row of its own, g-savepoint, whose edits then go.)
select * from sync.merge_changes('firespring_segments', $$[
  {"op": "upsert", "row": {"segment_id": "g-savepoint", "segment_name": "nine", "segment_criteria": {}},
   "seq": "109", "changed_at": "2026-11-28T10:00:00Z", "source": "stream"}
]$$);
select set_config('sync.write_back_woken', '', true);  -- as a new transaction begins
savepoint edits;
update public.firespring_segments set segment_name = 'rolled back' where segment_id = 'g-savepoint';
select is((select count(*)::int from sync.function_calls where function_name = 'write-back'
          and id > (select last_id from calls_before)),
  2, 'the first edit of a transaction calls write-back');
rollback to savepoint edits;
update public.firespring_segments set segment_name = 'kept' where segment_id = 'g-savepoint';
update public.firespring_segments set segment_name = 'kept again' where segment_id = 'g-savepoint';
select is((select count(*)::int from sync.function_calls where function_name = 'write-back'
          and id > (select last_id from calls_before)),
  2, 'after the rollback to the savepoint, the next edit calls again, once');
delete from sync.write_backs where row_key = '{"segment_id": "g-savepoint"}';

-- The database owner (Studio's table editor, the SQL editor) edits too.
update public.firespring_segments set segment_name = 'edited in Studio' where segment_id = 'g-2';
select is((select edited_by || '/' || edited_role from sync.write_backs
           where row_key = '{"segment_id": "g-2"}'), 'postgres/postgres',
  'an edit as postgres (Studio) is recorded too');

-- What is not an edit: sync columns only; a transaction that skips on purpose.
update public.firespring_segments set synced_at = synced_at - interval '1 minute';
select is((select count(*)::int from sync.write_backs), 3, 'changing only sync columns records nothing');
set local sync.write_back_skip = 'on';
update public.firespring_segments set segment_name = 'drift on purpose' where segment_id = 'g-2';
select is((select count(*)::int from sync.write_backs), 3,
  'the owner may skip on purpose (drift made for a test)');
select tests.authenticate_as('wb_admin');
update public.firespring_segments set segment_name = 'skip attempt' where segment_id = 'g-2';
select tests.clear_authentication();
select is((select count(*)::int from sync.write_backs), 4, 'an API user cannot skip');
-- Nor can a role of the admins' own granted UPDATE (docs/interfaces.md): any session may
-- set the setting, so only the owner and service_role are taken at their word.
create role wb_editor;
grant wb_editor to postgres;
grant usage on schema public to wb_editor;
grant select, update (segment_name) on public.firespring_segments to wb_editor;
create policy wb_editor_all on public.firespring_segments to wb_editor using (true) with check (true);
set local role wb_editor;
update public.firespring_segments set segment_name = 'skip attempt by a role' where segment_id = 'g-2';
reset role;
select is((select edited_role from sync.write_backs order by id desc limit 1), 'wb_editor',
  'a role the sync does not know cannot skip either: its edit is recorded');
delete from sync.write_backs where edited_role = 'wb_editor';
set local role service_role;
update public.firespring_segments set segment_name = 'drift by the service' where segment_id = 'g-2';
reset role;
select is((select count(*)::int from sync.write_backs), 4, 'service_role may skip on purpose');
reset sync.write_back_skip;

-- Edits of one row are claimed in order: only the oldest pending one.
select is(
  (select array_agg(id order by id) from sync.claim_write_backs('w-1', 10)),
  (select array_agg(id order by id) from (
     select min(id) as id from sync.write_backs group by target_table, row_key) f),
  'the claim takes the oldest pending edit of each row');
select is((select count(*)::int from sync.claim_write_backs('w-2', 10)), 0,
  'claimed ones are leased: nobody else takes them, nor the later edit of a leased row');
select is(
  sync.finish_write_back((select min(id) from sync.write_backs where row_key = '{"segment_id": "g-2"}'),
                         'w-1', 'pending', 'ThrottlingException'),
  'pending', 'a retry stays pending');
select ok(
  (select next_attempt_at > now() and lease_owner is null from sync.write_backs
   where id = (select min(id) from sync.write_backs where row_key = '{"segment_id": "g-2"}')),
  'with a backoff before the next attempt');
-- Many attempts allowed: the backoff stays at its 5 minutes (2^41 times 5 s is out of an
-- interval's range, which failed every later attempt's end).
update sync.settings set value = '50' where key = 'write_back_max_attempts';
insert into sync.write_backs (target_table, row_key, edited_by, edited_role, columns, before_values,
                              after_values, attempts, lease_owner, lease_expires_at)
values ('firespring_segments', '{"segment_id": "many"}', 'x', 'authenticated', '{segment_name}',
        '{}', '{}', 45, 'w-many', now() + interval '1 minute');
select is(sync.finish_write_back((select id from sync.write_backs where row_key = '{"segment_id": "many"}'),
                                 'w-many', 'pending', 'ThrottlingException'),
  'pending', 'the 45th attempt of 50 ends pending, its backoff in range');
select is((select next_attempt_at - now() from sync.write_backs where row_key = '{"segment_id": "many"}'),
  interval '5 minutes', 'and waits its 5 minutes');
delete from sync.write_backs where row_key = '{"segment_id": "many"}';
update sync.settings set value = '1' where key = 'write_back_max_attempts';
select is(
  sync.finish_write_back((select min(id) from sync.write_backs where target_table = 'firespring_actions'),
                         'w-1', 'pending', 'no credentials'),
  'failed', 'after the last attempt a retry is recorded as failed');
select matches((select detail from sync.write_backs where target_table = 'firespring_actions'),
  'no credentials \(gave up after 1 attempts\)', 'saying why and after how many attempts');
select results_eq(
  $$select restore_due, lease_owner, lease_expires_at from sync.write_backs where target_table = 'firespring_actions'$$,
  $$values (true, 'w-1'::text, now() + interval '2 minutes')$$,
  'its row''s restore is due, under the lease of the run that ended it');
select is(sync.finish_write_back(1, 'not-the-holder', 'applied', 'x'), null,
  'a worker that does not hold the lease ends nothing');
-- The edit of g-2 waits for its retry, its one attempt now all that is allowed: no claim
-- would take it again, so the next claim fails it (it blocked every later edit of g-2).
select results_eq(
  $$select status, detail ~ '^gave up after 1 attempts: write_back_max_attempts is now 1; the last attempt: '
    from sync.claim_write_backs('w-3', 10) where row_key = '{"segment_id": "g-2"}'$$,
  $$values ('failed'::text, true)$$,
  'an edit waiting for a retry when write_back_max_attempts was lowered below its attempts is failed, saying so');
-- Spent ones are failed a claim's batch at a time, oldest first: each costs the function
-- reads and a merge, whatever its budget.
insert into sync.write_backs (target_table, row_key, edited_by, edited_role, columns, before_values,
                              after_values, attempts)
select 'firespring_segments', jsonb_build_object('segment_id', 'spent-' || g), 'x', 'authenticated',
       '{segment_name}', '{}', '{}', 5
from generate_series(1, 3) g;
select results_eq(
  $$select row_key ->> 'segment_id', status from sync.claim_write_backs('w-4', 2)
    where status = 'failed' order by id$$,
  $$values ('spent-1', 'failed'), ('spent-2', 'failed')$$,
  'a claim fails at most its batch of spent write-backs, oldest first');
delete from sync.write_backs where row_key ->> 'segment_id' like 'spent-%';

-- Collapsed tables: the edit names the observation the row shows; its range key column
-- cannot be edited.
select * from sync.merge_changes('firespring_visitors', $$[
  {"op": "upsert", "row": {"visitor_id": "v-1", "page_views": 3,
   "last_visit_at": "2026-11-28T10:00:00Z", "session_data": {}},
   "seq": "200", "changed_at": "2026-11-28T10:00:00Z", "source": "stream",
   "range_key": "1795860000", "rank": 0}
]$$);
select tests.authenticate_as('wb_admin');
update public.firespring_visitors set page_views = 4 where visitor_id = 'v-1';
select tests.clear_authentication();
select is((select range_key::text from sync.write_backs where target_table = 'firespring_visitors'),
  '1795860000', 'a collapsed row''s edit names the observation the row shows');
select throws_like(
  $$update public.firespring_visitors set last_visit_at = now() where visitor_id = 'v-1'$$,
  'firespring_visitors [visitor_id=v-1]: last_visit_at comes from the range key of the item the row shows%',
  'its range key column is refused, naming the table, the key and why');

-- A timestamp no DynamoDB item can carry back is refused, naming the table, the key and
-- the value: infinity (to_char gives no text: the write-back would remove the attribute),
-- a date before the year 1 (to_char drops the era) or after 9999.
select throws_like(
  $$update public.firespring_actions set created_at = 'infinity' where action_id = 'a-1'$$,
  'firespring_actions [action_id=a-1]: created_at = infinity cannot be written back: DynamoDB''s items hold timestamps of the years 1 to 9999',
  'infinity is refused'
);
select throws_like(
  $$update public.firespring_actions set occurred_at = '0044-03-15 BC' where action_id = 'a-1'$$,
  'firespring_actions [action_id=a-1]: occurred_at = % BC cannot be written back%',
  'a date before the year 1 is refused'
);
select throws_like(
  $$update public.firespring_actions set occurred_at = '10000-01-01T00:00:00Z' where action_id = 'a-1'$$,
  'firespring_actions [action_id=a-1]: occurred_at = 10000-%cannot be written back%',
  'a date after 9999 is refused'
);

-- The key names the item: edited with data columns (as Studio saves a row), refused.
select throws_like(
  $$update public.firespring_segments set segment_id = 'g-9', segment_name = 'moved' where segment_id = 'g-1'$$,
  'firespring_segments [segment_id=g-1]: the key (segment_id) names the DynamoDB item an edit is written to, and an update cannot change it%',
  'a key edited with data columns is refused, naming the table, the key and why'
);

-- A write-back whose attempts are spent and whose last run never answered (its isolate
-- killed) is failed at the next claim, not claimed again for ever.
update sync.settings set value = '8' where key = 'write_back_max_attempts';
insert into sync.write_backs (target_table, row_key, edited_by, edited_role, columns,
  before_values, after_values, attempts, lease_owner, lease_expires_at)
values ('firespring_segments', '{"segment_id": "g-killed"}', 'postgres', 'postgres',
  array['segment_name'], '{"segment_name": "a"}', '{"segment_name": "b"}', 8, 'killed-run',
  now() - interval '1 second');
select results_eq(
  $$select status, attempts, lease_owner from sync.claim_write_backs('w-3', 10)
    where row_key = '{"segment_id": "g-killed"}'$$,
  $$values ('failed'::text, 8, 'w-3'::text)$$,
  'a write-back whose attempts are spent is not claimed again: it comes back failed, leased, for its row to be restored');
select results_eq(
  $$select status, detail like 'gave up after 8 attempts; the last run ended without an answer%may or may not have been applied%', restore_due
    from sync.write_backs where row_key = '{"segment_id": "g-killed"}'$$,
  $$values ('failed'::text, true, true)$$,
  'it is failed, saying why and that it may have been applied, its restore due'
);
select is((select count(*)::int from sync.claim_write_backs('w-5', 10)
           where row_key = '{"segment_id": "g-killed"}'), 0, 'nobody else takes it while the lease holds');
-- The run that was to restore it stops: once its lease has run out, the next claim takes
-- the restore, with the detail as it was.
update sync.write_backs set lease_expires_at = now() - interval '1 second'
where row_key = '{"segment_id": "g-killed"}';
select ok(sync.write_back_work_pending(), 'a restore left due wakes the function');
select results_eq(
  $$select status, lease_owner, detail like 'gave up after 8 attempts; the last run%'
    from sync.claim_write_backs('w-5', 10) where row_key = '{"segment_id": "g-killed"}'$$,
  $$values ('failed'::text, 'w-5'::text, true)$$,
  'the next claim takes a restore left due, failed, its detail as it was');
select ok(not sync.end_write_back_restore(
    (select id from sync.write_backs where row_key = '{"segment_id": "g-killed"}'), 'w-3', 'failed', 'x'),
  'the run that lost the lease ends nothing');
select ok(sync.end_write_back_restore(
    (select id from sync.write_backs where row_key = '{"segment_id": "g-killed"}'), 'w-5', 'failed',
    null, '; the row shows the source''s state again'),
  'the run that holds it ends the restore');
select results_eq(
  $$select status, restore_due, lease_owner, detail like '%may or may not have been applied%; the row shows the source''s state again'
    from sync.write_backs where row_key = '{"segment_id": "g-killed"}'$$,
  $$values ('failed'::text, false, null::text, true)$$,
  'failed, its restore done and said, its lease given back');
select throws_ok($$select sync.end_write_back_restore(1, 'w-5', 'pending', 'x')$$, 'SY002', null,
  'a restore ends applied, conflict or failed');
-- A restore whose function stopped every time: given up after three claims, saying so.
update sync.write_backs
set restore_due = true, restores = 3, lease_owner = 'w-5', lease_expires_at = now() - interval '1 second'
where row_key = '{"segment_id": "g-killed"}';
select is((select count(*)::int from sync.claim_write_backs('w-6', 10)
           where row_key = '{"segment_id": "g-killed"}'), 0, 'a third restore that never ended is not claimed again');
select results_eq(
  $$select restore_due, lease_owner, detail ~ '^firespring_segments \{"segment_id": "g-killed"\}: .*its row was not put back to the source''s state in 3 more tries'
    from sync.write_backs where row_key = '{"segment_id": "g-killed"}'$$,
  $$values (false, null::text, true)$$,
  'it is given up, its detail naming the table and the key, and saying so');
-- A restore still due is never purged, however old.
update sync.write_backs set restore_due = true, updated_at = now() - interval '400 days'
where row_key = '{"segment_id": "g-killed"}';
select sync.purge_expired_batch('write_backs', 5000);
select is((select count(*)::int from sync.write_backs where row_key = '{"segment_id": "g-killed"}'), 1,
  'a write-back whose restore is due is not purged');
delete from sync.write_backs where row_key = '{"segment_id": "g-killed"}';

-- A run holds its lease up to its UpdateItem, and gives back what it did not reach.
insert into sync.write_backs (target_table, row_key, edited_by, edited_role, columns,
  before_values, after_values)
values ('firespring_segments', '{"segment_id": "g-held"}', 'postgres', 'postgres',
  array['segment_name'], '{"segment_name": "a"}', '{"segment_name": "b"}');
select is((select count(*)::int from sync.claim_write_backs('run-a', 10)
           where row_key = '{"segment_id": "g-held"}'), 1, 'run a claims the edit');
update sync.write_backs set lease_expires_at = now() + interval '1 second'
where row_key = '{"segment_id": "g-held"}';
select ok(sync.hold_write_back((select id from sync.write_backs where row_key = '{"segment_id": "g-held"}'), 'run-a'),
  'the run that owns the lease holds it just before its write');
select is((select lease_expires_at from sync.write_backs where row_key = '{"segment_id": "g-held"}'),
  now() + interval '2 minutes', 'renewed for two minutes');
select ok(not sync.hold_write_back((select id from sync.write_backs where row_key = '{"segment_id": "g-held"}'), 'run-b'),
  'no other run holds it');
select sync.release_write_back((select id from sync.write_backs where row_key = '{"segment_id": "g-held"}'), 'run-b');
select results_eq(
  $$select attempts, lease_owner from sync.write_backs where row_key = '{"segment_id": "g-held"}'$$,
  $$values (1, 'run-a'::text)$$,
  'nor gives it back: the lease and the attempt stay run a''s');
select sync.release_write_back((select id from sync.write_backs where row_key = '{"segment_id": "g-held"}'), 'run-a');
select results_eq(
  $$select attempts, lease_owner from sync.write_backs where row_key = '{"segment_id": "g-held"}'$$,
  $$values (0, null::text)$$,
  'an edit given back untried keeps no lease, its attempt not counted');
select ok(not sync.hold_write_back((select id from sync.write_backs where row_key = '{"segment_id": "g-held"}'), 'run-a'),
  'and the run that gave it back holds it no more');
-- An edit that has ended is no longer given back, whoever asks.
update sync.write_backs set status = 'applied', lease_owner = 'run-a', attempts = 1
where row_key = '{"segment_id": "g-held"}';
select sync.release_write_back((select id from sync.write_backs where row_key = '{"segment_id": "g-held"}'), 'run-a');
select results_eq(
  $$select status, attempts, lease_owner from sync.write_backs where row_key = '{"segment_id": "g-held"}'$$,
  $$values ('applied'::text, 1, 'run-a'::text)$$,
  'an ended edit is left as it ended');
delete from sync.write_backs where row_key = '{"segment_id": "g-held"}';

-- The switch.
select throws_like($$update sync.settings set value = 'Cutover' where key = 'write_back'$$,
  '%settings_write_back_mode%',
  'a switch that is not on, off or cutover is refused as it is written');
update sync.settings set value = 'off' where key = 'write_back';
select throws_like(
  $$select tests.authenticate_as('wb_admin');
    update public.firespring_segments set segment_name = 'x' where segment_id = 'g-1'$$,
  'firespring_segments: write-back is off, so an edit of segment_name would be undone by the sync%',
  'off: an admin''s edit is refused, naming the table and why');
select tests.clear_authentication();
update sync.settings set value = 'cutover' where key = 'write_back';
select is(
  (select count(*)::int from sync.source_tables s
   where exists (select from pg_locks l
                 where l.locktype = 'advisory' and l.pid = pg_backend_pid() and l.objsubid = 2
                   and l.classid::bigint = hashtext('sync.merge_changes')::bigint & 4294967295
                   and l.objid::bigint = hashtext(s.target_table)::bigint & 4294967295)),
  (select count(*)::int from sync.source_tables),
  'the switch to cutover holds every table''s merge lock until it commits: merges in flight end first');
select tests.authenticate_as('wb_admin');
update public.firespring_segments set segment_name = 'after the cutover' where segment_id = 'g-1';
select tests.clear_authentication();
select is((select segment_name from public.firespring_segments where segment_id = 'g-1'),
  'after the cutover', 'cutover: the edit stays');
select is((select count(*)::int from sync.write_backs), 5, 'and nothing is written back');
select throws_like(
  $$select sync.merge_changes('firespring_segments', jsonb_build_array(jsonb_build_object(
      'op', 'upsert', 'row', jsonb_build_object('segment_id', 'g-1', 'segment_criteria', '{}'::jsonb),
      'seq', null, 'changed_at', now(), 'source', 'repair')))$$,
  'the sync is cut over (sync.settings write_back is cutover)%firespring_segments',
  'cutover: nothing from DynamoDB is merged over the edits (a repair, a re-read, a backfill by hand)');
select throws_like($$select sync.start_validation('firespring_segments', true)$$,
  'the sync is cut over%a repair of firespring_segments would merge%',
  'nor is a repair started, to be refused only after its whole scan');
-- SY005 is what the webhook and the validator's endpoint answer by (isCutOver, db_errors.ts).
select throws_ok($$select sync.merge_changes('firespring_segments', '[]'::jsonb)$$, 'SY005', null,
  'cutover: a merge is refused with SQLSTATE SY005');
select throws_ok($$select sync.start_validation('firespring_segments', true)$$, 'SY005', null,
  'and a repair too');
select lives_ok($$select sync.start_validation('firespring_segments', false)$$,
  'a validation alone still runs (it writes nothing)');
update sync.settings set value = 'on' where key = 'write_back';

-- Who may read sync.write_backs: the database owner only.
select is(tests.outcome_as('anon', 'select * from sync.write_backs'), 'error:42501',
  'anon may not read write-backs');
select is(tests.outcome_as('wb_admin', 'select * from sync.write_backs')
          || tests.outcome_as('service_role', 'select * from sync.write_backs'),
  'error:42501error:42501', 'neither may admins nor service_role (the sync schema is closed)');

-- Retention: ended write-backs older than write_back_retention go, pending ones stay.
update sync.write_backs set updated_at = now() - interval '31 days', status = 'pending';
update sync.write_backs set status = 'applied' where id = (select min(id) from sync.write_backs);
select is((select removed from sync.purge_expired_batch('write_backs', 5000)), 1::bigint,
  'the purge removes the ended write-back older than write_back_retention');
select is((select count(*)::int from sync.write_backs where status = 'pending'), 4,
  'and keeps every pending one, however old');
update sync.write_backs set status = 'failed' where id = (select min(id) from sync.write_backs);
update sync.write_backs set updated_at = now() where id = (select min(id) from sync.write_backs);
select is((select removed from sync.purge_expired_batch('write_backs', 5000)), 0::bigint,
  'a recently ended one stays');
update sync.write_backs set updated_at = now() - interval '31 days', restore_due = false
where id = (select min(id) from sync.write_backs);
select is((sync.purge_expired() ->> 'write_backs')::int, 1,
  'the purge is one kind of retention''s run (every minute, sync-retention)');

-- A timestamp is kept as the instant it is, whatever the session's DateStyle and zone:
-- read back from its own text, "IST" (Asia/Kolkata in DateStyle SQL) is Israel's. And a
-- numeric with every digit and its scale, a boolean and null as their text.
set local datestyle = 'SQL, DMY';
set local timezone = 'Asia/Kolkata';
delete from sync.write_backs;
update public.firespring_actions set created_at = '2026-12-02 01:00:00+00' where action_id = 'a-1';
update public.firespring_segments set member_count = 1.50 where segment_id = 'g-2';
update public.firespring_segments set member_count = null where segment_id = 'g-2';
reset datestyle;
reset timezone;
select is(
  (select after_values -> 'created_at' from sync.write_backs where target_table = 'firespring_actions'),
  '"2026-12-02T01:00:00.000000Z"'::jsonb,
  'a timestamp''s kept value does not depend on the session''s DateStyle');
select results_eq(
  $$select after_values from sync.write_backs where target_table = 'firespring_segments' order by id$$,
  $$values ('{"member_count": "1.50"}'::jsonb), ('{"member_count": null}'::jsonb)$$,
  'a numeric kept as its text, every digit and its scale; null as null');
select is(
  (select before_values from sync.write_backs where target_table = 'firespring_segments'
   order by id desc limit 1),
  '{"member_count": "1.50"}'::jsonb, 'and the value before an edit the same way');

select * from finish();
rollback;
