/**
 * Writes items into DynamoDB tables with parallel BatchWriteItem (25 items a request,
 * several requests in flight), retrying unprocessed items with backoff, and reports a
 * line per table with counts and rate.
 *
 * @module
 */

import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { realPacing, ScanGaveUp, withBackoff } from "../functions-shared/scan_pacing.ts";

/** An item in DynamoDB JSON. */
export type Item = Record<string, AttributeValue>;

/**
 * Writes `items` into `table`, `concurrency` requests at a time; returns how many were
 * written. `onProgress` hears the count written so far after each request.
 */
export async function batchWrite(
  client: DynamoDBClient,
  table: string,
  items: Item[],
  concurrency = 8,
  onProgress: (written: number) => void = () => {},
): Promise<number> {
  const chunks: Item[][] = [];
  for (let i = 0; i < items.length; i += 25) chunks.push(items.slice(i, i + 25));
  let next = 0;
  let written = 0;
  const writeChunk = async (chunk: Item[]) => {
    let requests = chunk.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > 10) throw new Error(`${table}: ${requests.length} items stayed unprocessed`);
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
      // A request the SDK's own retries could not get through (throttling, a 5xx: the
      // local stack injects 2% of them, and the SDK's retry quota runs dry under many)
      // is tried again, rounds with backoff, as the sync's own Scans are.
      const { UnprocessedItems } = await withBackoff(
        () => client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } })),
        () => {},
        realPacing,
      ).catch((error) => {
        if (!(error instanceof ScanGaveUp)) throw error;
        throw new Error(`BatchWriteItem on ${table}: ${error.cause.name}: ${error.cause.message}`, {
          cause: error,
        });
      });
      requests = (UnprocessedItems?.[table] ?? []) as typeof requests;
    }
    written += chunk.length;
    onProgress(written);
  };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < chunks.length) await writeChunk(chunks[next++]);
    }),
  );
  return items.length;
}
