/**
 * The functions' DynamoDB and DynamoDB Streams client: DynamoDB's JSON protocol over
 * `fetch`, signed with Signature Version 4 (aws_signature.ts), with the AWS SDK's
 * "standard" retries. It stands in for `@aws-sdk/client-dynamodb` and
 * `@aws-sdk/client-dynamodb-streams` in the Edge Functions, whose bundles hold every
 * file of every npm package they import: the two SDK clients and their dependencies
 * weigh about 7 MB, where a bundle made on Supabase's servers may weigh 5 MB, and an
 * isolate spent about 60 ms more CPU loading them (README, "Deploying the functions").
 *
 * A request is a POST of the command's input as JSON to the region's endpoint
 * (`https://dynamodb.<region>.amazonaws.com`, `https://streams.dynamodb.<region>.amazonaws.com`
 * for Streams; or DYNAMODB_ENDPOINT), with `X-Amz-Target: <target>` and
 * `Content-Type: application/x-amz-json-1.0`, signed for the service `dynamodb` ("DynamoDB
 * low-level API", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.LowLevelAPI.html).
 * An answer (read by dynamo_wire.ts): its `x-amz-crc32`, DynamoDB's checksum of its bytes, is checked (as the AWS
 * SDK for JavaScript v2 did); a mismatch is retried like a transient failure. An error
 * answers `{"__type": "...#Name", "message"}`: it is thrown as a {@link DynamoError}
 * (dynamo_errors.ts) whose `name` is that Name, whose message names the operation and the
 * table, and whose `$metadata` holds the HTTP status, as the SDK's errors do. A request
 * that got no answer throws a `NetworkingError` naming the cause.
 *
 * Retries, as the SDK's "standard" mode does them (retry behavior of the AWS SDKs,
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html): up to
 * `maxAttempts` in all for throttling errors and transient ones (dynamo_errors.ts: HTTP
 * 500, 502, 503, 504, a failed connection, a CRC mismatch), none for the rest; between
 * attempts a full-jitter backoff, random × min(base × 2^i, 20 s), the base 1 s after
 * throttling and 25 ms otherwise (the SDK's DynamoDB clients); each retry takes from the
 * client's quota of 500 (5 after throttling, 14 otherwise), and a success gives back what
 * its last retry took (1 when it took none); an empty quota stops retrying. An answer
 * whose `Date` is more than 5 minutes from this machine's clock sets the clock requests
 * are signed at, and a refusal for a skewed clock is then retried, as the SDK does. An
 * attempt silent for 30 s is abandoned and retried (a `TimeoutError`).
 *
 * @module
 */

import { amzDate, canonicalRequest, sha256Hex, signatureOf } from "./aws_signature.ts";
import type { ClockReading } from "./read_stamp.ts";
import type { Command, ResponseMetadata } from "./dynamo_commands.ts";
import { DynamoError, safeMessage } from "./dynamo_errors.ts";
import {
  answerOf,
  type Attempt,
  requestJson,
  serviceUrl,
  what,
  withBinaries,
} from "./dynamo_wire.ts";

export { DynamoError, isRetryable } from "./dynamo_errors.ts";

/** An AWS key. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What a {@link DynamoClient} needs. */
export interface DynamoClientConfig {
  region: string;
  /** One endpoint for DynamoDB and its Streams (the local stack); none: AWS's. */
  endpoint?: string;
  credentials?: AwsCredentials;
  /** Attempts per request, the first included. */
  maxAttempts: number;
  /** The wait before a retry (tests); default: a timer. */
  sleep?: (ms: number) => Promise<void>;
  /**
   * How long one attempt may wait for its whole answer before it is abandoned and, like
   * a failed connection, retried (default {@link ATTEMPT_TIMEOUT_MS}).
   */
  attemptTimeoutMs?: number;
  /** Headers sent with every request, unsigned (the local stack's poller marks its reads). */
  headers?: Record<string, string>;
}

/**
 * An attempt's longest wait for its answer: DynamoDB answers in milliseconds and a 1 MB
 * page in about a second, so a connection silent for 30 s is lost, and waiting on it would
 * stall a backfill's segment until the isolate's wall clock ran out.
 */
