-- Two runs of the lost-record check never read one table at once (found by a review of
-- the Streams stand-in against AWS's limits): the hourly run beside a chain's, or a run
-- asked for by hand, each started on the table read longest ago, so they read the same
-- shards together. With Lambda's mapping that made three readers of a shard, and AWS
-- throttles a shard read by more than two processes at once ("Do not allow more than two
-- processes", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Limits.html),
-- the mapping's reads included. A run takes a table's lease before it reads its stream,
-- and a table another run holds is left to that run.

select set_config('lock_timeout', '5s', true);

create table sync.stream_check_leases (
  target_table text primary key references sync.source_tables (target_table),
  holder text not null,
  held_until timestamptz not null
);
comment on table sync.stream_check_leases is
  'Which run of the lost-record check is reading a table''s stream, until when.';
revoke all on table sync.stream_check_leases from public;

-- Takes the table's lease for p_holder for p_seconds, unless another holder's is still
-- running; answers whether p_holder holds it.
create function sync.take_stream_check_lease(p_target text, p_holder text, p_seconds integer)
returns boolean
language sql set search_path = ''
as $$
  with taken as (
    insert into sync.stream_check_leases as l (target_table, holder, held_until)
    values (p_target, p_holder, now() + make_interval(secs => p_seconds))
    on conflict (target_table) do update
      set holder = excluded.holder, held_until = excluded.held_until
      where l.held_until < now() or l.holder = excluded.holder
    returning 1
  )
  select exists (select from taken)
$$;
comment on function sync.take_stream_check_lease(text, text, integer) is
  'Takes a table''s lease for a run of the lost-record check, unless another run holds it; answers whether the run holds it.';

-- Gives the lease back once the run has recorded the table (a run that dies leaves it
-- to run out).
create function sync.release_stream_check_lease(p_target text, p_holder text) returns void
language sql set search_path = ''
as $$
  delete from sync.stream_check_leases l where l.target_table = p_target and l.holder = p_holder
$$;
comment on function sync.release_stream_check_lease(text, text) is
  'Gives a run''s lease of a table back.';

revoke all on function sync.take_stream_check_lease(text, text, integer),
  sync.release_stream_check_lease(text, text) from public;
