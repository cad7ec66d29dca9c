/**
 * What Lambda's DynamoDB event source mapping hands the stream forwarder, and what it
 * answers: the event and its records, the context's time, the partial batch response;
 * and the records split, in order, into bodies the webhook takes (6 MiB at most).
 *
 * @module
 */

import { tableNameFromArn } from "../functions-shared/table_arn.ts";

/** The parts of a DynamoDB Streams record the forwarder reads; the rest passes through. */
export interface StreamRecord {
  eventID?: string;
  eventSourceARN?: string;
  dynamodb?: { SequenceNumber?: string; Keys?: Record<string, unknown> };
  [field: string]: unknown;
}

/** The event Lambda's DynamoDB event source mapping invokes the function with. */
export interface DynamoDBStreamEvent {
  Records: StreamRecord[];
}

/** The part of Lambda's context object the forwarder uses. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
  awsRequestId?: string;
}

/** The answer that makes Lambda retry from the first failed record only. */
export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** The webhook's limit is 6 MiB; leave room for the envelope. */
const MAX_REQUEST_BYTES = 6 * 1024 * 1024 - 1024;
/** Splits records, in order, into bodies of at most `maxBytes`. */
export function splitIntoBodies(records: StreamRecord[], maxBytes = MAX_REQUEST_BYTES) {
  const batches: StreamRecord[][] = [];
  let current: StreamRecord[] = [];
  let size = 0;
  for (const record of records) {
    const bytes = new TextEncoder().encode(JSON.stringify(record)).byteLength + 1;
    if (current.length > 0 && size + bytes > maxBytes) {
      batches.push(current);
      current = [];
      size = 0;
    }
    current.push(record);
    size += bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** The table a batch's records come from, as their stream's ARN names it. */
function tableOf(records: StreamRecord[]): string {
  return tableNameFromArn(records[0]?.eventSourceARN ?? "") ?? "an unnamed table";
}

/**
 * A record's key as the webhook's messages write one (`[name=value, ...]`, a number bare,
 * any other value as JSON), from its DynamoDB JSON `Keys`; the forwarder carries no
 * registry, so the attributes come in the record's order.
 */
export function keyText(keys: Record<string, unknown> | undefined): string {
  const parts = Object.entries(keys ?? {}).map(([name, typed]) => {
    const [type, value] = Object.entries((typed ?? {}) as Record<string, unknown>)[0] ?? [];
    return `${name}=${
      type === "N" && typeof value === "string" ? value : JSON.stringify(value ?? null)
    }`;
  });
  return `[${parts.join(", ")}]`;
}

/**
 * Where a body of records starts, for log lines: its table, its first record's sequence
 * number and key (`orders from 000…123, key [id="a"]`). One forwarder serves every table
 * of its region, and an operator finds the record at fault by either.
 */
export function bodyStart(records: StreamRecord[]): string {
  const first = records[0]?.dynamodb;
  return `${tableOf(records)} from ${first?.SequenceNumber ?? "?"}, key ${keyText(first?.Keys)}`;
}
