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

/**
 * How long an iterator serves: "A shard iterator expires 15 minutes after it is returned
 * to the requester"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html).
 */
export const ITERATOR_LIFETIME_MS = 15 * 60_000;

/**
 * An iterator of a closed shard read to its end, issued at `issuedAt` (epoch ms): its
 * reads answer nothing and no next, until it expires.
 */
export function endedIterator(streamArn: string, shardId: string, issuedAt: number): string {
  return `${streamArn}${ENDED}${issuedAt}|${shardId}`;
}

/** What an iterator given by {@link wrapIterator} or {@link endedIterator} stands for. */
export function unwrapIterator(
  iterator: string,
):
  | { real: string; shardId: string }
  | { ended: true; shardId: string; issuedAt: number }
  | undefined {
  const ended = iterator.lastIndexOf(ENDED);
  if (ended >= 0) {
    const rest = iterator.slice(ended + ENDED.length);
    const bar = rest.indexOf("|");
    return { ended: true, issuedAt: Number(rest.slice(0, bar)), shardId: rest.slice(bar + 1) };
  }
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
