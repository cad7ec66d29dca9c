/**
 * Fakes for the stream forwarder's tests: stream records, a webhook that answers with the
 * statuses given, the lines written to console.error, and a Lambda context.
 *
 * @module
 */

import process from "node:process";
import { webhookProblem } from "../functions-shared/webhook_signing.ts";
import type { StreamRecord } from "./stream_records.ts";
import { forwarderClock } from "./stream_forwarder.ts";

/**
 * The forwarder's pauses before it reports a batch not delivered, in ms: taken at once in
 * these tests, and recorded.
 */
export const pauses: number[] = [];
forwarderClock.sleep = (ms) => {
  pauses.push(ms);
  return Promise.resolve();
};

/** The webhook secret the fakes sign and check with. */
export const SECRET = `whsec_${btoa("s".repeat(32))}`;

/** A stream record of `seq`, its key `size` characters long. */
export function record(seq: string, size = 10): StreamRecord {
  return {
    eventID: `e${seq}`,
    eventName: "INSERT",
    eventSourceARN: "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/x",
    dynamodb: { SequenceNumber: seq, Keys: { id: { S: "x".repeat(size) } } } as never,
  };
}

/** A webhook that answers with the statuses given, in turn, and records what it got. */
export function fakeWebhook(statuses: number[], retryAfter = "0") {
  const received: { records: StreamRecord[]; signed: boolean; id: string | null }[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const body = await req.text();
    received.push({
      records: JSON.parse(body).records,
      signed: webhookProblem(SECRET, req.headers, body) === undefined,
      id: req.headers.get("webhook-id"),
    });
    const status = statuses.shift() ?? 200;
    const records = JSON.parse(body).records.length;
    // A 2xx as the webhook answers it (the forwarder counts nothing else as delivered).
    const answer = status < 300
      ? { received: records, applied: records, skipped: 0, deadLettered: 0 }
      : { status };
    return new Response(JSON.stringify(answer), {
      status,
      headers: status === 503 || status === 429 ? { "retry-after": retryAfter } : {},
    });
  });
  process.env.WEBHOOK_URL = `http://127.0.0.1:${server.addr.port}/`;
  process.env.SYNC_WEBHOOK_SECRET = SECRET;
  return { received, close: () => server.shutdown() };
}

/** What `run` wrote to console.error, and what it returned. */
export async function errorLines<T>(
  run: () => Promise<T>,
): Promise<{ lines: string[]; result: T }> {
  const lines: string[] = [];
  const error = console.error;
  console.error = (text: string) => lines.push(text);
  try {
    return { lines, result: await run() };
  } finally {
    console.error = error;
  }
}

/** A Lambda context with `ms` left. */
export const context = (ms = 10_000) => {
  const end = Date.now() + ms;
  return { getRemainingTimeInMillis: () => end - Date.now() };
};
