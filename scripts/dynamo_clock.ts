/**
 * DynamoDB's clock, read from the HTTP `Date` of an answer, for the export command's
 * decisions that compare times DynamoDB gave (an export's time, a stream's label) with
 * "now": nothing compares this machine's wall clock with DynamoDB's (a clock seconds off
 * would take an earlier export for this request's, or ask for an export the table's
 * stream does not yet cover).
 *
 * @module
 */

import type { ClockReading } from "../functions-shared/read_stamp.ts";

/** A command of the AWS SDK: what this module needs of one, its middleware stack. */
interface SdkCommand {
  middlewareStack: {
    // deno-lint-ignore no-explicit-any
    add(middleware: (next: any) => (args: any) => Promise<any>, options: object): void;
  };
}

/**
 * Sends `command` by `send`, answering its output with the clock reading of its answer:
 * the round trip, on a monotonic clock, and the HTTP `Date` of the answer that carried the
 * output (the SDK gives no headers with an output). The reading is undefined when that
 * answer had no `Date` that parses.
 */
export async function sendReadingClock<C extends SdkCommand, O>(
  command: C,
  send: (command: C) => Promise<O>,
): Promise<{ output: O; clock: ClockReading | undefined }> {
  let date: string | undefined;
  // In the finalizeRequest step at low priority: inside the SDK's retry middleware (that
  // step's, at high priority), so it sees each attempt, and outside the deserializer, so
  // an attempt answered with an error (thrown there) is not read: the last attempt it sees
  // is the one whose answer is the output. On this command alone: the client is shared.
  command.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const headers = (result.response as { headers?: Record<string, string> }).headers ?? {};
      date = Object.entries(headers).find(([name]) => name.toLowerCase() === "date")?.[1];
      return result;
    },
    { step: "finalizeRequest", priority: "low", name: "answerDateReader" },
  );
  const sentAt = performance.now();
  const output = await send(command);
  const roundTripMs = performance.now() - sentAt;
  const serverMs = Date.parse(date ?? "");
  return { output, clock: Number.isFinite(serverMs) ? { roundTripMs, serverMs } : undefined };
}
