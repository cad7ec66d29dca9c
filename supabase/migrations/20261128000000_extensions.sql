-- The extensions the project relies on that a hosted project offers but does not enable
-- by itself: pg_cron (the backfill heartbeat and the daily validation) and pg_net (how
-- a cron job calls an Edge Function). Supabase documents installing pg_cron into
-- pg_catalog and pg_net into extensions.
create extension if not exists pg_cron with schema pg_catalog;
grant usage on schema cron to postgres;
grant all privileges on all tables in schema cron to postgres;

create extension if not exists pg_net with schema extensions;
