-- sync.merge_changes: the one merge of every write path, and the rules of
-- docs/sync-semantics.md that it enforces whatever order changes arrive in.
set client_min_messages = warning;
begin;
select plan(83);

-- The rules as on AWS, whose stream clock has a granularity of 1 s.
update sync.settings set value = '1 second' where key = 'stream_clock_granularity';

-- Changes of firespring_segments: tests.segment_change (000-test-helpers.test.sql).
create function pg_temp.name_of(id text) returns text language sql as $$
  select segment_name from public.firespring_segments where segment_id = id
$$;

-- Ordering guard on stream positions.
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'v1', '100', '2026-02-06T10:00:00Z')),
  'applied=1 upserted=1 deleted=0', 'an insert is applied');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'v1', '100', '2026-02-06T10:00:00Z')),
  'applied=0 upserted=0 deleted=0', 'the same record again changes nothing');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'v0', '99', '2026-02-06T09:59:59Z')),
  'applied=0 upserted=0 deleted=0', 'an older record is skipped');
select is(pg_temp.name_of('s1'), 'v1', 'the row keeps the newer value');
select is(tests.merge('firespring_segments',
    tests.segment_change('upsert', 's1', 'v3', '300000000000000000000000000000000000003', '2026-02-06T10:00:03Z'),
    tests.segment_change('upsert', 's1', 'v2', '30000000000000000000000000000000000002', '2026-02-06T10:00:02Z')),
  'applied=1 upserted=1 deleted=0', 'a batch applies only the newest change of a key');
select is(pg_temp.name_of('s1'), 'v3', 'sequence numbers compare as numbers, not strings');

-- Deletes and tombstones.
select is(tests.merge('firespring_segments', tests.segment_change('delete', 's1', null, '300000000000000000000000000000000000004', '2026-02-06T10:00:04Z')),
  'applied=1 upserted=0 deleted=1', 'a newer delete removes the row');
select ok(exists (select from sync.tombstones where target_table = 'firespring_segments' and row_key = '{"segment_id": "s1"}'),
  'the delete leaves a tombstone');
select is(tests.merge('firespring_segments', tests.segment_change('delete', 's1', null, '300000000000000000000000000000000000002', '2026-02-06T10:00:02Z')),
  'applied=0 upserted=0 deleted=0', 'a redelivered older delete changes nothing');
select is((select sync_sequence::text from sync.tombstones where target_table = 'firespring_segments' and row_key = '{"segment_id": "s1"}'),
  '300000000000000000000000000000000000004', 'the tombstone keeps the newer delete''s position');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'v3', '300000000000000000000000000000000000003', '2026-02-06T10:00:03Z')),
  'applied=0 upserted=0 deleted=0', 'a redelivered older insert does not resurrect the row');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'read-before', null, '2026-02-06T10:00:04.5Z', 'backfill')),
  'applied=0 upserted=0 deleted=0', 'a backfill page read within a second of the delete does not resurrect it');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'v5', '300000000000000000000000000000000000005', '2026-02-06T10:00:05Z')),
  'applied=1 upserted=1 deleted=0', 'a newer insert after the delete comes back');

-- Backfill vs stream.
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'stale-read', null, '2026-02-06T10:00:05.9Z', 'backfill')),
  'applied=0 upserted=0 deleted=0', 'a read within 1 s of the stream change loses (ties go to the stream)');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'fresh-read', null, '2026-02-06T10:00:07Z', 'backfill')),
  'applied=1 upserted=1 deleted=0', 'a read more than 1 s after the change replaces it');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'old-record', '300000000000000000000000000000000000006', '2026-02-06T10:00:05Z')),
  'applied=0 upserted=0 deleted=0', 'a stream record surely older than the read is skipped');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's1', 'v7', '300000000000000000000000000000000000007', '2026-02-06T10:00:06.5Z')),
  'applied=1 upserted=1 deleted=0', 'a stream record possibly after the read is applied');
select is((select sync_source || ' ' || sync_sequence from public.firespring_segments where segment_id = 's1'),
  'stream 300000000000000000000000000000000000007', 'the row remembers the position it reflects');
