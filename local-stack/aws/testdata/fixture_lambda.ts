/**
 * A Lambda handler for lambda_environments_test.ts: answers its environment's id (made
 * at init) and how many invocations that environment has run; an event whose first
 * record's eventID is `hang:<path>` appends a line to that file every 10 ms and never
 * answers; `throw` throws; `crash` crashes its environment; `crash-later` answers, then
 * crashes it while it is idle.
 *
 * @module
 */
import type { BatchResponse, DynamoDBStreamEvent } from "../../../lambda/stream_records.ts";

const environment = crypto.randomUUID();
let invocations = 0;

export function handler(event: DynamoDBStreamEvent): Promise<BatchResponse> {
  invocations++;
  const what = event.Records[0]?.eventID ?? "";
  if (what.startsWith("hang:")) {
    const path = what.slice("hang:".length);
    setInterval(() => Deno.writeTextFileSync(path, "still running\n", { append: true }), 10);
    return new Promise(() => {});
  }
  if (what === "throw") return Promise.reject(new Error("the handler failed"));
  if (what === "crash-later") {
    setTimeout(() => {
      throw new Error("uncaught, after the answer");
    }, 20);
  }
  if (what === "crash") {
    setTimeout(() => {
      throw new Error("uncaught");
    });
    return new Promise(() => {});
  }
  return Promise.resolve({
    batchItemFailures: [{ itemIdentifier: `${environment} ${invocations}` }],
  });
}
