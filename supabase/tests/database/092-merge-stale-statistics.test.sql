-- A plain table's compiled merge finds every row it touches by key, and reads none for a
-- batch without deletes or repairs, whatever the table's statistics say
-- (20261128001400_compiled_merges.sql: enable_seqscan = off, and the batch's own checks). A
-- table emptied and analyzed, then filled faster than autovacuum analyzed it again, kept
-- the plans made while it was empty, which read the table for every batch: twice the
-- whole table, in round 82's bench, where batches of 10 took 45 ms instead of 3.
set client_min_messages = warning;
begin;
select plan(6);

-- A stream change of firespring_segments, made after the rows filled in below were read.
create function pg_temp.seg(op text, id text, seq text) returns jsonb
language sql as $$ select tests.segment_change(op, id, 'n', seq, '2026-02-06T10:00:00Z') $$;
-- The table's scans in this transaction: sequential scans started, and rows they read.
create function pg_temp.table_reads() returns bigint[]
language sql as $$
  select array[seq_scan, seq_tup_read] from pg_stat_xact_user_tables
  where relid = 'public.firespring_segments'::regclass
$$;

-- Emptied and analyzed: the merge's plans are made while the table holds nothing, over
-- more batches than plpgsql plans one by one before it keeps a generic plan.
truncate public.firespring_segments;
analyze public.firespring_segments;
select is((select count(*)::integer from generate_series(1, 8) n
           where tests.merge('firespring_segments', pg_temp.seg('upsert', 'stale-' || n, '100'))
                 = 'applied=1 upserted=1 deleted=0'),
  8, 'eight batches merged into the emptied table');
-- Then the table fills through another statement, as a backfill's pages do (rows read
-- before the changes below were made).
insert into public.firespring_segments (segment_id, segment_name, member_count,
  segment_criteria, sync_changed_at, sync_source)
select 'stale-filled-' || n, 'n', 1, '{}', '2026-02-06T09:00:00Z', 'backfill'
from generate_series(1, 5000) n;

create temp table before_batch as select pg_temp.table_reads() as reads;
select is(tests.merge('firespring_segments', pg_temp.seg('upsert', 'stale-new', '101'),
                      pg_temp.seg('upsert', 'stale-filled-7', '102')),
  'applied=2 upserted=2 deleted=0', 'a batch of upserts is merged');
select is(pg_temp.table_reads(), (select reads from before_batch),
  'and reads no row of the table outside its keys (no sequential scan)');

-- A batch with a delete finds its row by key too.
update before_batch set reads = pg_temp.table_reads();
select is(tests.merge('firespring_segments', pg_temp.seg('delete', 'stale-filled-8', '103')),
  'applied=1 upserted=0 deleted=1', 'a delete in a batch is merged');
select is(pg_temp.table_reads(), (select reads from before_batch),
  'and reads no row of the table outside its key (no sequential scan)');
select is((select count(*)::integer from public.firespring_segments
           where segment_id in ('stale-filled-8', 'stale-new', 'stale-filled-7')),
  2, 'its row is gone, the upserted ones are there');

select * from finish();
rollback;