-- Exactly at the granularity's edge, each way: the tie goes to the stream.
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 'edge1', 'streamed', '300000000000000000000000000000000000100', '2026-02-06T10:00:05Z')),
  'applied=1 upserted=1 deleted=0', 'a stream change at 10:00:05');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 'edge1', 'read-1s-after', null, '2026-02-06T10:00:06Z', 'backfill')),
  'applied=0 upserted=0 deleted=0', 'a read exactly 1 s after the stream change loses (not surely after it)');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 'edge2', 'read', null, '2026-02-06T10:00:10Z', 'backfill')),
  'applied=1 upserted=1 deleted=0', 'a read at 10:00:10');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 'edge2', 'streamed-1s-before', '300000000000000000000000000000000000101', '2026-02-06T10:00:09Z')),
  'applied=1 upserted=1 deleted=0', 'a stream change exactly 1 s before the read wins (not surely before it)');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's2', 'new', null, '2026-02-06T10:00:00Z', 'backfill')),
  'applied=1 upserted=1 deleted=0', 'a backfill inserts a key it has never seen');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's2', 'older-read', null, '2026-02-06T09:59:59Z', 'backfill')),
  'applied=0 upserted=0 deleted=0', 'a read older than the row''s read does not replace it');
select is(tests.merge('firespring_segments', tests.segment_change('upsert', 's2', 'newer-read', null, '2026-02-06T10:00:01Z', 'backfill')),
  'applied=1 upserted=1 deleted=0', 'a newer read replaces an older one');

-- Values keep every digit and their types.
select is(tests.merge('firespring_traffic_sources', jsonb_build_object('op', 'upsert', 'seq', '1',
    'changed_at', '2026-02-06T10:00:00Z', 'source', 'stream',
    'row', '{"source_id": "t1", "source_name": "g", "visitor_count": 12345678901234567890123456789012345678,
             "source_data": {"big": 0.12345678901234567890123456789012345678, "tags": ["a", "b"]}}'::jsonb)),
  'applied=1 upserted=1 deleted=0', 'a traffic source is applied');
select is((select visitor_count::text from public.firespring_traffic_sources where source_id = 't1'),
  '12345678901234567890123456789012345678', 'a 38-digit number arrives exactly in a numeric column');
select is((select source_data -> 'big' from public.firespring_traffic_sources where source_id = 't1'),
  '0.12345678901234567890123456789012345678'::jsonb, 'and inside jsonb');

-- Collapsed tables: the latest observation wins, whichever arrives last.
create function pg_temp.pages_of(id text) returns text language sql as $$
  select page_views || ' at ' || sync_range_key from public.firespring_visitors where visitor_id = id
$$;
select tests.merge('firespring_visitors', tests.visitor_change('upsert', 'v1', 1700000200, '20', 2));
select tests.merge('firespring_visitors', tests.visitor_change('upsert', 'v1', 1700000100, '30', 1));
select is(pg_temp.pages_of('v1'), '2 at 1700000200', 'an older observation arriving later does not replace the newer');
select tests.merge('firespring_visitors', tests.visitor_change('upsert', 'v1', 1700000300, '40', 3));
select is(pg_temp.pages_of('v1'), '3 at 1700000300', 'a newer observation replaces the row');
select tests.merge('firespring_visitors', tests.visitor_change('delete', 'v1', 1700000100, '50', null));
select is(pg_temp.pages_of('v1'), '3 at 1700000300', 'removing an older observation leaves the row alone');
select tests.merge('firespring_visitors', tests.visitor_change('delete', 'v1', 1700000300, '60', null));
select is(pg_temp.pages_of('v1'), '2 at 1700000200', 'removing the held observation falls back to the latest live one');
select tests.merge('firespring_visitors', tests.visitor_change('upsert', 'v1', 1700000300, '40', 3));
select is(pg_temp.pages_of('v1'), '2 at 1700000200', 'a redelivered insert of the removed observation stays removed');
select tests.merge('firespring_visitors', tests.visitor_change('delete', 'v1', 1700000200, '70', null));
select is(pg_temp.pages_of('v1'), null, 'removing the last live observation removes the row');
select is((select count(*)::int from analytics.visitor_sessions where visitor_id = 'v1'), 0,
  'and its sessions');

-- Repairs (the top of 20261128000300_merge.sql, and
-- sync.repair_keeps_position_expression in 20261128001400_compiled_merges.sql): a change
-- with source 'repair' and a seen_at replaces what was written here before seen_at, whatever its position,
-- and keeps that position when it is a stream change made within the clock's granularity
-- of the repair's read, or after it; what was written at or after seen_at keeps the
-- normal guard. In this transaction now() is the time every row below is written
-- (synced_at, recorded_at); the repairs read at now() + 2 s.
create function pg_temp.rep(op text, id text, name text, seen interval) returns jsonb
language sql as $$
  select tests.segment_change(op, id, name, null, (now() + interval '2 seconds')::text, 'repair')
         || jsonb_build_object('seen_at', now() + seen)
$$;
create function pg_temp.held(id text) returns text language sql as $$
  select segment_name || ' ' || sync_source || ' ' || coalesce(sync_sequence::text, 'no position')
  from public.firespring_segments where segment_id = id
$$;
create function pg_temp.tombstone_of(id text) returns text language sql as $$
  select coalesce(sync_sequence::text, 'no position') || ' at ' || to_char(deleted_at - now(), 'SS.MS')
  from sync.tombstones where target_table = 'firespring_segments' and row_key = jsonb_build_object('segment_id', id)
$$;
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 'r1', 'streamed', '900', (now() + interval '10 seconds')::text));
select is(tests.merge('firespring_segments', pg_temp.rep('upsert', 'r1', 'seen-before', interval '-1 second')),
  'applied=0 upserted=0 deleted=0', 'a repair does not replace a row written after it saw the divergence, with a newer position');
