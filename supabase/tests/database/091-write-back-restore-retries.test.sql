-- A write-back's restore that fails is left due and tried again, a conflict keeping its
-- status; the sweep wakes the function only for what a claim hands out; a phone-only
-- admin is named as the editor (supabase/migrations/20261128003900_write_back_restore_retries.sql).
set client_min_messages = warning;
begin;
select plan(11);

delete from sync.write_backs;
update sync.settings set value = '8' where key = 'write_back_max_attempts';

-- A conflict whose restore failed: left due, its lease a minute, its status kept.
insert into sync.write_backs (target_table, row_key, edited_by, edited_role, columns,
  before_values, after_values, attempts, lease_owner, lease_expires_at)
values ('firespring_segments', '{"segment_id": "r-1"}', 'postgres', 'postgres',
  array['segment_name'], '{"segment_name": "a"}', '{"segment_name": "b"}', 1, 'w-1',
  now() + interval '2 minutes');
create temporary table edit as
  select id from sync.write_backs where row_key = '{"segment_id": "r-1"}';
select ok(sync.leave_write_back_restore((select id from edit), 'w-1', 'conflict',
    'firespring_segments [segment_id="r-1"]: the item changed', '; restoring it failed (Throttling)',
    '{"segment_name": "c"}'),
  'the run that holds it leaves the restore due');
select results_eq(
  $$select status, restore_due, detail, source_values,
           lease_expires_at between now() + interval '50 seconds' and now() + interval '70 seconds'
    from sync.write_backs where id = (select id from edit)$$,
  $$values ('conflict'::text, true,
            'firespring_segments [segment_id="r-1"]: the item changed; restoring it failed (Throttling)'::text,
            '{"segment_name": "c"}'::jsonb, true)$$,
  'a conflict, its detail and source values kept, its restore due in a minute');
select ok(not sync.write_back_work_pending(), 'nothing to do while that minute runs');
select throws_ok($$select sync.leave_write_back_restore(1, 'w-1', 'applied', 'x')$$, 'SY002', null,
  'only a conflict or a failure leaves a restore due');

-- The minute over, the next claim takes it, still a conflict.
update sync.write_backs set lease_expires_at = now() - interval '1 second' where id = (select id from edit);
select ok(sync.write_back_work_pending(), 'a restore due wakes the function');
select results_eq(
  $$select status, lease_owner, restores from sync.claim_write_backs('w-2', 10)$$,
  $$values ('conflict'::text, 'w-2'::text, 1)$$,
  'the claim hands it out again as a conflict, counting the try');
select ok(sync.end_write_back_restore((select id from edit), 'w-2', 'conflict', null,
    '; the row shows the source''s state again'), 'the restore that succeeds ends it');
select results_eq(
  $$select status, restore_due, lease_owner from sync.write_backs where id = (select id from edit)$$,
  $$values ('conflict'::text, false, null::text)$$, 'a conflict, restored');

-- An edit behind an older pending edit of its row is no work for the sweep: no claim
-- hands it out while the older one waits out its backoff.
insert into sync.write_backs (target_table, row_key, edited_by, edited_role, columns,
  before_values, after_values, attempts, next_attempt_at)
values ('firespring_segments', '{"segment_id": "r-2"}', 'postgres', 'postgres',
  array['segment_name'], '{"segment_name": "a"}', '{"segment_name": "b"}', 2, now() + interval '5 minutes'),
  ('firespring_segments', '{"segment_id": "r-2"}', 'postgres', 'postgres',
  array['segment_name'], '{"segment_name": "b"}', '{"segment_name": "c"}', 0, now());
select ok(not sync.write_back_work_pending(),
  'a due edit waiting behind an older pending edit of its row wakes nothing');
delete from sync.write_backs where row_key = '{"segment_id": "r-2"}';

-- A phone-only admin (Supabase Auth gives an empty email claim) is named by phone.
select * from sync.merge_changes('firespring_segments', $$[
  {"op": "upsert", "row": {"segment_id": "r-3", "segment_name": "x", "segment_criteria": {}},
   "seq": "300", "changed_at": "2026-11-28T10:00:00Z", "source": "stream"}]$$);
select set_config('request.jwt.claims', jsonb_build_object(
  'sub', '00000000-0000-4000-8000-000000000001', 'email', '', 'phone', '15550100',
  'role', 'authenticated', 'aud', 'authenticated', 'app_metadata', '{"role": "admin"}'::jsonb)::text, true);
set local role authenticated;
update public.firespring_segments set segment_name = 'edited by phone' where segment_id = 'r-3';
reset role;
select is((select edited_by from sync.write_backs where row_key = '{"segment_id": "r-3"}'),
  '15550100', 'a phone-only admin is named by phone, not by the empty email');
select set_config('request.jwt.claims', jsonb_build_object(
  'sub', '00000000-0000-4000-8000-000000000002', 'email', '', 'phone', '',
  'role', 'authenticated', 'aud', 'authenticated', 'app_metadata', '{"role": "admin"}'::jsonb)::text, true);
set local role authenticated;
update public.firespring_segments set segment_name = 'edited anonymously' where segment_id = 'r-3';
reset role;
select is((select edited_by from sync.write_backs where row_key = '{"segment_id": "r-3"}'
           order by id desc limit 1),
  '00000000-0000-4000-8000-000000000002', 'with neither, by the user''s id');

select * from finish();
rollback;
