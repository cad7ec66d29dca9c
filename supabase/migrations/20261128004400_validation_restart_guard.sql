-- A validation run that outlived a crash of the database cannot end with a verdict
-- (docs/sync-semantics.md, "Verification"). Found by a review of the validator.
--
-- A run keeps what it has read in unlogged tables (sync.checksum_items: the expected
-- rows of a collapsed table's staged compare and of the rechecks; sync.checksum_seen:
-- the keys a streamed run has seen), which Postgres empties when it recovers from a
-- crash, and which a standby promoted in a failover never had. Its checkpoints are
-- logged, so the run went on from them as if nothing was lost, and the comparison then
-- lacked the rows read before the crash. Where the target lacked a key too (a visitor
-- whose row a lost stream record never created), the key was absent from both sides and
-- the run reported a match: a false match, the one thing a validator must never say.
-- (The comments of 20261128001600 and 20261128003300 took such a crash for a source of
-- false alarms only.)
--
-- Each run now leaves a mark in an unlogged table of its own when it starts running (made
-- running, or a queued run started); the same crash that empties its staged rows removes
-- the mark. A queued run has read nothing: a crash while it waits costs it nothing.
-- sync.end_validation refuses to end a run as done without its mark (SQLSTATE SY002,
-- naming the run and why): the validator then fails the run with that message, and the
-- next run (pg_cron's daily one, or the operator's) starts afresh. A clean restart keeps
-- unlogged tables, and the mark.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

create unlogged table sync.checksum_run_marks (
  run_id bigint primary key
);
comment on table sync.checksum_run_marks is
  'One row per running validation run, written when it starts running: gone after a crash or a failover, as the run''s unlogged staged rows are, so that the run cannot end with a verdict.';

-- Marks each run made running, whoever makes it (sync.start_validation), with its owner's
-- rights, as the other triggers on sync_checksums.
create function sync.mark_new_validation_runs() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into sync.checksum_run_marks (run_id)
  select n.id from made n where n.status = 'running'
  on conflict do nothing;
  return null;
end
$$;
create trigger sync_checksums_mark_runs
  after insert on public.sync_checksums
  referencing new table as made
  for each statement execute function sync.mark_new_validation_runs();

-- Marks a queued run as it starts (sync.start_queued_validations). A row trigger on the
-- status column alone: the page-by-page updates of a run's row do not fire it.
create function sync.mark_started_validation_run() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into sync.checksum_run_marks (run_id) values (new.id) on conflict do nothing;
  return null;
end
$$;
create trigger sync_checksums_mark_started_runs
  after update of status on public.sync_checksums
  for each row when (old.status = 'queued' and new.status = 'running')
  execute function sync.mark_started_validation_run();

-- Runs already under way keep going: they are marked now (queued ones when they start),
-- after the triggers, whose locks wait for any transaction already making a run running.
insert into sync.checksum_run_marks (run_id)
select c.id from public.sync_checksums c where c.status = 'running'
on conflict do nothing;

-- A deleted run's mark goes with it (retention).
create function sync.forget_marks_of_deleted_runs() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from sync.checksum_run_marks m using gone g where m.run_id = g.id;
  return null;
end
$$;
create trigger sync_checksums_forget_marks
  after delete on public.sync_checksums
  referencing old table as gone
  for each statement execute function sync.forget_marks_of_deleted_runs();
revoke all on function sync.mark_new_validation_runs(), sync.mark_started_validation_run(),
  sync.forget_marks_of_deleted_runs() from public;

-- sync.end_validation, with this change, is defined in
-- 20261128001600_validator_streaming.sql (one place per function).