select is(tests.merge('firespring_segments', pg_temp.rep('upsert', 'r1', 'repaired', interval '1 second')),
  'applied=1 upserted=1 deleted=0', 'a repair replaces a row written before it saw the divergence, even with a newer position');
select is(pg_temp.held('r1'), 'repaired repair 900', 'and keeps that stream position, made after its read');
-- The regression the kept position prevents: the stream's newest record applied, the
-- repair reading within 1 s of it, then an older record delivered again (a retried batch).
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 'r5', 'newest', '905', (now() + interval '1.5 seconds')::text));
select is(tests.merge('firespring_segments', pg_temp.rep('upsert', 'r5', 'repaired', interval '1 second')),
  'applied=1 upserted=1 deleted=0', 'a repair replaces a stream change made within the granularity of its read');
select is(tests.merge('firespring_segments',
    tests.segment_change('upsert', 'r5', 'older', '904', (now() + interval '1 second')::text)),
  'applied=0 upserted=0 deleted=0', 'an older record delivered again then loses to the kept number');
select is(pg_temp.held('r5'), 'repaired repair 905', 'the row holds the repair at the newest record''s number');
select is(tests.merge('firespring_segments',
    tests.segment_change('upsert', 'r5', 'newer', '906', (now() + interval '1.5 seconds')::text)),
  'applied=1 upserted=1 deleted=0', 'a newer record still wins');
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 'r6', 'streamed', '906', (now() - interval '10 seconds')::text));
select is(tests.merge('firespring_segments', pg_temp.rep('upsert', 'r6', 'repaired', interval '1 second')),
  'applied=1 upserted=1 deleted=0', 'a repair replaces a stream change made surely before its read');
select is(pg_temp.held('r6'), 'repaired repair no position', 'and is positioned at its read');
select is(tests.merge('firespring_segments',
    tests.segment_change('upsert', 'r6', 'later-stream', '907', (now() + interval '3 seconds')::text)),
  'applied=1 upserted=1 deleted=0', 'a stream change after the repair''s read still wins');
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 'r8', 'scanned', null, (now() + interval '10 seconds')::text, 'backfill'));
select tests.merge('firespring_segments', pg_temp.rep('upsert', 'r8', 'repaired', interval '1 second'));
select is(pg_temp.held('r8'), 'repaired repair no position',
  'a repair replaces a read written before it saw the divergence, even a later read, at its own read');
select is((select to_char(sync_changed_at - now(), 'SS.MS') from public.firespring_segments
           where segment_id = 'r8'),
  '02.000', 'stamped at its own read, not at the replaced read''s (a stream change between them wins)');
