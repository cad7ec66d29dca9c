/**
 * What makes the S3 stand-in as unreliable as S3 itself: s3rver answers every request, in
 * full, at once, which S3 does not promise. In front of it (local-stack/aws/s3_main.ts):
 *
 * - a share of requests (`errorRate`) is answered `503 SlowDown`, S3's answer when it
 *   asks the caller to slow down ("You can send 3,500 PUT/COPY/POST/DELETE or 5,500
 *   GET/HEAD requests per second per partitioned Amazon S3 prefix ... you might receive
 *   HTTP 503 slowdown errors", https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html),
 *   which the SDK retries and the export loader then waits out (export_failures.ts);
 * - a share of an export's data file reads (`cutRate`) stops part-way through its body,
 *   as a connection broken mid-download does: the loader reads the file again from its
 *   last checkpoint (export_load.ts).
 *
 * @module
 */

import { s3Error } from "./s3_errors.ts";

/** The shares of requests that fail: 0 turns each off. */
export interface S3Faults {
  errorRate: number;
  cutRate: number;
}

/** The stack's: rarely, as on a busy day. */
export const DEFAULT_S3_FAULTS: S3Faults = { errorRate: 0.02, cutRate: 0.05 };

/** An export's data file (`.../AWSDynamoDB/<id>/data/<file>.json.gz`). */
const DATA_FILE = /\/AWSDynamoDB\/[^/]+\/data\/[^/]+$/;

/** S3's `SlowDown` error. */
export function slowDown(): Response {
  return s3Error(503, "SlowDown", "Please reduce your request rate.");
}

/** A body that ends with an error after its first `keep` bytes. */
export function cutBody(
  body: ReadableStream<Uint8Array>,
  keep: number,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      if (sent + value.byteLength < keep) {
        sent += value.byteLength;
        return controller.enqueue(value);
      }
      controller.enqueue(value.slice(0, Math.max(0, keep - sent)));
      await reader.cancel();
      controller.error(new Error("connection reset by peer (the S3 stand-in's cut)"));
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/**
 * The handler in front of the server at `upstream`: forwards each request, failing the
 * shares `faults` names (`random` decides, 0 to 1).
 */
export function faultyS3(
  upstream: string,
  faults: S3Faults,
  random: () => number = Math.random,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    if (faults.errorRate > 0 && random() < faults.errorRate) {
      await req.body?.cancel();
      return slowDown();
    }
    const answer = await fetch(`${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: "manual",
    });
    const cut = req.method === "GET" && answer.ok && answer.body !== null &&
      DATA_FILE.test(url.pathname) && faults.cutRate > 0 && random() < faults.cutRate;
    if (!cut) return answer;
    const length = Number(answer.headers.get("content-length") ?? 0);
    return new Response(cutBody(answer.body!, Math.floor(length / 2)), {
      status: answer.status,
      headers: answer.headers,
    });
  };
}