export const ATTEMPT_TIMEOUT_MS = 30_000;

const MAX_BACKOFF_MS = 20_000;
const INITIAL_QUOTA = 500;
const THROTTLING_RETRY_COST = 5;
const RETRY_COST = 14;
/** How far the service's clock may be from ours before requests are signed at its time. */
const CLOCK_SKEW_MS = 300_000;

/** Sleeps `ms`, its timer cleared when `signal` aborts (nothing left to run later). */
function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Waits for `wait`, or less once `signal` aborts: whether it was not aborted. */
async function untilAborted(wait: Promise<void>, signal?: AbortSignal): Promise<boolean> {
  if (!signal) {
    await wait;
    return true;
  }
  if (signal.aborted) return false;
  let stop = () => {};
  const aborted = new Promise<false>((resolve) => {
    stop = () => resolve(false);
    signal.addEventListener("abort", stop, { once: true });
  });
  try {
    return await Promise.race([wait.then(() => !signal.aborted), aborted]);
  } finally {
    signal.removeEventListener("abort", stop);
  }
}

/** A DynamoDB (and DynamoDB Streams) client of one region: see the module's comment. */
export class DynamoClient {
  #quota = INITIAL_QUOTA;
  /** Added to our clock when signing: the service's clock, once it was found 5 min off. */
  #clockOffsetMs = 0;

  /** Private: it holds the secret key, which nothing may print. */
  readonly #config: DynamoClientConfig;

  constructor(config: DynamoClientConfig) {
    this.#config = config;
  }

  /** The region this client calls. */
  get region(): string {
    return this.#config.region;
  }

