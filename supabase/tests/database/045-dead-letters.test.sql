-- sync.dead_letters (docs/sync-semantics.md, "Bad input"): one row per record (a unique
-- fingerprint), the position the record was streamed or read at, the row's key, and
-- the record kept whole even when jsonb cannot hold it.
set client_min_messages = warning;
begin;
select plan(13);

select col_type_is('sync', 'dead_letters', 'position_seq', 'numeric(40,0)',
  'a dead letter keeps its stream position');
select col_type_is('sync', 'dead_letters', 'position_at', 'timestamp with time zone',
  'a dead letter keeps the time it was streamed, read or sent');
select col_type_is('sync', 'dead_letters', 'row_key', 'jsonb', 'a dead letter names its row''s key');
select col_is_unique('sync', 'dead_letters', 'fingerprint', 'one dead letter per record');

insert into sync.dead_letters (source_table, target_table, record, reason, position_at,
  position_source, row_key, fingerprint)
values ('firespring-backdoor-actions-dev', 'firespring_actions', '{"item": {}}', 'poison',
  '2026-02-01 00:00:00+00', 'backfill', '{"action_id": "a-1"}', 'fp-045');

select throws_ok(
  $$insert into sync.dead_letters (record, reason, fingerprint) values ('{}', 'again', 'fp-045')$$,
  '23505', null, 'the same fingerprint cannot be a second dead letter'
);

-- What the sync does with a repeat (functions-shared/dead_letter_writer.ts): count it, keep the later read.
insert into sync.dead_letters as d (record, reason, position_at, position_source, fingerprint)
values ('{"item": {}}', 'poison', '2026-02-03 00:00:00+00', 'backfill', 'fp-045')
on conflict (fingerprint) do update
  set times_seen = d.times_seen + excluded.times_seen, last_seen_at = now(),
      position_at = greatest(d.position_at, excluded.position_at);
select results_eq(
  $$select times_seen, position_at from sync.dead_letters where fingerprint = 'fp-045'$$,
  $$values (2, '2026-02-03 00:00:00+00'::timestamptz)$$,
  'a repeat counts in times_seen and keeps the later read time'
);

select throws_ok(
  $$insert into sync.dead_letters (record, record_text, reason) values ('{}', '{}', 'both')$$,
  '23514', null, 'a record is kept as jsonb or as text, not both'
);
select throws_ok(
  $$insert into sync.dead_letters (reason) values ('neither')$$,
  '23514', null, 'a dead letter always keeps its record'
);
select lives_ok(
  $$insert into sync.dead_letters (record_text, reason) values ('{"S": "a\u0000b"}', 'NUL')$$,
  'a record jsonb cannot hold is kept as its JSON text'
);
select throws_ok(
  $$insert into sync.dead_letters (record, reason, position_source) values ('{}', 'x', 'ftp')$$,
  '23514', null, 'the position''s source is stream, backfill, repair or direct'
);

-- A key at DynamoDB's limits (a 2,048-byte partition key and a 1,024-byte sort key), in
-- text that does not compress: its row's primary key refuses it, and its dead letter
-- must not (20261128004700_dead_letter_keys.sql).
create temp table long_key as
  select replace(encode(extensions.gen_random_bytes(1024) || extensions.gen_random_bytes(512),
                        'base64'), E'\n', '') as pk;
select throws_ok(
  $$insert into public.toledo_dashboard (pk, sk, sync_changed_at, sync_source)
    select pk, substr(pk, 1, 1024), now(), 'direct' from long_key$$,
  '54000', null, 'a row cannot have keys that long');
select lives_ok(
  $$insert into sync.dead_letters (source_table, target_table, record, reason, row_key, fingerprint)
    select 'toledo-consulting-dashboard-data', 'toledo_dashboard', '{}', 'too long',
           jsonb_build_object('pk', pk, 'sk', substr(pk, 1, 1024)), md5(pk) from long_key$$,
  'its dead letter can');
select is(
  (select count(*)::int from sync.dead_letters d, long_key k
   where d.target_table = 'toledo_dashboard'
     and d.row_key = jsonb_build_object('pk', k.pk, 'sk', substr(k.pk, 1, 1024))),
  1, 'and is found by its key');

select * from finish();
rollback;
