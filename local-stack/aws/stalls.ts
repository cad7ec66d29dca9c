/**
 * `stall_rate` and `stall_ms` of DYNAMODB_FAULTS (local-stack/aws/faults.ts): a share of
 * DynamoDB's requests hangs, as AWS's do now and then. AWS documents "intermittent
 * connection timeout or request timeout errors" from DynamoDB and latency spikes, and
 * answers both on the client's side: tune its request timeout and retries, so that a
 * request that hangs is given up and sent again (Knowledge Center, "How do I troubleshoot
 * intermittent timeout errors in DynamoDB?",
 * https://repost.aws/knowledge-center/dynamodb-intermittent-timeout-errors, and "How do I
 * troubleshoot high latency in DynamoDB?",
 * https://repost.aws/knowledge-center/dynamodb-high-latency). The functions' client gives
 * an attempt 30 s unless `DYNAMODB_ATTEMPT_TIMEOUT_MS` says otherwise
 * (functions-shared/dynamo_client.ts), so a `stall_ms` past it runs its timeout and its
 * retry.
 *
 * A stalled read (any operation that cannot write: Get, Query, Scan, Describe, List) hangs
 * before it is forwarded, and is answered once forwarded after the stall. A stalled write
 * (any other operation) is forwarded at once, so that it takes effect, and its answer is
 * held: a client that gave up meanwhile sends again a write that already happened, as on
 * AWS, where a request that timed out may have been carried out. DynamoDB Streams'
 * requests pass through, as the contract has them. A client that goes away while its
 * request hangs breaks nothing: a read is then never forwarded, a write's answer dropped.
 *
 * @module
 */

import type { Faults } from "./faults.ts";
import { mayWriteStreams, TABLE_TARGET } from "./operations.ts";

/** What a stall does to one request. */
export type StallDecision = "none" | "before forwarding" | "after answering";

/** Whether and how the request with this `X-Amz-Target` stalls (`random`: 0 to 1). */
export function decideStall(
  target: string,
  faults: Pick<Faults, "stallRate">,
  random: () => number,
): StallDecision {
  if (faults.stallRate <= 0 || !target.startsWith(TABLE_TARGET)) return "none";
  if (random() >= faults.stallRate) return "none";
  const operation = target.slice(TABLE_TARGET.length);
  return mayWriteStreams(operation) ? "after answering" : "before forwarding";
}

/** Waits `ms`, or less once `signal` aborts: whether the whole wait passed. */
export function hold(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const gone = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", gone);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", gone, { once: true });
  });
}

/**
 * The operation with the table it names and a Scan's segment (`Scan t segment 1/2`), for
 * the log: which reads stalled (tests/dynamodb_stalls_test.ts counts its Scans').
 */
async function named(request: Request, operation: string): Promise<string> {
  try {
    const body = JSON.parse(await request.clone().text());
    const table = typeof body?.TableName === "string" ? ` ${body.TableName}` : "";
    const segment = Number.isInteger(body?.Segment)
      ? ` segment ${body.Segment}/${body.TotalSegments}`
      : "";
    return `${operation}${table}${segment}`;
  } catch {
    return operation;
  }
}

/** What {@link stalledDynamo} needs. */
export interface StallOptions {
  faults: Pick<Faults, "stallRate" | "stallMs">;
  random?: () => number;
  log?: (line: string) => void;
}

/**
 * The DynamoDB endpoint's handler with stalls: `handler` answers a request as if none
 * stalled. Outermost, so that a client's going away is seen (its request's `signal`).
 */
export function stalledDynamo(
  handler: (request: Request) => Promise<Response>,
  options: StallOptions,
): (request: Request) => Promise<Response> {
  const { faults } = options;
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  if (faults.stallRate <= 0) return handler;
  return async (request) => {
    const target = request.headers.get("x-amz-target") ?? "";
    const decision = request.method === "POST" ? decideStall(target, faults, random) : "none";
    if (decision === "none") return await handler(request);
    const operation = await named(request, target.slice(TABLE_TARGET.length));
    if (decision === "before forwarding") {
      log(`${operation}: stalled ${faults.stallMs} ms before it is forwarded`);
      if (!await hold(faults.stallMs, request.signal)) {
        log(`${operation}: its client went away while it stalled; not forwarded`);
        await request.body?.cancel().catch(() => {});
        return new Response(null, { status: 499 });
      }
      return await handler(request);
    }
    const response = await handler(request);
    log(`${operation}: forwarded, its answer (${response.status}) held ${faults.stallMs} ms`);
    // The answer's bytes read now, so that nothing upstream waits on the held answer.
    const body = await response.arrayBuffer();
    if (!await hold(faults.stallMs, request.signal)) {
      log(`${operation}: its client went away while its answer was held; the write stands`);
    }
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}
