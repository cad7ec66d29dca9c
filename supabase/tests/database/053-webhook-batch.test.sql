-- sync.try_apply_webhook_batch (20261128001400_compiled_merges.sql): a webhook batch in one
-- statement. Its delivery id is what makes a replay apply nothing, across isolates
-- (each isolate's own memory of recent ids is only a shortcut): the second call with
-- the same id applies nothing and notes nothing, whatever it carries. A change Postgres
-- refuses fails the whole call, the delivery included, so that the webhook's savepoint
-- path can apply the batch again and dead-letter that change alone.
set client_min_messages = warning;
begin;
select plan(12);

delete from sync.webhook_deliveries where webhook_id like 'msg_053_%';
delete from public.firespring_segments where segment_id like 'wb-%';
delete from sync.stream_batches_applied where stream_arn = 'arn:053';

create function pg_temp.segment(id text, name text, seq text) returns jsonb language sql as $$
  select jsonb_build_object('op', 'upsert', 'seq', seq, 'changed_at', '2026-02-06T10:00:00Z',
    'source', 'stream', 'row', jsonb_build_object('segment_id', id, 'segment_name', name,
      'member_count', 1, 'segment_criteria', '{}'::jsonb))
$$;

select results_eq(
  $$select replayed, applied from sync.try_apply_webhook_batch('msg_053_a',
      jsonb_build_object('firespring_segments', jsonb_build_array(pg_temp.segment('wb-1', 'first', '100')),
                         'firespring_traffic_sources', jsonb_build_array(jsonb_build_object(
                           'op', 'upsert', 'seq', '101', 'changed_at', '2026-02-06T10:00:00Z',
                           'source', 'stream', 'row', '{"source_id": "wb-t", "source_name": "t", "source_data": {}}'::jsonb))),
      '{"arn:053": ["100", "101"]}'::jsonb)$$,
  $$values (false, 2::bigint)$$,
  'a new delivery applies each table''s changes and counts them');
select is((select segment_name from public.firespring_segments where segment_id = 'wb-1'), 'first',
  'its row is written');
select ok(exists (select from sync.webhook_deliveries where webhook_id = 'msg_053_a'),
  'its delivery id is recorded');
select is((select count(*)::int from sync.stream_batches_applied where stream_arn = 'arn:053'), 1,
  'its stream records are noted');

select results_eq(
  $$select replayed, applied from sync.try_apply_webhook_batch('msg_053_a',
      jsonb_build_object('firespring_segments', jsonb_build_array(pg_temp.segment('wb-1', 'replayed', '200'))),
      '{"arn:053": ["200"]}'::jsonb)$$,
  $$values (true, 0::bigint)$$,
  'the same delivery id again is a replay: nothing applied');
select is((select segment_name from public.firespring_segments where segment_id = 'wb-1'), 'first',
  'a replay does not change the row, even with a newer change in it');
select is((select count(*)::int from sync.stream_batches_applied where stream_arn = 'arn:053'), 1,
  'a replay notes no stream record');

-- A value Postgres refuses (member_count is numeric) undoes the call whole, and is
-- answered, not raised: the statement's text, which holds the batch, would be logged.
select results_eq(
  $$select replayed, applied, failed_state, failed_message from sync.try_apply_webhook_batch('msg_053_b',
      jsonb_build_object('firespring_segments', jsonb_build_array(
        pg_temp.segment('wb-2', 'fine', '300'),
        jsonb_build_object('op', 'upsert', 'seq', '301', 'changed_at', '2026-02-06T10:00:00Z',
          'source', 'stream', 'row', jsonb_build_object('segment_id', 'wb-3', 'segment_name', 'x',
            'member_count', 'many', 'segment_criteria', '{}'::jsonb)))),
      '{"arn:053": ["300", "301"]}'::jsonb)$$,
  $$values (false, 0::bigint, '22P02'::text, 'invalid input syntax for type numeric: "many"'::text)$$,
  'a change Postgres refuses is answered with its SQLSTATE and message, not raised');
select is(
  (select count(*)::int from public.firespring_segments where segment_id in ('wb-2', 'wb-3'))
  + (select count(*)::int from sync.webhook_deliveries where webhook_id = 'msg_053_b')
  + (select count(*)::int from sync.stream_batches_applied
     where stream_arn = 'arn:053' and '300' = any (sequence_numbers)),
  0, 'and nothing of the call is kept: its delivery, rows and stream notes are undone');

-- Either path's first step (sync.begin_webhook_delivery) records the delivery and bounds
-- the batch's lock waits for its transaction: a lock held past 20 s (the table's merge
-- lock under an export's chunk, a row under an open transaction) fails it with 55P03,
-- which the webhook answers 503, rather than outwait the Lambda's invocation.
set local lock_timeout = 0;
select is(sync.begin_webhook_delivery('msg_053_c'), true, 'a new delivery id is recorded');
select is(current_setting('lock_timeout'), '20s', 'and the transaction waits at most 20 s for a lock');
select is(sync.begin_webhook_delivery('msg_053_c'), false, 'the same id again is a replay');
set local lock_timeout = 0;

select * from finish();
rollback;
