-- The control panel in SQL: sync.status (one row per target table) and
-- sync.backfill_progress (one row per backfill job), per docs/interfaces.md.

-- Rows and the last write of each mirror table; the table names come from the registry.
create function sync.table_counts()
returns table (target_table text, row_count bigint, last_change_at timestamptz)
language plpgsql stable set search_path = ''
as $$
declare
  t text;
begin
  for t in select s.target_table from sync.source_tables s order by s.target_table loop
    target_table := t;
    execute format('select count(*), max(synced_at) from public.%I', t)
      into row_count, last_change_at;
    return next;
  end loop;
end
$$;

create view sync.status as
select
  s.target_table,
  s.source_table,
  s.region,
  c.row_count as rows,
  c.last_change_at,
  (select count(*) from sync.dead_letters d
    where d.target_table = s.target_table and d.replayed_at is null) as dead_letters,
  k.checked_at as last_checksum_at,
  k.match as last_checksum_match,
  k.status as last_checksum_status,
  jsonb_array_length(k.unmappable) as last_checksum_unmappable,
  ts.stale_since is not null as stale,
  case when ts.stale_since is not null then ts.stale_reason end as stale_reason
from sync.source_tables s
join sync.table_counts() c on c.target_table = s.target_table
left join lateral (
  select x.checked_at, x.match, x.status, x.unmappable from public.sync_checksums x
  where x.target_table = s.target_table
  order by x.started_at desc limit 1
) k on true
left join sync.table_state ts on ts.target_table = s.target_table;
comment on view sync.status is
  'One row per target table: rows, last change applied, open dead letters, last checksum result (and its unmappable source items), stale.';

create view sync.backfill_progress as
select
  j.id as job_id,
  j.source_table,
  s.target_table,
  j.status,
  count(g.segment) filter (where g.status = 'done') as segments_done,
  j.total_segments,
  coalesce(sum(g.items_scanned), 0)::bigint as items_scanned,
  coalesce(sum(g.rows_written), 0)::bigint as rows_written,
  j.started_at,
  j.finished_at,
  round(
    coalesce(sum(g.items_scanned), 0)
      / nullif(extract(epoch from coalesce(j.finished_at, now()) - j.started_at), 0),
    1
  ) as items_per_second
from sync.backfill_jobs j
join sync.source_tables s on s.source_table = j.source_table
left join sync.backfill_segments g on g.job_id = j.id
group by j.id, s.target_table;
comment on view sync.backfill_progress is
  'One row per backfill job: segments done of total, items scanned, rows written, rate.';
