/**
 * The shard iterators of local-stack/aws/stream_shards.ts: DynamoDB Local's own
 * (`<arn>|001|` then base64 of `<shard id>|<next sequence number>|<issued>`), read for the
 * shard and position they stand at, and the stand-in's, which carry the shard of the
 * lineage (shard_lineage.ts) they read.
 *
 * @module
 */

const MARK = "|shard|";
const ENDED = "|ended|";

/** An iterator of `shardId` over DynamoDB Local's iterator `real`. */
export function wrapIterator(real: string, shardId: string): string {
  return `${real}${MARK}${shardId}`;
}

/** An iterator of a closed shard read to its end: its reads answer nothing, and no next. */
export function endedIterator(streamArn: string, shardId: string): string {
  return `${streamArn}${ENDED}${shardId}`;
}

/** What an iterator given by {@link wrapIterator} or {@link endedIterator} stands for. */
export function unwrapIterator(
  iterator: string,
): { real: string; shardId: string } | { ended: true; shardId: string } | undefined {
  const ended = iterator.lastIndexOf(ENDED);
  if (ended >= 0) return { ended: true, shardId: iterator.slice(ended + ENDED.length) };
  const at = iterator.lastIndexOf(MARK);
  if (at < 0) return undefined;
  return { real: iterator.slice(0, at), shardId: iterator.slice(at + MARK.length) };
}

/** The real shard of DynamoDB Local's iterator (see {@link iteratorPosition}). */
export function iteratorShard(real: string): string | undefined {
  try {
    return atob(real.split("|")[2] ?? "").split("|")[0] || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The next sequence number DynamoDB Local's iterator reads (`<arn>|001|` then base64 of
 * `<shard id>|<next sequence number>|<issued>`), or undefined when it is not of that form.
 */
export function iteratorPosition(real: string): string | undefined {
  const encoded = real.split("|")[2];
  if (!encoded) return undefined;
  try {
    const position = atob(encoded).split("|")[1];
    return /^\d+$/.test(position ?? "") ? position : undefined;
  } catch {
    return undefined;
  }
}
