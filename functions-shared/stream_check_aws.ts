/**
 * The lost-record check's reads of AWS (functions-shared/stream_check.ts): a table's
 * current stream (DescribeTable's `LatestStreamArn`), its shards (DescribeStream, page by
 * page), iterators (GetShardIterator: TRIM_HORIZON, AT_ or AFTER_SEQUENCE_NUMBER) and
 * records (GetRecords). A position older than what the shard holds answers
 * TrimmedDataAccessException
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html),
 * which the reader turns into "trimmed".
 *
 * One client (`dynamoClients`, dynamo_client.ts) serves DynamoDB and its
 * Streams: each command goes to its own service's endpoint.
 *
 * The reader user needs dynamodb:DescribeTable on the tables and DescribeStream,
 * GetShardIterator and GetRecords on their streams (infrastructure/terraform).
 *
 * @module
 */

import {
  DescribeStreamCommand,
  DescribeTableCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "./dynamo_commands.ts";
import type { DynamoClient } from "./dynamo_http.ts";
import type { ListedShard, StreamReader } from "./stream_shard.ts";

/**
 * The table's current stream ARN, or undefined when its stream is off. A table whose
 * stream was disabled keeps its `LatestStreamArn` (the old stream's, still readable for
 * 24 hours), with `StreamSpecification` absent or `StreamEnabled: false`: only a stream
 * said to be enabled counts, or the check would read the old stream's closed shards, find
 * them applied, and report nothing while no change is captured at all.
 */
export async function latestStreamArn(
  client: DynamoClient,
  table: string,
): Promise<string | undefined> {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: table }));
  return Table?.StreamSpecification?.StreamEnabled === true
    ? Table?.LatestStreamArn ?? undefined
    : undefined;
}

/** Where an iterator starts: the oldest record held, at or after a sequence number. */
export type ShardPosition = "oldest" | { at: string } | { after: string };

/** A shard iterator at `position` (GetShardIterator). */
export async function shardIterator(
  client: DynamoClient,
  streamArn: string,
  shardId: string,
  position: ShardPosition,
): Promise<string | undefined> {
  const { ShardIterator } = await client.send(
    new GetShardIteratorCommand({
      StreamArn: streamArn,
      ShardId: shardId,
      ...(position === "oldest"
        ? { ShardIteratorType: "TRIM_HORIZON" }
        : "at" in position
        ? { ShardIteratorType: "AT_SEQUENCE_NUMBER", SequenceNumber: position.at }
        : { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: position.after }),
    }),
  );
  return ShardIterator;
}

/** A {@link StreamReader} of one stream. */
export function awsStreamReader(client: DynamoClient, streamArn: string): StreamReader {
  return {
    async shards() {
      const listed: ListedShard[] = [];
      let start: string | undefined;
      do {
        const { StreamDescription } = await client.send(
          new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: start }),
        );
        for (const shard of StreamDescription?.Shards ?? []) {
          const endingSeq = shard.SequenceNumberRange?.EndingSequenceNumber;
          listed.push({ id: shard.ShardId!, closed: endingSeq !== undefined, endingSeq });
        }
        start = StreamDescription?.LastEvaluatedShardId;
      } while (start);
      return listed;
    },
    async iterator(shardId, position) {
      try {
        return await shardIterator(client, streamArn, shardId, position);
      } catch (error) {
        const name = (error as Error).name;
        if (name === "TrimmedDataAccessException") return "trimmed";
        // A shard listed a moment ago that has expired since (its records all past the
        // stream's 24 hours): what it held is gone, as a trimmed position's is.
        if (name === "ResourceNotFoundException") return "trimmed";
        throw error;
      }
    },
    async read(iterator) {
      let answer;
      try {
        answer = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
      } catch (error) {
        // The position went past the stream's 24 hours since its iterator was taken: "you
        // obtain a shard iterator, but before you use the iterator in a GetRecords request,
        // a stream record in the shard exceeds the 24 hour period and is trimmed"
        // (DynamoDB Streams API reference, GetRecords, TrimmedDataAccessException).
        if ((error as Error).name === "TrimmedDataAccessException") return "trimmed";
        throw error;
      }
      const { Records, NextShardIterator } = answer;
      return {
        bytes: (Records ?? []).reduce((sum, r) => sum + (r.dynamodb?.SizeBytes ?? 0), 0),
        records: (Records ?? []).map((r) => ({
          seq: r.dynamodb!.SequenceNumber!,
          // Seconds since the epoch on the wire (the SDK made it a Date).
          createdAt: r.dynamodb!.ApproximateCreationDateTime! * 1000,
        })),
        next: NextShardIterator,
      };
    },
  };
}