  /**
   * Sends `command`; its answer with `$metadata`, or throws the last error.
   * `beforeRetry` runs before each of the client's own retries (a backfill's segment holds
   * its lease there: the attempts of one request may outlast it); its failure is ignored.
   */
  async send<I, O>(
    command: Command<I, O>,
    options: { abortSignal?: AbortSignal; beforeRetry?: () => Promise<void> } = {},
  ): Promise<O & { $metadata: ResponseMetadata }> {
    const about = what(command.target, command.input);
    if (!this.#config.credentials) {
      throw new DynamoError(
        "CredentialsProviderError",
        `${about}: no AWS credentials: set the secrets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
        {},
      );
    }
    const body = requestJson(command.input);
    let lastCost = 0;
    for (let attempt = 1;; attempt++) {
      const outcome = await this.#attempt(command.target, about, body, options.abortSignal);
      if (outcome.ok) {
        this.#quota = Math.min(INITIAL_QUOTA, this.#quota + (lastCost || 1));
        const result = withBinaries(outcome.body) as O & { $metadata: ResponseMetadata };
        result.$metadata = { ...outcome.metadata, attempts: attempt };
        return result;
      }
      const { error, retry } = outcome;
      const cost = retry === "throttling" ? THROTTLING_RETRY_COST : RETRY_COST;
      if (retry === "no" || attempt >= this.#config.maxAttempts || this.#quota < cost) {
        if (error instanceof DynamoError) error.$metadata.attempts = attempt;
        throw error;
      }
      this.#quota -= cost;
      lastCost = cost;
      const base = retry === "throttling" ? 1000 : 25;
      const waitMs = Math.random() * Math.min(base * 2 ** (attempt - 1), MAX_BACKOFF_MS);
      const sleep = this.#config.sleep ?? ((ms) => abortableSleep(ms, options.abortSignal));
      // An abort ends the backoff too: a caller's deadline (the write-back's UpdateItem)
      // passed during a backoff of up to 20 s was waited out before the next attempt
      // found it, so the request outlasted its deadline by that much.
      if (!await untilAborted(sleep(waitMs), options.abortSignal)) {
        throw options.abortSignal!.reason;
      }
      await options.beforeRetry?.().catch(() => {});
    }
  }

  async #attempt(
    target: string,
    about: string,
    body: string,
    signal?: AbortSignal,
  ): Promise<Attempt> {
    const url = serviceUrl(this.#config, target);
    // Made before the try: a request that cannot be made (a header fetch refuses) is not
    // a network failure, and is not retried.
    const timeoutMs = this.#config.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS;
    const timeout = AbortSignal.timeout(timeoutMs);
    const request = new Request(url, {
      method: "POST",
      headers: { ...this.#config.headers, ...this.#signedHeaders(url, target, body) },
      body,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    let response: Response;
    let bytes: Uint8Array;
    // This exchange's own clock reading, given with its answer (never another request's:
    // a client is shared by every run of an isolate): read_stamp.ts stamps a read from it.
    let clock: ClockReading | undefined;
    // A monotonic clock for the round trip (read_stamp.ts, ClockReading).
    const sentAt = performance.now();
    try {
      response = await fetch(request);
      const roundTripMs = performance.now() - sentAt;
      const dated = Date.parse(response.headers.get("date") ?? "");
      if (Number.isFinite(dated)) clock = { roundTripMs, serverMs: dated };
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      if (signal?.aborted) return { ok: false, error: error as Error, retry: "no" };
      if (timeout.aborted) {
        const message = `${about}: no answer from ${url.host} within ${timeoutMs} ms`;
        const error = new DynamoError("TimeoutError", message, {}, "transient");
        return { ok: false, error, retry: "transient" };
      }
      // No answer, or not all of it: the connection failed or was cut (the SDK retries
      // these as transient).
      const cause = `${(error as Error).name}: ${(error as Error).message}`;
      return {
        ok: false,
        error: new DynamoError(
          "NetworkingError",
          `${about}: no answer from ${url.host}: ${this.#safe(cause)}`,
          {},
          "transient",
        ),
        retry: "transient",
      };
    }
    // Like the SDK: a service clock more than 5 minutes from ours (its `Date`) is the one
    // requests are signed at from now on, and a refusal for the skew is then retried.
    const serverMs = Date.parse(response.headers.get("date") ?? "");
    let clockCorrected = false;
    if (
      Number.isFinite(serverMs) &&
      Math.abs(serverMs - (Date.now() + this.#clockOffsetMs)) > CLOCK_SKEW_MS
    ) {
      this.#clockOffsetMs = serverMs - Date.now();
      clockCorrected = true;
    }
    const metadata: ResponseMetadata = {
      httpStatusCode: response.status,
      requestId: response.headers.get("x-amzn-requestid") ?? undefined,
      ...(clock ? { clock } : {}),
    };
    return answerOf(response, bytes, about, metadata, clockCorrected, (m) => this.#safe(m));
  }

  /** A message without this client's session token or secret. */
  #safe(message: string): string {
    const credentials = this.#config.credentials;
    return safeMessage(message, [credentials?.sessionToken, credentials?.secretAccessKey]);
  }

  /** The request's headers, signed. */
  #signedHeaders(url: URL, target: string, body: string): Record<string, string> {
    const headers: Record<string, string> = {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": target,
    };
    const credentials = this.#config.credentials!;
    const now = amzDate(Date.now() + this.#clockOffsetMs);
    headers["x-amz-date"] = now;
    if (credentials.sessionToken) headers["x-amz-security-token"] = credentials.sessionToken;
    const signed: Record<string, string> = { ...headers, host: url.host };
    const names = Object.keys(signed).sort();
    const canonical = canonicalRequest({
      method: "POST",
      path: url.pathname,
      query: "",
      header: (name) => signed[name] ?? null,
      signedHeaders: names,
      payloadHash: sha256Hex(body),
    });
    const scope = { day: now.slice(0, 8), region: this.#config.region, service: "dynamodb" };
    const signature = signatureOf(canonical, now, scope, credentials.secretAccessKey);
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope.day}/` +
      `${scope.region}/dynamodb/aws4_request, SignedHeaders=${names.join(";")}, ` +
      `Signature=${signature}`;
    // Not signed: whole bodies, never compressed, so x-amz-crc32 is over what arrives.
    headers["accept-encoding"] = "identity";
    return headers;
  }
}
