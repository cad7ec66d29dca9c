-- A Scan page is stamped with a time on DynamoDB's own clock that is provably no later
-- than its read, and a backfill's end spares whatever its earliest page saw
-- (docs/sync-semantics.md, "Ordering"). Found by a review of the Scan backfill:
--
-- A page was stamped with the function's clock when its request left. The ordering guard
-- compares that stamp with the stream records' ApproximateCreationDateTime, which
-- DynamoDB floors to the second: the guard's one-second granularity is used up by that
-- flooring alone, so a function clock ahead of DynamoDB's by any amount let a page read
-- before a change overwrite it (or win over its late record), and the clock check
-- (round 45) let it be a second ahead, two with the Date header's resolution. A clock
-- behind Postgres's by less than the check's half second let a backfill's end remove a
-- live item whose page lost to a stream change of the last second before the job began.
--
-- Now the stamp is the page's own answer's Date less its round trip
-- (functions-shared/clock_skew.ts): DynamoDB read the page after that instant on its own
-- clock, the clock of the stream records, whatever the function's clock says. A stamp up
-- to a second and a round trip early only makes the page win less often; each segment
-- keeps its earliest stamp (earliest_read_at, by sync.checkpoint_segment's new
-- p_read_at), and the end removes only what is older than the job's earliest stamp,
-- less the granularity (sync.backfill_read_from, below).

-- On a live project a lock this migration takes waits at most 5 s: it then fails, rather
-- than hold every merge and read of the table behind it; push it again.
select set_config('lock_timeout', '5s', true);

alter table sync.backfill_segments add column earliest_read_at timestamptz;
comment on column sync.backfill_segments.earliest_read_at is
  'The earliest stamp of the segment''s pages (a Scan''s: DynamoDB''s clock); the backfill''s end removes only rows older than it, less the granularity.';

-- When a backfill read the table from, on DynamoDB's clock (the stream records'): a
-- Scan's earliest page stamp once every segment being read has one, and before that no
-- later than its start less a minute for the clocks' skew (the first page of a segment
-- being read, read earlier than the pages stamped so far, may still be committing); an
-- export's, its export time (its started_at); null before it starts.
-- The one answer to two questions, so that they agree: which rows a backfill's end
-- removes (those older than this, less the granularity, that no page saw) and which lost
-- stream records a backfill heals (those older than this by two granularities,
-- sync.record_stream_check). A review found the end counting from the job's start when
-- that was earlier (on Postgres's clock), while the check counted from the first page:
-- a delete lost between the two was taken as healed, and its row kept for good. Every
-- row that no page saw and that is older than the first read was gone before any read
-- (the pages are consistent reads), so its removal is right.
create function sync.backfill_read_from(j sync.backfill_jobs) returns timestamptz
language sql stable set search_path = ''
as $$
  select case when j.started_at is null then null
              when j.export_arn is not null then j.started_at
              else (select case when bool_and(s.earliest_read_at is not null
                                              or s.status <> 'running')
                                then coalesce(min(s.earliest_read_at),
                                              j.started_at - interval '1 minute')
                                else least(min(s.earliest_read_at),
                                           j.started_at - interval '1 minute') end
                    from sync.backfill_segments s where s.job_id = j.id) end
$$;
comment on function sync.backfill_read_from(sync.backfill_jobs) is
  'When a backfill read the table from, on DynamoDB''s clock: its end removes what is older and unseen, and it heals the lost stream records older than this.';
revoke all on function sync.backfill_read_from(sync.backfill_jobs) from public;

-- sync.checkpoint_segment, with this change (one more argument, the page's stamp, kept
-- as the segment's earliest_read_at), is defined in 20261128001800_backfill_turns.sql
-- (one place per function).


-- sync.sweep_unseen_chunk, with this change, is defined in
-- 20261128003600_sweep_in_chunks.sql (one place per function).
