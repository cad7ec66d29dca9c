/**
 * Lambda's on-failure messages as `npm run stream:replay` reads them
 * (replay_stream_failure.ts): the files named (a directory's files, whatever their
 * names, and those of its subdirectories), each file's message (an S3 destination's
 * object, the SQS body, or an SNS notification of it), and the records an S3
 * destination's object carries.
 *
 * @module
 */

import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { compareDecimal } from "../functions-shared/dynamo_numbers.ts";
import type { StreamFailureMessage } from "../local-stack/aws/event_source_mapping.ts";
import type { StreamRecord } from "../lambda/stream_records.ts";

/** Where a replayed message file goes: `replayed/` beside it (never read again). */
export const REPLAYED_DIR = "replayed";

/** A directory's files and its subdirectories' files, by path; not hidden ones nor `replayed/`. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).filter((f) => !f.startsWith(".")).sort().flatMap((f) => {
    const path = join(dir, f);
    if (!statSync(path).isDirectory()) return [path];
    return f === REPLAYED_DIR ? [] : filesUnder(path);
  });
}

/**
 * The message files named: a file as it is, a directory's files (any name: `split`
 * writes `dlq-aa`, `dlq-ab`, ...) and its subdirectories' (an S3 destination's objects
 * are under `aws/lambda/<mapping>/<shard>/<year>/<month>/<day>/`), but not hidden files
 * nor those already replayed (`replayed/`). A path that does not exist is a problem, named.
 */
export function messageFiles(paths: string[]): { files: string[]; problems: string[] } {
  const files: string[] = [];
  const problems: string[] = [];
  for (const path of paths) {
    if (!existsSync(path)) {
      problems.push(`${path}: no such file or directory`);
    } else if (statSync(path).isDirectory()) {
      files.push(...filesUnder(path));
    } else {
      files.push(path);
    }
  }
  return { files, problems };
}

/**
 * The records an S3 destination's object carries, checked against the message's own
 * range; undefined for an SQS or SNS message, which carries none. The `payload` is the
 * failed invocation's event, "the original invocation record as an escaped JSON string"
 * (AWS, "Retain discarded records for a DynamoDB event source"); an object is read too.
 * That event may hold more than the range (a batch bisected, or partly reported failed,
 * before Lambda gave up): only its records within the range are kept, and they must be
 * the batch's `batchSize`, in order, of its stream. Throws naming what does not match:
 * such records are not the range, and are not sent.
 */
export function payloadRecords(message: StreamFailureMessage): StreamRecord[] | undefined {
  let payload: unknown = (message as { payload?: unknown }).payload;
  if (payload === undefined || payload === null) return undefined;
  const info = message.DDBStreamBatchInfo;
  const bad = (why: string) =>
    new Error(
      `its payload is not the records ${info.startSequenceNumber}..${info.endSequenceNumber} ` +
        `of ${info.shardId}: ${why}`,
    );
  if (typeof payload === "string") {
    try {
      payload = JSON.parse(payload);
    } catch (error) {
      throw bad(`not JSON (${(error as Error).message})`);
    }
  }
  const records = (payload as { Records?: unknown })?.Records;
  if (!Array.isArray(records)) throw bad("it has no Records");
  const kept: StreamRecord[] = [];
  for (const record of records as StreamRecord[]) {
    const sequence = record?.dynamodb?.SequenceNumber;
    if (typeof sequence !== "string" || !/^\d+$/.test(sequence)) {
      throw bad(`a record has no sequence number`);
    }
    if (record.eventSourceARN !== info.streamArn) {
      throw bad(`record ${sequence} is of ${String(record.eventSourceARN)}`);
    }
    if (
      compareDecimal(sequence, info.startSequenceNumber) < 0 ||
      compareDecimal(sequence, info.endSequenceNumber) > 0
    ) continue;
    const previous = kept.at(-1)?.dynamodb?.SequenceNumber;
    if (previous !== undefined && compareDecimal(sequence, previous) <= 0) {
      throw bad(`record ${sequence} is out of order`);
    }
    kept.push(record);
  }
  if (kept.length !== info.batchSize) {
    throw bad(`${kept.length} records within it where the batch had ${info.batchSize}`);
  }
  return kept;
}

/**
 * An on-failure message from its file: an S3 destination's object, the SQS message's
 * body, or an SNS notification whose `Message` is that body. Throws naming what the
 * file is not.
 */
export function readMessage(text: string): StreamFailureMessage {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON (${(error as Error).message})`);
  }
  const notification = body as { Type?: unknown; Message?: unknown };
  if (notification?.Type === "Notification" && typeof notification.Message === "string") {
    return readMessage(notification.Message);
  }
  const info = (body as { DDBStreamBatchInfo?: { streamArn?: unknown } })?.DDBStreamBatchInfo;
  const event = body as { Records?: { eventSource?: unknown }[]; Event?: unknown };
  if (event?.Records?.[0]?.eventSource === "aws:s3" || event?.Event === "s3:TestEvent") {
    throw new Error(
      "an S3 event notification (the failure queue's message), not a failed batch: copy the " +
        "object it names from the failure bucket (`aws s3 cp`) and replay that",
    );
  }
  if (typeof info?.streamArn !== "string") {
    throw new Error(
      "not an on-failure message of a DynamoDB stream mapping (it has no DDBStreamBatchInfo)",
    );
  }
  return body as StreamFailureMessage;
}
