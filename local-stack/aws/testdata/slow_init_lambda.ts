/**
 * A Lambda handler whose init (its module's top level) takes 300 ms, for
 * lambda_environments_test.ts: init has a phase of its own, outside the invocation's
 * timeout.
 *
 * @module
 */
import type { BatchResponse } from "../../../lambda/stream_forwarder.ts";

await new Promise((resolve) => setTimeout(resolve, 300));

export function handler(): Promise<BatchResponse> {
  return Promise.resolve({ batchItemFailures: [] });
}
