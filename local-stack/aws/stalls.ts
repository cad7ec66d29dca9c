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
 * Tests stall exactly the next writes of a table, whatever `stall_rate` (none by default),
 * with a control request to the proxy (unsigned, as the stack's other `/__local` paths):
 *
 *   POST {DYNAMODB_ENDPOINT}/__local/dynamodb/stalls
 *   {"tableName": "...", "writes": 1, "stallMs": 3000}   (writes 0: none any more)
 *
 * answered `{"tableName", "writes", "stallMs"}`; each of the table's next `writes` writes
 * (as above: any operation that is not a read, naming the table in `TableName`) is
 * forwarded at once and its answer held `stallMs`, as a stall drawn by `stall_rate` is.
 * `GET` of the path answers the stalls still to come, by table. They live in the proxy's
 * memory until it restarts.
 *
 * @module
 */

import type { Faults } from "./faults.ts";
import { awsError } from "./json_answer.ts";
import { mayWriteStreams, TABLE_TARGET } from "./operations.ts";

/** The control path of the stalls asked for (the module's comment). */
export const STALLS_PATH = "/__local/dynamodb/stalls";

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

/** The stalls asked for: each table's next writes whose answers are held, and how long. */
export class AskedStalls {
  #tables = new Map<string, { writes: number; stallMs: number }>();

  /** Whether any write is still to stall. */
  get any(): boolean {
    return this.#tables.size > 0;
  }

  /** The next `writes` writes of `tableName` stall `stallMs` each (0 writes: none). */
  ask(tableName: string, writes: number, stallMs: number): void {
    if (writes > 0) this.#tables.set(tableName, { writes, stallMs });
    else this.#tables.delete(tableName);
  }

  /** One stall of a write of `tableName`, taken: how long, or undefined for none. */
  take(tableName: string): number | undefined {
    const asked = this.#tables.get(tableName);
    if (!asked) return undefined;
    if (--asked.writes === 0) this.#tables.delete(tableName);
    return asked.stallMs;
  }

  /** Serves {@link STALLS_PATH}: POST asks for stalls, GET lists those to come. */
  async control(request: Request): Promise<Response> {
    if (request.method === "GET") return Response.json(Object.fromEntries(this.#tables));
    if (request.method !== "POST") return new Response(null, { status: 405 });
    let body: { tableName?: unknown; writes?: unknown; stallMs?: unknown };
    try {
      body = await request.json();
    } catch {
      body = {};
    }
    const { tableName, writes, stallMs } = body ?? {};
    if (
      typeof tableName !== "string" || tableName === "" ||
      !Number.isInteger(writes) || (writes as number) < 0 || (writes as number) > 100 ||
      !Number.isInteger(stallMs) || (stallMs as number) < 1 || (stallMs as number) > 600_000
    ) {
      return awsError(
        "ValidationException",
        `${STALLS_PATH} takes {"tableName": "...", "writes": 0 to 100, "stallMs": 1 to 600000}`,
      );
    }
    this.ask(tableName, writes as number, stallMs as number);
    return Response.json({ tableName, writes, stallMs });
  }
}

/** What {@link stalledDynamo} needs. */
export interface StallOptions {
  faults: Pick<Faults, "stallRate" | "stallMs">;
  /** The stalls a test asked for, each of a table's next writes. */
  asked?: AskedStalls;
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
  const { faults, asked } = options;
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  if (faults.stallRate <= 0 && !asked) return handler;
  return async (request) => {
    const target = request.headers.get("x-amz-target") ?? "";
    let decision = request.method === "POST" ? decideStall(target, faults, random) : "none";
    let stallMs = faults.stallMs;
    if (decision === "none" && asked?.any && request.method === "POST") {
      const askedMs = await askedStall(request, target, asked);
      if (askedMs !== undefined) [decision, stallMs] = ["after answering", askedMs];
    }
    if (decision === "none") return await handler(request);
    const operation = await named(request, target.slice(TABLE_TARGET.length));
    if (decision === "before forwarding") {
      log(`${operation}: stalled ${stallMs} ms before it is forwarded`);
      if (!await hold(stallMs, request.signal)) {
        log(`${operation}: its client went away while it stalled; not forwarded`);
        await request.body?.cancel().catch(() => {});
        return new Response(null, { status: 499 });
      }
      return await handler(request);
    }
    const response = await handler(request);
    log(`${operation}: forwarded, its answer (${response.status}) held ${stallMs} ms`);
    // The answer's bytes read now, so that nothing upstream waits on the held answer.
    const body = await response.arrayBuffer();
    if (!await hold(stallMs, request.signal)) {
      log(`${operation}: its client went away while its answer was held; the write stands`);
    }
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** A stall asked for of the write `request` (its table's next), taken: how long, if any. */
async function askedStall(
  request: Request,
  target: string,
  asked: AskedStalls,
): Promise<number | undefined> {
  if (!target.startsWith(TABLE_TARGET)) return undefined;
  if (!mayWriteStreams(target.slice(TABLE_TARGET.length))) return undefined;
  try {
    const table = JSON.parse(await request.clone().text())?.TableName;
    return typeof table === "string" ? asked.take(table) : undefined;
  } catch {
    return undefined;
  }
}
