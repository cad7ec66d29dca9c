-- Records that could not be mapped are kept whole, with the reason, for an admin to fix
-- and replay (sync-semantics.md, "Bad input").
create table sync.dead_letters (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  source_table text,
  target_table text,
  event_id text,
  record jsonb not null,
  reason text not null,
  replayed_at timestamptz,
  replay_result text,
  -- The target row's key, when the record names one: a backfill keeps such keys.
  row_key jsonb
);
create index dead_letters_open_idx on sync.dead_letters (target_table) where replayed_at is null;
comment on table sync.dead_letters is 'Records that could not be mapped, whole, with the reason; replayable once fixed.';


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
