-- Dead letters of keys too long for a btree (found by a read-only review of the webhook).
--
-- DynamoDB allows a partition key of 2,048 bytes and a sort key of 1,024
-- (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html,
-- "Partition key value" and "Sort key value"); a btree entry holds at most 2,704 bytes
-- (a third of a page). An item of toledo-consulting-dashboard-data whose two keys are
-- near their limits, in text that does not compress, cannot be a row (its primary key
-- refuses it: SQLSTATE 54000), so it is dead-lettered, and the dead letter's own index on
-- (target_table, row_key) refused it the same way: the webhook's transaction failed with
-- a 500, and the Lambda split the batch down to the record and retried it for an hour
-- before it went to the on-failure queue.
--
-- The key is indexed by a hash instead (an entry of a few bytes, whatever the key), over
-- every dead letter that names one: the backfill's sweep, which spares a key with a
-- letter seen again since the backfill started (open or replayed;
-- 20261128003600_sweep_in_chunks.sql), looks letters up by their key whether replayed or
-- not, which the partial index on open ones could not serve (every chunk of a sweep read
-- the whole table).

select set_config('lock_timeout', '5s', true);

drop index sync.dead_letters_open_row_key_idx;
create index dead_letters_row_key_idx on sync.dead_letters using hash (row_key)
  where row_key is not null;
