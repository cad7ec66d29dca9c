-- The tenth table: one row per run of the checksum validator
-- (interfaces.md, "data-checksum-validator"). A run of a big table proceeds in the
-- background; its row shows progress until `match` is known.
create table public.sync_checksums (
  id bigint generated always as identity primary key,
  target_table text not null references sync.source_tables (target_table),
  status text not null default 'running' check (status in ('running', 'done', 'failed')),
  started_at timestamptz not null default now(),
  checked_at timestamptz,
  source_items bigint,
  expected_rows bigint,
  target_rows bigint,
  match boolean,
  missing jsonb not null default '[]'::jsonb,
  unexpected jsonb not null default '[]'::jsonb,
  different jsonb not null default '[]'::jsonb,
  repaired boolean not null default false,
  error text
);
create index sync_checksums_table_idx on public.sync_checksums (target_table, started_at desc);
comment on table public.sync_checksums is
  'Runs of the checksum validator: source items, expected and target rows, match, and every divergent key.';
comment on column public.sync_checksums.source_items is 'Items the parallel Scan of the DynamoDB table read.';
comment on column public.sync_checksums.expected_rows is 'Rows the source projects to (distinct keys after collapsing and _deleted).';
comment on column public.sync_checksums.target_rows is 'Rows in the target table.';
comment on column public.sync_checksums.missing is 'Keys expected but not in the target.';
comment on column public.sync_checksums.unexpected is 'Keys in the target that the source does not have.';
comment on column public.sync_checksums.different is 'Keys in both whose values differ.';
comment on column public.sync_checksums.repaired is 'Whether this run re-applied the source state of the divergent keys.';
