/**
 * Writes items into DynamoDB tables with parallel BatchWriteItem (25 items a request,
 * several requests in flight), and writes one batch of puts or deletes until every request
 * is written ({@link writeBatch}): the demo data set's load, and the tests' own fixtures.
 *
 * A BatchWriteItem may write only some of its requests: those it could not (the table's
 * write capacity spent, an internal failure) come back in `UnprocessedItems`, and when none
 * fit it fails with ProvisionedThroughputExceededException (API reference, BatchWriteItem,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html;
 * the stack's proxy answers so under `throttle_wcu`, local-stack/aws/write_capacity.ts).
 * AWS advises sending them again with exponential backoff, so that is what happens here,
 * for as long as the table takes some: only time without a round that writes something
 * counts towards giving up ({@link STALL_MS}), as a table throttled to a rate still writes
 * a few of a batch each round, and a table whose capacity is in deficit (a write that cost
 * more than was left) writes nothing until its refill has paid that back, however many
 * rounds that takes.
 *
 * @module
 */

import {
  type AttributeValue,
  BatchWriteItemCommand,
  type BatchWriteItemCommandOutput,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { isTransientRead, type PacingDeps, realPacing } from "../functions-shared/scan_pacing.ts";

/** An item in DynamoDB JSON. */
export type Item = Record<string, AttributeValue>;

/** What the writes need of a DynamoDB client (an AWS SDK DynamoDBClient is one). */
export interface BatchWriter {
  send(command: BatchWriteItemCommand): Promise<BatchWriteItemCommandOutput>;
}

/** How long {@link writeBatch} goes on without a round that writes something: a minute. */
export const STALL_MS = 60_000;

/** The backoff between rounds: full jitter, from 50 ms, doubling while stalled, to 5 s. */
const BASE_WAIT_MS = 50;
const MAX_WAIT_MS = 5_000;

/**
 * Writes `requests` (puts and deletes, at most 25) to `table` with BatchWriteItem, round
 * after round until every one is written: what a round leaves in `UnprocessedItems`, or a
 * whole round that failed with a retryable error after the client's own attempts
 * (ProvisionedThroughputExceededException when none fit, a 5xx), is sent again after a
 * backoff (random × min(5 s, 50 ms × 2^rounds without progress)). Gives up once
 * {@link STALL_MS} have passed on `pacing`'s clock since the last round that wrote
 * something (or the start), with an error naming the table, the requests left, the time,
 * the rounds and the last cause; an error no retry can cure is thrown at once, in an error
 * naming the table (the client's error its `cause`).
 */
export async function writeBatch(
  client: BatchWriter,
  table: string,
  requests: WriteRequest[],
  pacing: PacingDeps = realPacing,
): Promise<void> {
  let stalled = 0;
  let progressAt = pacing.now();
  while (requests.length > 0) {
    let left: WriteRequest[];
    let cause: string;
    try {
      const { UnprocessedItems } = await client.send(
        new BatchWriteItemCommand({ RequestItems: { [table]: requests } }),
      );
      left = UnprocessedItems?.[table] ?? [];
      cause = `${left.length} of ${requests.length} left unprocessed`;
    } catch (error) {
      const e = error as Error;
      if (!isTransientRead(e)) {
        throw new Error(
          `BatchWriteItem on ${table} (first ${firstRequest(requests)}): ${e.name}: ${e.message}`,
          { cause: e },
        );
      }
      left = requests;
      cause = `${e.name}: ${e.message}`;
    }
    if (left.length < requests.length) [stalled, progressAt] = [0, pacing.now()];
    else stalled++;
    requests = left;
    if (requests.length === 0) return;
    const waited = pacing.now() - progressAt;
    if (waited >= STALL_MS) {
      throw new Error(
        `BatchWriteItem on ${table}: ${requests.length} requests still unwritten (first ` +
          `${firstRequest(requests)}) after ` +
          `${(waited / 1000).toFixed(1)} s without a round that wrote one (${stalled} ` +
          `rounds in a row; the last: ${cause})`,
      );
    }
    await pacing.sleep(
      Math.floor(pacing.random() * Math.min(MAX_WAIT_MS, BASE_WAIT_MS * 2 ** stalled)),
    );
  }
}

/**
 * Writes `items` into `table`, `concurrency` requests at a time ({@link writeBatch} each);
 * returns how many were written. `onProgress` hears the count written so far after each
 * request.
 */
export async function batchWrite(
  client: BatchWriter,
  table: string,
  items: Item[],
  concurrency = 8,
  onProgress: (written: number) => void = () => {},
  pacing: PacingDeps = realPacing,
): Promise<number> {
  const chunks: Item[][] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  let next = 0;
  let written = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++];
        await writeBatch(client, table, chunk.map((Item) => ({ PutRequest: { Item } })), pacing);
        written += chunk.length;
        onProgress(written);
      }
    }),
  );
  return items.length;
}

/**
 * The first of `requests`, for an error: a delete's key, or a put's item (as DynamoDB's
 * JSON, its first 200 characters: the key is among them, and the item may be large).
 */
function firstRequest(requests: WriteRequest[]): string {
  const first = requests[0];
  const shown = first?.DeleteRequest?.Key ?? first?.PutRequest?.Item ?? {};
  const text = JSON.stringify(shown);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
