-- Records that could not be mapped (or that Postgres refused), kept whole, with the
-- reason, for an admin to fix and replay (docs/sync-semantics.md, "Dead letters").
--
-- A dead letter keeps the position its record was streamed or read at: a replay applies
-- it there, through the same ordering guard as everything else, so a copy read by a
-- Scan days ago cannot beat a newer stream change or tombstone. The same record
-- dead-lettered again (a redelivered stream record, a page read again) is the same dead
-- letter: its fingerprint is unique, and a repeat counts in times_seen
-- (functions-shared/dead_letter_writer.ts computes the fingerprint and merges repeats).
create table sync.dead_letters (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  source_table text,
  target_table text,
  event_id text,
  -- The record as JSON; when it holds what jsonb cannot (U+0000, a lone surrogate),
  -- record is null and record_text keeps its exact JSON text instead.
  record jsonb,
  record_text text,
  reason text not null,
  -- Where the record stands: the stream record's SequenceNumber and
  -- ApproximateCreationDateTime, or the time a Scan read it or a person sent it.
  position_seq numeric(40, 0),
  position_at timestamptz,
  position_source text check (position_source in ('stream', 'backfill', 'repair', 'direct')),
  -- The target row's key, when the record names one ({"action_id": "a-1"}): a backfill
  -- must not delete a key with an open dead letter.
  row_key jsonb,
  -- md5 of the source table and the stream record's eventID and SequenceNumber, or of
  -- the source table and the exact content of a Scan's item or a direct request.
  fingerprint text unique,
  times_seen integer not null default 1 check (times_seen > 0),
  last_seen_at timestamptz not null default now(),
  replayed_at timestamptz,
  replay_result text,
  constraint dead_letters_record_kept check ((record is null) <> (record_text is null))
);
create index dead_letters_open_idx on sync.dead_letters (target_table) where replayed_at is null;
-- Retention removes replayed dead letters after dead_letter_retention (30 days).
create index dead_letters_replayed_at_idx on sync.dead_letters (replayed_at)
  where replayed_at is not null;
create index dead_letters_open_row_key_idx on sync.dead_letters (target_table, row_key)
  where replayed_at is null and row_key is not null;
comment on table sync.dead_letters is
  'Records that could not be mapped or applied, whole, with the reason and their position; one row per record (fingerprint); replayable once fixed.';
comment on column sync.dead_letters.fingerprint is
  'Identifies the record: md5 over source table + eventID + SequenceNumber (stream), or source table + exact content (Scan, direct).';
comment on column sync.dead_letters.position_at is
  'ApproximateCreationDateTime of the stream record, or when the Scan read the item (the latest read of the same content), or when the direct request came.';
comment on column sync.dead_letters.row_key is
  'The target row''s key, when the record names one; a backfill must not delete a key with an open dead letter.';


-- The webhook-ids of accepted webhook requests, kept for the signature's replay window,
-- so that a captured signed request cannot be applied a second time. The webhook
-- inserts the id in the transaction that applies the batch.
create table sync.webhook_deliveries (
  webhook_id text primary key,
  received_at timestamptz not null default now()
);
create index webhook_deliveries_received_at_idx on sync.webhook_deliveries (received_at);
comment on table sync.webhook_deliveries is
  'webhook-ids of accepted webhook requests, kept past the 300 s timestamp window so none is applied twice.';
