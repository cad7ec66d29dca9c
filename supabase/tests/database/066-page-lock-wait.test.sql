-- A Scan page's wait for its table's merge lock (20261128005300_page_lock_timeout.sql):
-- sync.wait_for_merge_lock takes the lock sync.enter_merge takes, waiting at most 30 s
-- (or what it is asked, 1 ms to 30 s), the caller's lock_timeout restored after; the lock
-- is the transaction's.
set client_min_messages = warning;
begin;
select plan(7);

select is(
  (select p.proconfig from pg_catalog.pg_proc p
   where p.oid = 'sync.wait_for_merge_lock(text, integer)'::regprocedure),
  array['search_path=""', 'lock_timeout=30s'],
  'it waits at most 30 s for the lock'
);

set local lock_timeout = '7s';
select is(sync.wait_for_merge_lock('firespring_segments'), 'firespring_segments',
  'it answers the table (the page''s merge reads it, after the wait)');
select is(current_setting('lock_timeout'), '7s', 'the caller''s lock_timeout is back after it');
select is(sync.wait_for_merge_lock('firespring_segments', 4000), 'firespring_segments',
  'it takes a shorter wait (the careful path''s: what the one statement left)');
select is(current_setting('lock_timeout'), '7s',
  'the caller''s lock_timeout is back after a shorter wait too (its SET LOCAL ends with it)');

-- The same lock as the merge's: one advisory lock of this transaction, however many take it.
create temporary table held as
  select l.classid, l.objid, l.objsubid from pg_catalog.pg_locks l
  where l.locktype = 'advisory' and l.pid = pg_catalog.pg_backend_pid();
select is((select count(*)::int from held), 1, 'one advisory lock, held for the transaction');
select sync.enter_merge('firespring_segments');
select set_eq(
  $$select l.classid, l.objid, l.objsubid from pg_catalog.pg_locks l
    where l.locktype = 'advisory' and l.pid = pg_catalog.pg_backend_pid()$$,
  $$select * from held$$,
  'sync.enter_merge takes the very same lock: the page''s merge finds it held'
);

select * from finish();
rollback;
