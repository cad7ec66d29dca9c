/**
 * Lambda's S3 on-failure destination for a stream mapping: the object it writes for a
 * batch it gives up on, and that object's key. The object is the message SQS or SNS
 * would get plus `payload`, the failed invocation's event with its records ("For
 * Amazon S3 destinations, Lambda also sends the entire invocation record along with
 * the metadata", as "an escaped JSON string",
 * https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
 * The key is "aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>"
 * (https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html; the
 * same for DynamoDB streams). The stack keeps these objects as files under that key
 * (stream_poller.ts), as `aws s3 cp --recursive` copies the bucket's for
 * `npm run stream:replay`.
 *
 * @module
 */

import type { StreamRecord } from "../../lambda/stream_records.ts";
import type { StreamFailureMessage } from "./event_source_mapping.ts";

/** The object for a batch: the message, with its event (the records) as JSON text. */
export function failureObject(
  message: StreamFailureMessage,
  records: StreamRecord[],
): StreamFailureMessage {
  return { ...message, payload: JSON.stringify({ Records: records }) };
}

/** The object's key for a mapping's batch given up `at` (UTC), `id` its random part. */
export function failureObjectKey(
  mappingUuid: string,
  shardId: string,
  at: Date,
  id: string = crypto.randomUUID(),
): string {
  const [date, time] = at.toISOString().split("T");
  const day = date.replaceAll("-", "/");
  const clock = time.slice(0, 8).replaceAll(":", ".");
  return `aws/lambda/${mappingUuid}/${shardId}/${day}/${date}T${clock}-${id}`;
}
