/**
 * How Lambda's event source mapping cuts one shard's records into batches
 * (event_source_mapping.ts): at most `BatchSize` records, and an event under Lambda's
 * synchronous payload limit.
 *
 * @module
 */

import type { StreamRecord } from "../../lambda/stream_records.ts";

/**
 * Lambda's limit on a synchronous invocation's payload, 6 MB: a batch holds at most
 * `BatchSize` records "up to the payload limit for synchronous invocation (6 MB)"
 * (AWS's Lambda API reference, EventSourceMappingConfiguration's BatchSize), and a
 * request must be "smaller than 6291456 bytes for the InvokeFunction operation".
 */
export const EVENT_LIMIT_BYTES = 6_291_456;

const encoder = new TextEncoder();

/**
 * Lambda's batches of one shard's records, in order: each as many records as fit in
 * `batchSize` and in an event (`{"Records":[...]}` as JSON) smaller than `limitBytes`; a
 * record alone is always a batch, whatever its size (a DynamoDB item is at most 400 KB).
 */
export function batchesOf(
  records: StreamRecord[],
  batchSize: number,
  limitBytes = EVENT_LIMIT_BYTES,
): StreamRecord[][] {
  const envelope = encoder.encode('{"Records":[]}').length;
  const batches: StreamRecord[][] = [];
  let batch: StreamRecord[] = [];
  let bytes = 0; // the event's size with the records of `batch`
  for (const record of records) {
    const size = encoder.encode(JSON.stringify(record)).length;
    // The event with this record too: a comma before it unless it is the first.
    const withIt = batch.length === 0 ? envelope + size : bytes + 1 + size;
    if (batch.length > 0 && (batch.length >= batchSize || withIt >= limitBytes)) {
      batches.push(batch);
      batch = [];
      bytes = envelope + size;
    } else {
      bytes = withIt;
    }
    batch.push(record);
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
