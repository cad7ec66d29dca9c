/**
 * The DynamoDB and DynamoDB Streams operations the sync calls, as commands for
 * {@link DynamoClient.send} (dynamo_http.ts): each names its API target and carries its
 * request, typed with the fields this repository uses, in the shapes of DynamoDB's JSON
 * protocol (Amazon DynamoDB API Reference; "Amazon DynamoDB Streams" API Reference). The
 * class names are the AWS SDK's, so a call reads as AWS documents it.
 *
 * Values are as on the wire, with two exceptions the client makes: binaries (B, BS) are
 * bytes, as the SDK gave them (sent as base64 text), and times stay as the wire has them,
 * seconds since the epoch (ApproximateCreationDateTime, ExportTime...).
 *
 * @module
 */

import type { ClockReading } from "./read_stamp.ts";

/** An attribute value in DynamoDB JSON: exactly one of its fields is set. */
export interface AttributeValue {
  S?: string;
  /** A number as its decimal text. */
  N?: string;
  B?: Uint8Array;
  SS?: string[];
  NS?: string[];
  BS?: Uint8Array[];
  M?: Record<string, AttributeValue>;
  L?: AttributeValue[];
  NULL?: boolean;
  BOOL?: boolean;
}

/** An item, or a key: attribute values by name. */
export type Item = Record<string, AttributeValue>;

/** What every answer carries besides its fields (the SDK's `$metadata`). */
export interface ResponseMetadata {
  httpStatusCode?: number;
  requestId?: string;
  /** Attempts made, the first included. */
  attempts?: number;
  /**
   * The answering attempt's own exchange: when it left and came back on our clock, and
   * the service's `Date` (read_stamp.ts stamps a read from it). None without a `Date`.
   */
  clock?: ClockReading;
}

/** A request for {@link DynamoClient.send}: its API target and input; `O` its answer. */
export interface Command<I, O> {
  /** `DynamoDB_20120810.<Operation>` or `DynamoDBStreams_20120810.<Operation>`. */
  readonly target: string;
  readonly input: I;
  /** Never set: carries the answer's type. */
  readonly output?: O;
}

interface Capacity {
  TableName?: string;
  CapacityUnits?: number;
}

/** Scan's request (the fields used here). */
export interface ScanInput {
  TableName: string;
  Segment?: number;
  TotalSegments?: number;
  ExclusiveStartKey?: Item;
  Limit?: number;
  ConsistentRead?: boolean;
  ReturnConsumedCapacity?: "TOTAL" | "INDEXES" | "NONE";
  ProjectionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
}

/** A page of Scan's or Query's items. */
export interface PageOutput {
  Items?: Item[];
  Count?: number;
  ScannedCount?: number;
  LastEvaluatedKey?: Item;
  ConsumedCapacity?: Capacity;
}

/** Query's request (the fields used here). */
export interface QueryInput {
  TableName: string;
  KeyConditionExpression: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Item;
  ProjectionExpression?: string;
  ExclusiveStartKey?: Item;
  ScanIndexForward?: boolean;
  ConsistentRead?: boolean;
  Limit?: number;
  ReturnConsumedCapacity?: "TOTAL" | "INDEXES" | "NONE";
}

/** GetItem's request. */
export interface GetItemInput {
  TableName: string;
  Key: Item;
  ConsistentRead?: boolean;
  ProjectionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
}

/** UpdateItem's request. */
export interface UpdateItemInput {
  TableName: string;
  Key: Item;
  UpdateExpression?: string;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Item;
  ReturnValues?: "NONE" | "ALL_OLD" | "UPDATED_OLD" | "ALL_NEW" | "UPDATED_NEW";
}

/** The parts of DescribeTable's table description used here. */
export interface TableDescription {
  TableName?: string;
  TableArn?: string;
  TableStatus?: string;
  KeySchema?: { AttributeName: string; KeyType: "HASH" | "RANGE" }[];
  StreamSpecification?: { StreamEnabled?: boolean; StreamViewType?: string };
  LatestStreamArn?: string;
  LatestStreamLabel?: string;
  ItemCount?: number;
  TableSizeBytes?: number;
}

