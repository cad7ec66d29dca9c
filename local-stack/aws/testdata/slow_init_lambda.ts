/**
 * A Lambda handler whose init (its module's top level) takes 2 s, for
 * lambda_environments_test.ts: a first init has a phase of its own, outside the
 * invocation's timeout; one after a reset is part of the next invocation. An event whose
 * first record's id is "hang" never ends (it times out).
 *
 * @module
 */
import type { BatchResponse, DynamoDBStreamEvent } from "../../../lambda/stream_records.ts";

await new Promise((resolve) => setTimeout(resolve, 2_000));

export function handler(event: DynamoDBStreamEvent): Promise<BatchResponse> {
  if (event.Records[0]?.eventID === "hang") return new Promise(() => {});
  return Promise.resolve({ batchItemFailures: [] });
}
