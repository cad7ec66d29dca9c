/**
 * DescribeStream's listing of a stream's lineage (shard_lineage.ts): the shards as AWS
 * lists them, the closed ones past the stream's trim left out, in pages of 1 to 100.
 *
 * @module
 */

import { compareDecimal } from "../../functions-shared/dynamo_numbers.ts";
import { type Lineage, padSeq, type RealShard } from "./shard_lineage.ts";

/**
 * The shards as DescribeStream lists them. A shard closed before any record could come to
 * it ends where it starts: DynamoDB Local seals a shard at the greater of its start and its
 * last record (`SQLiteDBAccessJob`'s `closeLatestStreamUpdateShardMetadataSQL` in its jar),
 * so an idle one is listed with `EndingSequenceNumber` equal to `StartingSequenceNumber`.
 */
export function describedShards(lineage: Lineage): RealShard[] {
  return lineage.shards.map((shard) => {
    const start = shard.after === "0"
      ? lineage.realStart ?? padSeq(1n)
      : padSeq(BigInt(shard.after) + 1n);
    const end = shard.through === undefined
      ? undefined
      : compareDecimal(shard.through, start) < 0
      ? start
      : shard.through;
    return {
      ShardId: shard.id,
      ...(shard.parent
        ? { ParentShardId: shard.parent }
        : lineage.realParent
        ? { ParentShardId: lineage.realParent }
        : {}),
      SequenceNumberRange: {
        StartingSequenceNumber: start,
        ...(end !== undefined ? { EndingSequenceNumber: end } : {}),
      },
    };
  });
}

/**
 * `shards` without the closed ones whose every record is trimmed (through
 * `trimmedThrough`): AWS's shards "are created and deleted automatically"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html), and a
 * closed shard past the stream's 24 hours holds nothing to list.
 */
export function withoutTrimmed(shards: RealShard[], trimmedThrough?: string): RealShard[] {
  if (trimmedThrough === undefined) return shards;
  return shards.filter((shard) => {
    const ending = shard.SequenceNumberRange?.EndingSequenceNumber;
    return ending === undefined || compareDecimal(ending, trimmedThrough) > 0;
  });
}

/**
 * One DescribeStream page of `shards`: `limit` of them (1 to 100, AWS's range) after
 * `exclusiveStart`; or what is wrong with the request.
 */
export function pageOfShards<S extends { ShardId?: unknown }>(
  shards: S[],
  limit: unknown,
  exclusiveStart: unknown,
): { page: S[]; lastEvaluated?: string } | string {
  const size = limit ?? 100;
  if (!Number.isInteger(size) || (size as number) < 1 || (size as number) > 100) {
    return `1 validation error detected: Value '${limit}' at 'limit' failed to satisfy ` +
      "constraint: Member must have value between 1 and 100";
  }
  const from = exclusiveStart === undefined
    ? 0
    : shards.findIndex((s) => s.ShardId === exclusiveStart) + 1;
  if (from === 0 && exclusiveStart !== undefined) {
    return `ExclusiveStartShardId ${exclusiveStart} is no shard of the stream`;
  }
  const page = shards.slice(from, from + (size as number));
  const more = from + (size as number) < shards.length;
  return more ? { page, lastEvaluated: String(page.at(-1)!.ShardId) } : { page };
}