-- seen_at counts on a repair only: a stale backfill page or stream change carrying one
-- gets past no guard.
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 'n1', 'newest', '950', (now() + interval '10 seconds')::text));
select is(tests.merge('firespring_segments',
    tests.segment_change('upsert', 'n1', 'stale', null, (now() - interval '10 seconds')::text, 'backfill')
      || jsonb_build_object('seen_at', now() + interval '1 second')),
  'applied=0 upserted=0 deleted=0', 'a seen_at on a change that is not a repair lets nothing past the guard');
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 'r2', 'streamed', '902', (now() - interval '10 seconds')::text));
select is(tests.merge('firespring_segments', pg_temp.rep('delete', 'r2', null, interval '1 second')),
  'applied=1 upserted=0 deleted=1', 'a repair deletes a row written before it saw the divergence');
select is(pg_temp.tombstone_of('r2'), 'no position at 02.000', 'and leaves a tombstone positioned at its read');
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 'r9', 'newest', '909', (now() + interval '1.5 seconds')::text));
select is(tests.merge('firespring_segments', pg_temp.rep('delete', 'r9', null, interval '1 second')),
  'applied=1 upserted=0 deleted=1', 'a repair deletes a row whose stream change is within the granularity of its read');
select is(pg_temp.tombstone_of('r9'), '909 at 01.500', 'its tombstone keeps the row''s stream position');
select is(tests.merge('firespring_segments',
    tests.segment_change('upsert', 'r9', 'older', '908', (now() + interval '1 second')::text)),
  'applied=0 upserted=0 deleted=0', 'so an older upsert delivered again does not bring it back');
-- A row and an older tombstone of its key together (an upsert past a tombstone leaves
-- it): the repair's delete keeps the row's newer position in the tombstone.
select tests.merge('firespring_segments',
  tests.segment_change('delete', 'r10', null, '920', (now() - interval '10 seconds')::text));
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 'r10', 'again', '925', (now() + interval '1.5 seconds')::text));
select is(tests.merge('firespring_segments', pg_temp.rep('delete', 'r10', null, interval '1 second')),
  'applied=1 upserted=0 deleted=1', 'a repair deletes a row that has an older tombstone too');
select is(pg_temp.tombstone_of('r10'), '925 at 01.500', 'the tombstone takes the row''s newer stream position');
select is(tests.merge('firespring_segments',
    tests.segment_change('upsert', 'r10', 'again', '925', (now() + interval '1.5 seconds')::text)),
  'applied=0 upserted=0 deleted=0', 'so the row''s record delivered again does not bring it back');
select tests.merge('firespring_segments',
  tests.segment_change('delete', 'r3', null, '903', (now() - interval '10 seconds')::text));
select is(tests.merge('firespring_segments', pg_temp.rep('upsert', 'r3', 'back', interval '1 second')),
  'applied=1 upserted=1 deleted=0', 'a repair passes a tombstone recorded before it saw the divergence');
select is(pg_temp.held('r3'), 'back repair no position', 'positioned at its read');
select tests.merge('firespring_segments',
  tests.segment_change('delete', 'r7', null, '908', (now() + interval '1.5 seconds')::text));
select is(tests.merge('firespring_segments', pg_temp.rep('upsert', 'r7', 'back', interval '1 second')),
  'applied=1 upserted=1 deleted=0', 'a repair passes a stream delete within the granularity of its read');
select is(pg_temp.held('r7'), 'back repair 908', 'and takes the tombstone''s stream position');
select is(tests.merge('firespring_segments',
    tests.segment_change('upsert', 'r7', 'before-the-delete', '907', (now() + interval '1 second')::text)),
  'applied=0 upserted=0 deleted=0', 'so an upsert from before the delete, delivered again, stays out');
select tests.merge('firespring_segments',
  tests.segment_change('delete', 'r4', null, '910', (now() + interval '1.5 seconds')::text));
select tests.merge('firespring_segments', pg_temp.rep('delete', 'r4', null, interval '1 second'));
select is(pg_temp.tombstone_of('r4'), '910 at 01.500', 'a repair that replaces such a tombstone keeps its position');
select tests.merge('firespring_visitors',
  tests.visitor_change('upsert', 'v9', 1700000100, '10', 1, 'stream', (now() - interval '10 seconds')::text),
  tests.visitor_change('upsert', 'v9', 1700000200, '11', 2, 'stream', (now() - interval '10 seconds')::text));
