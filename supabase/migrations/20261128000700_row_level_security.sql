-- Row Level Security on all ten public tables (docs/interfaces.md, "Who may do what"):
--   anon                                    nothing
--   authenticated without a role claim      nothing
--   authenticated, app_metadata.role admin  select and update
--     or superuser
--   service_role                            everything (it bypasses RLS)
-- sync_checksums is the validator's record: admins read it but do not edit it.
-- The role is read from app_metadata, which only the service can set; user_metadata is
-- editable by the user and grants nothing. `(select auth.jwt())` is evaluated once per
-- statement instead of once per row.
--
-- Grants narrow Supabase's defaults (which give the API roles everything in public):
-- anon gets nothing, authenticated may select, and update only the data columns (not
-- the keys or the sync_* columns that the ordering guard relies on).
do $$
declare
  t text;
  data_columns text;
begin
  for t in
    select target_table from sync.source_tables
    union all select 'sync_checksums'
  loop
    execute format('alter table public.%I enable row level security', t);
    execute format('alter table public.%I force row level security', t);
    execute format('revoke all on table public.%I from public, anon, authenticated, service_role', t);
    execute format('grant select, insert, update, delete on table public.%I to service_role', t);
    execute format('grant select on table public.%I to authenticated', t);
    execute format($p$
      create policy "admins can read" on public.%I
        for select to authenticated
        using (((select auth.jwt()) -> 'app_metadata' ->> 'role') in ('admin', 'superuser'))
    $p$, t);
    if t = 'sync_checksums' then
      continue;
    end if;

    select string_agg(format('%I', c.column_name), ', ' order by c.ordinal_position)
      into data_columns
    from information_schema.columns c
    where c.table_schema = 'public' and c.table_name = t
      and c.is_generated = 'NEVER' and c.is_identity = 'NO'
      and c.column_name not like 'sync\_%' and c.column_name <> 'synced_at'
      and c.column_name <> all (
        coalesce((select key_columns from sync.source_tables where target_table = t), '{}')
      );
    execute format('grant update (%s) on table public.%I to authenticated', data_columns, t);

    execute format($p$
      create policy "admins can update" on public.%I
        for update to authenticated
        using (((select auth.jwt()) -> 'app_metadata' ->> 'role') in ('admin', 'superuser'))
        with check (((select auth.jwt()) -> 'app_metadata' ->> 'role') in ('admin', 'superuser'))
    $p$, t);
  end loop;
end
$$;

grant usage on all sequences in schema public to service_role;
revoke all on sequence public.sync_checksums_id_seq from anon, authenticated;
