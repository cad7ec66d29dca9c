-- A validation run too big for one request goes on in the next one: the run keeps the
-- Scan's checkpoint per segment, written in the same transaction as the page it staged,
-- so a run picked up by another request neither skips nor repeats a page.
alter table public.sync_checksums
  add column scan_state jsonb not null default '{}'::jsonb,
  add column repair_requested boolean not null default false;
comment on column public.sync_checksums.scan_state is
  'Scan checkpoint per segment ({"0": LastEvaluatedKey | "done", ...}) while the run is under way.';
comment on column public.sync_checksums.repair_requested is
  'Whether the caller asked for the divergent keys to be repaired.';