select tests.merge('firespring_visitors',
  tests.visitor_change('delete', 'v9', 1700000200, null, null, 'stream', (now() + interval '2 seconds')::text)
    || '{"source": "repair"}' || jsonb_build_object('seen_at', now() - interval '1 second'));
select is(pg_temp.pages_of('v9'), '1 at 1700000100',
  'an observation recorded after the repair saw the divergence keeps the normal guard: an older stream change loses to the read');
select tests.merge('firespring_visitors',
  tests.visitor_change('upsert', 'v8', 1700000100, '12', 1, 'stream', (now() + interval '10 seconds')::text),
  tests.visitor_change('upsert', 'v8', 1700000200, '13', 2, 'stream', (now() + interval '1.5 seconds')::text));
select tests.merge('firespring_visitors',
  tests.visitor_change('delete', 'v8', 1700000200, null, null, 'stream', (now() + interval '2 seconds')::text)
    || '{"source": "repair"}' || jsonb_build_object('seen_at', now() - interval '1 second'));
select is(pg_temp.pages_of('v8'), '2 at 1700000200', 'a repair leaves an observation recorded after it saw the divergence');
select tests.merge('firespring_visitors',
  tests.visitor_change('delete', 'v8', 1700000200, null, null, 'stream', (now() + interval '2 seconds')::text)
    || '{"source": "repair"}' || jsonb_build_object('seen_at', now() + interval '1 second'));
select is(pg_temp.pages_of('v8'), '1 at 1700000100',
  'a repair removes an observation recorded before it saw the divergence; the row falls back');
select is((select sync_sequence::text from sync.observations
           where target_table = 'firespring_visitors' and row_key = '{"visitor_id": "v8"}' and range_key = 1700000200),
  '13', 'the removed observation keeps its stream position, made within the granularity of the read');
select tests.merge('firespring_visitors', tests.visitor_change('upsert', 'v8', 1700000200, '13', 2, 'stream', (now() + interval '1.5 seconds')::text));
select is(pg_temp.pages_of('v8'), '1 at 1700000100', 'so the record delivered again stays removed');

-- Extraction jobs: ties on updated_at go to the later state.
select tests.merge('firespring_extraction_jobs',
  jsonb_build_object('op', 'upsert', 'seq', null, 'changed_at', '2026-02-06T10:00:00Z', 'source', 'backfill',
    'range_key', 1700000000000, 'rank', 2, 'row', '{"job_id": "j1", "status": "complete", "job_data": {}}'::jsonb),
  jsonb_build_object('op', 'upsert', 'seq', null, 'changed_at', '2026-02-06T10:00:00Z', 'source', 'backfill',
    'range_key', 1699999999000, 'rank', 1, 'row', '{"job_id": "j1", "status": "running", "job_data": {}}'::jsonb));
select is((select status from public.firespring_extraction_jobs where job_id = 'j1'), 'complete',
  'the job holds its state with the largest updated_at');

select throws_ok($$select * from sync.merge_changes('not_a_table', '[]')$$, 'SY002',
  'sync.merge_changes: not_a_table is not a registered target table', 'an unknown table is named in the error');
select throws_ok($$select * from sync.merge_changes('firespring_actions', '{}')$$, 'SY002',
  'sync.merge_changes(firespring_actions): changes must be a JSON array', 'changes must be a list');
-- The wire format is sync.change: a field it lacks is a caller's bug, named, never dropped.
select throws_ok(
  $$select * from sync.merge_changes('firespring_actions',
    '[{"op": "upsert", "row": {"action_id": "w1"}, "seq": null, "changed_at": "2026-01-01T00:00:00Z", "source": "direct"},
      {"op": "upsert", "row": {"action_id": "w2"}, "seq": null, "changedAt": "2026-01-01T00:00:00Z", "source": "direct"}]')$$,
  'SY002',
  'sync.merge_changes(firespring_actions): change 2 has the field "changedAt", which sync.change does not have',
  'a field the wire format does not have is refused, naming the change and the field');
select throws_ok(
  $$select * from sync.merge_changes('firespring_actions', '[{"op": "merge", "row": {}, "changed_at": "2026-01-01T00:00:00Z", "source": "direct"}]')$$,
  'SY002', 'sync.merge_changes(firespring_actions): change 1 has no op "upsert" or "delete"',
  'an unknown op is refused');
