/**
 * `error_rate` of DYNAMODB_FAULTS (local-stack/aws/faults.ts): that share of requests
 * (every DynamoDB and DynamoDB Streams operation) is answered with HTTP 500
 * InternalServerError, as AWS answers "an error occurred on the server side" (AWS
 * Developer Guide, "Error handling with DynamoDB": HTTP 5xx, "OK to retry? Yes"; each of
 * DynamoDB Streams' operations lists InternalServerError too, e.g.
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html).
 * A Streams operation only reads: it fails before it is forwarded (an iterator is not
 * spent, and may be used again, as on AWS until it expires).
 *
 * Whether the request took effect. A 500 is a server's failure to answer, not a promise
 * that nothing happened: the guide tells clients to retry 5xx errors, and writes must be
 * safe to retry for that reason (a timeout after the write is the same case). So for a
 * write the proxy decides at random, half and half: either the 500 comes instead of
 * forwarding (nothing written), or the write is forwarded, takes effect, and its answer
 * is replaced by the 500. Reads are never forwarded when they fail. This is stricter than
 * a proxy that only fails before forwarding: a client that retries a non-idempotent write
 * (an ADD, a list append, a condition that the first attempt made false) is caught.
 *
 * @module
 */

import type { Random } from "./history.ts";

/**
 * A request the stand-in makes on behalf of one that already drew its faults (a page of a
 * split shard's sibling read past, a second GetShardIterator: stream_shards.ts): it draws
 * none, so one GetRecords fails as often as on AWS however many pages it reads below.
 */
export const FOLLOW_UP_HEADER = "x-local-stack-follow-up";

/** The operations that write (the rest read or describe). */
export const WRITE_OPERATIONS: ReadonlySet<string> = new Set([
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "BatchWriteItem",
  "TransactWriteItems",
]);

/**
 * The operations that change something, item writes or not: a failure may come after
 * the change (the point-in-time recovery and export operations, which the stack serves
 * itself: local-stack/aws/exports.ts).
 */
const CHANGING_OPERATIONS: ReadonlySet<string> = new Set([
  ...WRITE_OPERATIONS,
  "ExportTableToPointInTime",
  "UpdateContinuousBackups",
]);

/** What the proxy does with a request under `error_rate`. */
export type ErrorDecision = "none" | "fail before forwarding" | "fail after forwarding";

/**
 * Decides whether a request fails: `target` is the X-Amz-Target header
 * (`DynamoDB_20120810.<Op>` or `DynamoDBStreams_20120810.<Op>`).
 */
export function decideError(target: string, errorRate: number, random: Random): ErrorDecision {
  const streams = target.startsWith("DynamoDBStreams_20120810.");
  if (errorRate <= 0 || !(streams || target.startsWith("DynamoDB_20120810."))) return "none";
  if (random() >= errorRate) return "none";
  if (streams) return "fail before forwarding";
  const operation = target.slice("DynamoDB_20120810.".length);
  if (!CHANGING_OPERATIONS.has(operation)) return "fail before forwarding";
  return random() < 0.5 ? "fail before forwarding" : "fail after forwarding";
}

/**
 * The body AWS sends with HTTP 500 InternalServerError; its message says why the stack
 * sent one (`why`: by default, injected by `error_rate`).
 */
export function internalServerError(
  operation: string,
  table: string | undefined,
  why = "injected by the local stack's DYNAMODB_FAULTS error_rate",
): string {
  return JSON.stringify({
    __type: "com.amazonaws.dynamodb.v20120810#InternalServerError",
    message: `Internal server error (${why}; ${operation}${table ? ` on table ${table}` : ""})`,
  });
}