/** A shard of DescribeStream's answer. */
export interface Shard {
  ShardId?: string;
  ParentShardId?: string;
  SequenceNumberRange?: { StartingSequenceNumber?: string; EndingSequenceNumber?: string };
}

/** A record of GetRecords' answer. */
export interface StreamRecordOut {
  eventID?: string;
  eventName?: "INSERT" | "MODIFY" | "REMOVE";
  eventSource?: string;
  awsRegion?: string;
  dynamodb?: {
    /** Seconds since the epoch. */
    ApproximateCreationDateTime?: number;
    Keys?: Item;
    NewImage?: Item;
    OldImage?: Item;
    SequenceNumber?: string;
    SizeBytes?: number;
    StreamViewType?: string;
  };
}

const DYNAMODB = "DynamoDB_20120810";
const STREAMS = "DynamoDBStreams_20120810";

/** Scan: a page of a table (or of one segment of it). */
export class ScanCommand implements Command<ScanInput, PageOutput> {
  declare readonly output?: PageOutput;
  readonly target = `${DYNAMODB}.Scan`;
  constructor(readonly input: ScanInput) {}
}

/** Query: a page of one partition's items. */
export class QueryCommand implements Command<QueryInput, PageOutput> {
  declare readonly output?: PageOutput;
  readonly target = `${DYNAMODB}.Query`;
  constructor(readonly input: QueryInput) {}
}

/** GetItem: one item by its key. */
export class GetItemCommand
  implements Command<GetItemInput, { Item?: Item; ConsumedCapacity?: Capacity }> {
  declare readonly output?: { Item?: Item; ConsumedCapacity?: Capacity };
  readonly target = `${DYNAMODB}.GetItem`;
  constructor(readonly input: GetItemInput) {}
}

/** UpdateItem: changes an item's attributes, under a condition. */
export class UpdateItemCommand implements Command<UpdateItemInput, { Attributes?: Item }> {
  declare readonly output?: { Attributes?: Item };
  readonly target = `${DYNAMODB}.UpdateItem`;
  constructor(readonly input: UpdateItemInput) {}
}

/** DescribeTable: a table's keys, status and stream. */
export class DescribeTableCommand
  implements Command<{ TableName: string }, { Table?: TableDescription }> {
  declare readonly output?: { Table?: TableDescription };
  readonly target = `${DYNAMODB}.DescribeTable`;
  constructor(readonly input: { TableName: string }) {}
}

/** DescribeStream: a stream's shards, a page at a time. */
export class DescribeStreamCommand implements
  Command<
    { StreamArn: string; ExclusiveStartShardId?: string; Limit?: number },
    {
      StreamDescription?: {
        StreamStatus?: string;
        Shards?: Shard[];
        LastEvaluatedShardId?: string;
      };
    }
  > {
  declare readonly output?: {
    StreamDescription?: {
      StreamStatus?: string;
      Shards?: Shard[];
      LastEvaluatedShardId?: string;
    };
  };
  readonly target = `${STREAMS}.DescribeStream`;
  constructor(
    readonly input: { StreamArn: string; ExclusiveStartShardId?: string; Limit?: number },
  ) {}
}

/** GetShardIterator: where in a shard a read starts. */
export class GetShardIteratorCommand implements
  Command<
    {
      StreamArn: string;
      ShardId: string;
      ShardIteratorType: "TRIM_HORIZON" | "LATEST" | "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER";
      SequenceNumber?: string;
    },
    { ShardIterator?: string }
  > {
  declare readonly output?: { ShardIterator?: string };
  readonly target = `${STREAMS}.GetShardIterator`;
  constructor(
    readonly input: {
      StreamArn: string;
      ShardId: string;
      ShardIteratorType: "TRIM_HORIZON" | "LATEST" | "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER";
      SequenceNumber?: string;
    },
  ) {}
}

/** GetRecords: the records after an iterator. */
export class GetRecordsCommand implements
  Command<
    { ShardIterator: string; Limit?: number },
    { Records?: StreamRecordOut[]; NextShardIterator?: string }
  > {
  declare readonly output?: { Records?: StreamRecordOut[]; NextShardIterator?: string };
  readonly target = `${STREAMS}.GetRecords`;
  constructor(readonly input: { ShardIterator: string; Limit?: number }) {}
}