select throws_ok(
  $$select * from sync.merge_changes('firespring_actions', '[{"op": "delete", "row": {"action_id": "x"}, "source": "direct"}]')$$,
  'SY002', 'sync.merge_changes(firespring_actions): change 1 has no changed_at or source',
  'a change without its time is refused');
select throws_ok(
  $$select * from sync.merge_changes('firespring_actions', '[1]')$$,
  'SY002', 'sync.merge_changes(firespring_actions): change 1 is not a JSON object',
  'a change must be an object');

-- Compiled merges (20261128001400_compiled_merges.sql): one per registered table, each
-- compiled from the table's current columns; a column added later makes it stale until
-- sync.compile_merges() runs again.
select is_empty('select * from sync.stale_merges()', 'every compiled merge is current');
select is(
  (select count(*)::int from pg_proc
   where pronamespace = 'sync'::regnamespace and proname like 'merge\_into\_%'),
  (select count(*)::int from sync.source_tables),
  'one compiled merge per registered table');
alter table public.firespring_segments add column test_extra text;
select results_eq('select * from sync.stale_merges()', array['firespring_segments'],
  'a column added to a mirror table makes its compiled merge stale');
select sync.compile_merges();
select lives_ok($$
  select sync.merge_changes('firespring_segments', jsonb_build_array(jsonb_build_object(
    'op', 'upsert', 'row', jsonb_build_object('segment_id', 'compiled-1', 'segment_criteria', '{}'::jsonb,
                           'test_extra', 'kept'),
    'seq', '900', 'changed_at', '2026-02-06T12:00:00Z', 'source', 'stream')))
$$, 'recompiled, the merge takes a change with the new column');
select is((select test_extra from public.firespring_segments where segment_id = 'compiled-1'),
  'kept', 'and writes it');

-- A batch of many deletes takes time in proportion to its size: 20,000 deletes of rows
-- (a sweep's chunk of a table whose source was emptied, a flood of TTL expiries) take
-- about a second, well inside the statement timeout set here. When each delete's
-- tombstone was found by a nested loop over the batch's deleted rows, 8,000 took 60 s
-- and a chunk of 29,000 outran the hosted 2 minutes at every attempt.
select sync.merge_changes('firespring_segments', (
  select jsonb_agg(jsonb_build_object('op', 'upsert',
    'row', jsonb_build_object('segment_id', 'bulk-' || g, 'segment_criteria', '{}'::jsonb),
    'seq', null, 'changed_at', now() - interval '1 hour', 'source', 'backfill'))
  from generate_series(1, 20000) g));
set local statement_timeout = '60s';
select is(
  (select m.deleted from sync.merge_changes('firespring_segments', (
     select jsonb_agg(jsonb_build_object('op', 'delete',
       'row', jsonb_build_object('segment_id', 'bulk-' || g),
       'seq', null, 'changed_at', now(), 'source', 'backfill'))
     from generate_series(1, 20000) g)) m),
  20000::bigint, '20,000 deletes merge in one statement, well within its timeout');
set local statement_timeout to default;
select is(
  (select count(*)::int from sync.tombstones
   where target_table = 'firespring_segments' and row_key ->> 'segment_id' like 'bulk-%'),
  20000, 'each with its tombstone');

-- Two reads stamped at the same instant: the later merged wins (new_at >= old_at).
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 's3', 'first-read', null, '2026-02-06T10:00:00Z', 'backfill'));
select is(tests.merge('firespring_segments',
    tests.segment_change('upsert', 's3', 'same-instant-read', null, '2026-02-06T10:00:00Z', 'backfill')),
  'applied=1 upserted=1 deleted=0', 'a read stamped at the same instant as the row''s read replaces it');
-- A delete delivered late, older than the row, removes nothing.
select tests.merge('firespring_segments',
  tests.segment_change('upsert', 'd1', 'live', '500', '2026-02-06T10:00:05Z'));
select is(tests.merge('firespring_segments',
    tests.segment_change('delete', 'd1', null, '400', '2026-02-06T10:00:04Z')),
  'applied=0 upserted=0 deleted=0', 'an older delete delivered late does not remove a newer row');

select * from finish();
rollback;
