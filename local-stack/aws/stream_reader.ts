/**
 * Reading DynamoDB Streams (DescribeStream / GetShardIterator / GetRecords), with the
 * functions' own client (functions-shared/dynamo_http.ts), and turning what it returns
 * back into the JSON records Lambda hands a function: attribute values in DynamoDB JSON
 * (binary as base64), ApproximateCreationDateTime in epoch seconds, and the
 * `eventSourceARN` that Lambda adds.
 *
 * @module
 */

import {
  DescribeStreamCommand,
  GetRecordsCommand,
  type Shard,
  type StreamRecordOut,
} from "../../functions-shared/dynamo_commands.ts";
import { DynamoClient } from "../../functions-shared/dynamo_http.ts";
import { retryKind } from "../../functions-shared/dynamo_errors.ts";
import { type PacingDeps, realPacing } from "../../functions-shared/scan_pacing.ts";
import { bytesToBase64 } from "../../functions-shared/dynamo_encoder.ts";
import type { StreamRecord } from "../../lambda/stream_records.ts";
import { awsClientConfig } from "../../functions-shared/dynamo_client.ts";
import { shardIterator } from "../../functions-shared/stream_check_aws.ts";
import { type StackEnv, stackEnvReader } from "../stack_env.ts";

/** A DynamoDB Streams client of the stack's DynamoDB (through its proxy) in `region`. */
export function localStreams(env: StackEnv, region: string): DynamoClient {
  return new DynamoClient(awsClientConfig(stackEnvReader(env), region));
}

function jsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return bytesToBase64(value);
  if (value instanceof Date) return Math.floor(value.getTime() / 1000);
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, jsonValue(v)]),
    );
  }
  return value;
}

/** A record as Lambda delivers it, from a record as the client returns it. */
export function toLambdaRecord(record: StreamRecordOut, streamArn: string): StreamRecord {
  return { ...(jsonValue(record) as StreamRecord), eventSourceARN: streamArn };
}

/**
 * Rounds of the client's own attempts a DescribeStream page gets before {@link listShards}
 * gives up.
 */
export const DESCRIBE_ROUNDS = 5;

/**
 * All shards of a stream, a DescribeStream page at a time. AWS answers DescribeStream at
 * most 10 times a second per account and region (local-stack/aws/describe_limit.ts),
 * shared with the stack's poller and the lost-record check: a page still throttled
 * after the client's own retries is asked again after a full-jitter wait of random ×
 * min(1 s × 2^i, 10 s), {@link DESCRIBE_ROUNDS} rounds at most, then the throttle is
 * thrown. Any other error is thrown at once.
 */
export async function listShards(
  client: DynamoClient,
  streamArn: string,
  pacing: Pick<PacingDeps, "sleep" | "random"> = realPacing,
): Promise<Shard[]> {
  const shards: Shard[] = [];
  let start: string | undefined;
  do {
    const { StreamDescription } = await describePage(client, streamArn, start, pacing);
    shards.push(...(StreamDescription?.Shards ?? []));
    start = StreamDescription?.LastEvaluatedShardId;
  } while (start);
  return shards;
}

/** One DescribeStream page, asked again while it is throttled (see {@link listShards}). */
async function describePage(
  client: DynamoClient,
  streamArn: string,
  start: string | undefined,
  pacing: Pick<PacingDeps, "sleep" | "random">,
) {
  for (let round = 1;; round++) {
    try {
      return await client.send(
        new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: start }),
      );
    } catch (error) {
      const throttled = retryKind((error as Error).name, 0, false) === "throttling";
      if (!throttled || round >= DESCRIBE_ROUNDS) throw error;
      await pacing.sleep(Math.floor(pacing.random() * Math.min(10_000, 1000 * 2 ** (round - 1))));
    }
  }
}

// The stack reads iterators as the lost-record check does (functions-shared/stream_check_aws.ts).
export { shardIterator };

/** One GetRecords call: the records in Lambda's form, and the next iterator (none once the shard is closed and read). */
export async function readRecords(
  client: DynamoClient,
  streamArn: string,
  iterator: string,
  limit = 1000,
): Promise<{ records: StreamRecord[]; next: string | undefined }> {
  const { Records, NextShardIterator } = await client.send(
    new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }),
  );
  return {
    records: (Records ?? []).map((r) => toLambdaRecord(r, streamArn)),
    next: NextShardIterator,
  };
}

/**
 * Every record a shard holds from its oldest (or after `after`) to its current end, in
 * Lambda's form.
 */
export async function readShard(
  client: DynamoClient,
  streamArn: string,
  shardId: string,
  after?: string,
): Promise<StreamRecord[]> {
  const records: StreamRecord[] = [];
  let iterator = await shardIterator(client, streamArn, shardId, after ? { after } : "oldest");
  while (iterator) {
    const page = await readRecords(client, streamArn, iterator);
    if (page.records.length === 0) break;
    records.push(...page.records);
    iterator = page.next;
  }
  return records;
}
