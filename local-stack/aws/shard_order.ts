/**
 * The order in which the stack's DescribeStream lists a stream's shards: not their
 * lineage's. AWS promises none: DynamoDB Streams' API is "intentionally similar" to
 * Kinesis Data Streams' (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.KCLAdapter.html),
 * whose DescribeStream says "There are no guarantees about the chronological order
 * shards returned in DescribeStream results. If you want to process shards in
 * chronological order, use ParentShardId to track lineage to the oldest shard"
 * (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DescribeStream.html).
 * DynamoDB Local, and the stack before this, listed parents first, so a reader that took
 * the listing's order for the lineage's passed here and would read a child before its
 * parent on AWS. The shards are listed by a hash of their id: the same order on every
 * call (pages follow one another through `ExclusiveStartShardId`), a child as often
 * before its parent as after.
 *
 * @module
 */

/** `shards` ordered by a hash of their `ShardId` (FNV-1a, 32 bits), ties by the id. */
export function inListingOrder<S extends { ShardId?: string }>(shards: S[]): S[] {
  const keyed = shards.map((shard) => ({ shard, key: fnv1a(shard.ShardId ?? "") }));
  keyed.sort((a, b) =>
    a.key - b.key || (a.shard.ShardId ?? "").localeCompare(b.shard.ShardId ?? "")
  );
  return keyed.map((k) => k.shard);
}

/** The 32-bit FNV-1a hash of `text`'s UTF-16 code units. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
