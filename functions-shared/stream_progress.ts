/**
 * The webhook's half of the lost-record check (docs/sync-semantics.md, "Lost stream
 * records"): every stream record of a batch the webhook commits is noted in
 * `sync.stream_batches_applied` (one row per stream of the batch: its records' sequence
 * numbers), in the batch's own transaction, so that the scheduled
 * check (functions-shared/stream_check.ts) can tell which records a shard still holds
 * were applied.
 *
 * Why the record's own sequence number and not "the last one per shard": a record as
 * Lambda delivers it names its stream (`eventSourceARN`) and its
 * `dynamodb.SequenceNumber`, but not its shard
 * (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html; only tumbling-window
 * invocations carry a `shardId`,
 * https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html), and sequence
 * numbers order records within a shard only. The check reads each shard and looks its
 * records up here, so nothing has to guess a shard.
 *
 * @module
 */

import type postgres from "postgres";
import type { WebhookBody } from "./webhook_envelope.ts";

/** The records to note: each stream's ARN and its records' sequence numbers. */
export type NotedRecords = Record<string, string[]>;

/** The records of a body to note: every stream record, whatever became of it. */
export function recordsToNote(body: WebhookBody): NotedRecords {
  const noted: NotedRecords = {};
  if (body.kind !== "records") return noted;
  for (const r of body.records) (noted[r.eventSourceARN] ??= []).push(r.dynamodb.SequenceNumber);
  return noted;
}

/** Whether there is nothing to note. */
export function noneToNote(records: NotedRecords): boolean {
  return Object.keys(records).length === 0;
}

/**
 * Notes `records` inside the caller's transaction (one statement for the batch);
 * returns how many it noted. Nothing to note, no round trip.
 */
export async function noteStreamRecords(
  tx: postgres.TransactionSql,
  records: NotedRecords,
): Promise<number> {
  if (noneToNote(records)) return 0;
  const [row] = await tx.unsafe("select sync.note_stream_records($1::text::jsonb) as noted", [
    JSON.stringify(records),
  ]);
  return Number(row.noted);
}
