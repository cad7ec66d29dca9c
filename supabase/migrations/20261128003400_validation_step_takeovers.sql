-- A validation run's steps after its Scan never stall: a look at its divergent keys goes
-- key by key with a checkpoint, and a step whose requests keep stopping without giving
-- it back fails the run, naming the step (docs/sync-semantics.md, "Verification").
--
-- Until now a look read every divergent key again (up to 200, each up to 400 KB, a
-- collapsed key's whole partition) and staged them all at the end, in one request. A
-- look too big for the Edge Runtime's CPU or memory limit had its isolate killed with
-- nothing recorded, and every request after it died at the same place. The lease was
-- renewed before the reads (sync.hold_validation also moves progress_at), so
-- sync.reap_stalled_validations never saw the run stop, and it kept a place of
-- validation_concurrency for good: no other table's run started.
--
-- Now:
-- - recheck_keys holds the keys of the look under way, and recheck_read how many of them
--   were read again and staged; each chunk of reads is staged in the transaction that
--   moves recheck_read (functions-shared/validator_compare.ts), so the next request goes
--   on from there;
-- - a claim that takes a run's step over from a request whose lease ran out counts a
--   takeover; one after progress since the last takeover (progress_at later than
--   taken_over_at) counts the first of a new series. The fifth in a row fails the run.

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

alter table public.sync_checksums
  add column recheck_keys jsonb,
  add column recheck_read integer not null default 0 check (recheck_read >= 0),
  add column takeovers integer not null default 0 check (takeovers >= 0),
  add column taken_over_at timestamptz;
comment on column public.sync_checksums.recheck_keys is
  'The keys of the look at divergent keys under way (null between looks).';
comment on column public.sync_checksums.recheck_read is
  'How many of recheck_keys were read again from the source and staged.';
comment on column public.sync_checksums.takeovers is
  'Claims in a row of a step after the Scan from a request whose lease ran out, with no progress between them; the fifth fails the run.';
comment on column public.sync_checksums.taken_over_at is 'When the last such claim was.';

-- sync.claim_validation, with this change, is defined in
-- 20261128001100_validator_segments.sql (one place per function).
-- Renews p_worker's lease of a run's step without counting it as progress (a look's reads
-- between its checkpoints, its settle pause): a request that stops after it is still a
-- takeover with no progress. SY001 when p_worker no longer holds the run.
create function sync.renew_validation(p_run bigint, p_worker text) returns void
language plpgsql set search_path = ''
as $$
begin
  update public.sync_checksums
  set lease_expires_at = now() + make_interval(secs => sync.integer_setting('validation_lease_seconds'))
  where id = p_run and status = 'running' and lease_owner = p_worker;
  if not found then
    raise exception 'validation run %: request % no longer holds it; another took over',
      p_run, p_worker using errcode = 'SY001';
  end if;
end
$$;

revoke all on function sync.renew_validation(bigint, text) from public;
