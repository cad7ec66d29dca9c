/**
 * The AWS Lambda (Node 22, runtime `nodejs22.x`) between DynamoDB Streams and the
 * `mmp-toledo-sync` webhook.
 *
 * It forwards the records of its batch unchanged, in order, as `{"records": [...]}`,
 * split so that no request exceeds the webhook's 6 MiB, each request signed by the
 * Standard Webhooks scheme. Transient failures (network errors, 5xx, 408, 429) are
 * retried with exponential backoff and jitter, honouring Retry-After, for as long as the
 * invocation's time budget allows; so is a 401, with the secret read again each time (a
 * rotation under way: the webhook may not hold the new secret yet, or the forwarder not).
 * It answers with `batchItemFailures` naming the first record not delivered, so that
 * Lambda (ReportBatchItemFailures) checkpoints what was delivered and retries only from
 * there, when the webhook could not take the body now (503, 502, 504, 408, 429, no
 * answer, or a 401, 403, 404 or 409 that no other body would pass either). A body of
 * several records that the webhook refused (400, 413, 415, 422) or failed on (500, or 546
 * at a resource limit) fails the invocation instead: Lambda bisects a batch
 * only on a function error ("the batch is bisected at the returned sequence number" for a
 * partial failure, which retries the same body until its records pass their maximum age:
 * https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html),
 * so the halves go again until the record at fault is alone and the rest is delivered
 * (the records behind it once it has passed its maximum age, an hour: those of the same
 * age go to the on-failure queue with it, for `npm run stream:replay`).
 *
 * Settings (environment): WEBHOOK_URL, and either SYNC_WEBHOOK_SECRET_ARN (deployed: the
 * `whsec_...` secret in Secrets Manager, read at cold start and cached) or
 * SYNC_WEBHOOK_SECRET (the value itself: local stack, tests).
 *
 * @module
 */

import process from "node:process";
import { tableNameFromArn } from "../functions-shared/table_arn.ts";
import { signWebhook } from "../functions-shared/webhook_signing.ts";
import { retryAfterMs } from "./retry_after.ts";
import { forgetWebhookSecret, webhookSecret } from "./webhook_secret.ts";

// Start reading the secret while Lambda initialises the function (the cold start), so
// the first invocation need not wait for it; a failed read is retried by that invocation.
if (process.env.SYNC_WEBHOOK_SECRET_ARN) webhookSecret().catch(() => {});

/** The parts of a DynamoDB Streams record the forwarder reads; the rest passes through. */
export interface StreamRecord {
  eventID?: string;
  eventSourceARN?: string;
  dynamodb?: { SequenceNumber?: string; Keys?: Record<string, unknown> };
  [field: string]: unknown;
}

/** The event Lambda's DynamoDB event source mapping invokes the function with. */
export interface DynamoDBStreamEvent {
  Records: StreamRecord[];
}

/** The part of Lambda's context object the forwarder uses. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
  awsRequestId?: string;
}

/** The answer that makes Lambda retry from the first failed record only. */
export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** The webhook's limit is 6 MiB; leave room for the envelope. */
const MAX_REQUEST_BYTES = 6 * 1024 * 1024 - 1024;
/** Stop retrying this long before the invocation would time out. */
const SAFETY_MS = 1_000;
const BASE_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;

/**
 * What is wrong with a WEBHOOK_URL, in words that never repeat it (it may hold a key):
 * it must parse, as http(s), with no user or password and no query but the
 * `forceFunctionRegion` Supabase reads. Node's fetch puts the whole URL in the message of
 * the error it throws for such a URL, which the forwarder would log on every attempt.
 */
export function webhookUrlProblem(url: string): string | undefined {
  if (!URL.canParse(url)) return "WEBHOOK_URL is no URL";
  const parsed = new URL(url);
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    return `WEBHOOK_URL must be an https address, not ${parsed.protocol}`;
  }
  if (parsed.username || parsed.password) {
    return "WEBHOOK_URL must not hold a user or password (the webhook is signed, not logged in to)";
  }
  const extra = [...parsed.searchParams.keys()].filter((key) => key !== "forceFunctionRegion");
  if (extra.length > 0 || parsed.hash) {
    return "WEBHOOK_URL may have no query but forceFunctionRegion, and no fragment";
  }
  return undefined;
}

/**
 * Whether a 2xx answer is the webhook's own: `{received, applied, skipped, deadLettered}`
 * with every record of the body received. Anything else (a page some other server
 * answered at that address, a proxy's) delivered nothing, whatever its status.
 */
function answeredByWebhook(text: string, records: number): boolean {
  try {
    const answer = JSON.parse(text);
    return typeof answer === "object" && answer !== null && answer.received === records &&
      ["applied", "skipped", "deadLettered"].every((key) => Number.isInteger(answer[key]));
  } catch {
    return false;
  }
}

/** Splits records, in order, into bodies of at most `maxBytes`. */
export function splitIntoBodies(records: StreamRecord[], maxBytes = MAX_REQUEST_BYTES) {
  const batches: StreamRecord[][] = [];
  let current: StreamRecord[] = [];
  let size = 0;
  for (const record of records) {
    const bytes = new TextEncoder().encode(JSON.stringify(record)).byteLength + 1;
    if (current.length > 0 && size + bytes > maxBytes) {
      batches.push(current);
      current = [];
      size = 0;
    }
    current.push(record);
    size += bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function isRetryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * How a body ended: delivered; to be sent again later as it is (the webhook could not take
 * it now, or would take no body: see {@link BODY_AT_FAULT}); or refused as it is (the
 * same body would fail again, smaller ones may not).
 */
export type DeliveryOutcome = "delivered" | "later" | "refused";

/**
 * The statuses that say the body itself is at fault, so that smaller bodies may pass: the
 * webhook refused it (400 malformed, 413 too large, 415, 422) or failed on it (500 an
 * error, 546 a resource limit). Not 401, 403, 404 or 409: the secret, the address or the
 * delivery id, the same for any body.
 */
const BODY_AT_FAULT = new Set([400, 413, 415, 422, 500, 546]);

/** Whether a status the retries ended on says the body itself is at fault. */
function refusedAsItIs(status: number): boolean {
  return BODY_AT_FAULT.has(status);
}

/**
 * Delivers one body, retrying transient failures until `deadline`; returns how it ended
 * ({@link DeliveryOutcome}). `secret` is the setting to sign with, or how to get it: then a 401 makes it
 * forgotten and read again for the next attempt. A secret that cannot sign fails the
 * body at once (no attempt could succeed). `log` gets the line of a delivery (the
 * Lambda's: its log); failures always go to the error log. `npm start`'s redelivery
 * (scripts/live_changes.ts) sends through it too.
 */
export async function deliver(
  url: string,
  secret: string | (() => Promise<string>),
  records: StreamRecord[],
  deadline: number,
  log: (line: string) => void = console.log,
): Promise<DeliveryOutcome> {
  const body = JSON.stringify({ records });
  // One forwarder serves every table of its region: each line names the table.
  const first = `${tableOf(records)} from ${records[0]?.dynamodb?.SequenceNumber ?? "?"}`;
  let lastStatus: number | undefined;
  // The attempt's own deadline signal: whether a failure was the deadline cutting it off.
  let signal: AbortSignal | undefined;
  for (let attempt = 0;; attempt++) {
    signal = undefined;
    let wait = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    // The webhook asked for this pause (Retry-After): kept even past the deadline (below).
    let askedMs = 0;
    try {
      const setting = typeof secret === "string" ? secret : await byDeadline(secret(), deadline);
      let headers: Record<string, string>;
      try {
        headers = signWebhook(setting, body);
      } catch (error) {
        forgetWebhookSecret();
        console.error(`records of ${first} not sent: ${(error as Error).message}`);
        return "later";
      }
      signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
        signal,
        // Never followed: on a 301, 302 or 303 fetch would send a GET without the body,
        // and a 200 from wherever it landed would count as delivered.
        redirect: "manual",
      });
      const text = await response.text();
      if (response.status >= 300 && response.status < 400) {
        console.error(
          `webhook answered ${response.status} for records of ${first}, a redirect to ` +
            `${response.headers.get("location") ?? "nowhere"}: not followed (a redirect drops ` +
            "the body); WEBHOOK_URL must be the function's own address",
        );
        return "later";
      }
      if (response.ok && answeredByWebhook(text, records.length)) {
        log(`delivered ${records.length} records of ${first}: ${text}`);
        return "delivered";
      }
      if (response.ok) {
        console.error(
          `webhook address answered ${response.status} for records of ${first}, but not as the ` +
            `webhook does (${JSON.stringify(text.slice(0, 200))}): not delivered; WEBHOOK_URL ` +
            "must be the mmp-toledo-sync function's own address",
        );
        return "later";
      }
      console.error(`webhook answered ${response.status} for records of ${first}: ${text}`);
      lastStatus = response.status;
      if (response.status === 401 && typeof secret !== "string") {
        // The secret may be in the middle of a rotation: read it again and retry.
        forgetWebhookSecret();
      } else if (!isRetryable(response.status)) {
        return refusedAsItIs(response.status) ? "refused" : "later";
      }
      const asked = retryAfterMs(response.headers.get("retry-after"), Date.now());
      if (asked > 0) wait = Math.max(wait, askedMs = asked);
    } catch (error) {
      // Node's fetch says only "fetch failed": the cause (ECONNREFUSED, a DNS or TLS
      // failure, a reset) is its `cause`.
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause && [cause.code, cause.message].filter(Boolean).join(": ");
      // Never the URL itself (it may hold a key): Node's fetch names it in some messages.
      const said = `${(error as Error).message}` + (cause ? ` (${why || String(cause)})` : "");
      console.error(
        `webhook request to ${URL.canParse(url) ? new URL(url).host : "(WEBHOOK_URL is no URL)"} ` +
          `for records of ${first} failed: ${said.replaceAll(url, "(WEBHOOK_URL)")}`,
      );
      // An attempt cut off by the invocation's own deadline says nothing of the body: what
      // the answers before it said stands (a body failed on every time is still bisected;
      // counted as not delivered, it was retried whole, the good records with the bad).
      if (!signal?.aborted) lastStatus = undefined;
    }
    if (Date.now() + wait >= deadline) {
      // A pause the webhook asked for, longer than the invocation has left (a setting to
      // fix: Retry-After 60 against a 60 s function), is taken to the deadline: Lambda
      // tries the batch again at once, which would otherwise knock every second.
      if (askedMs > 0) await new Promise((resolve) => setTimeout(resolve, deadline - Date.now()));
      return lastStatus !== undefined && refusedAsItIs(lastStatus) ? "refused" : "later";
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/**
 * `read`, or a failure once `deadline` comes first: a secret read again after a 401
 * (Secrets Manager slow, its SDK retrying) must not run the invocation into its timeout,
 * which Lambda takes for a function error and answers by splitting the batch.
 */
function byDeadline<T>(read: Promise<T>, deadline: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error("reading the webhook secret again outlasted the invocation's time")),
      Math.max(0, deadline - Date.now()),
    );
  });
  return Promise.race([read, late]).finally(() => clearTimeout(timer));
}

/** The table a batch's records come from, as their stream's ARN names it. */
function tableOf(records: StreamRecord[]): string {
  return tableNameFromArn(records[0]?.eventSourceARN ?? "") ?? "an unnamed table";
}

/** The Lambda handler. */
export async function handler(
  event: DynamoDBStreamEvent,
  context: LambdaContext,
): Promise<BatchResponse> {
  // Without its settings, nothing is sent and the batch is reported failed from its first
  // record: Lambda retries it as it is, and nothing is lost while the setting is fixed.
  // (Thrown, the error would make Lambda split every batch down to single records, for
  // a fault of no record.)
  const notSent = (why: string): BatchResponse => {
    const first = event.Records?.[0]?.dynamodb?.SequenceNumber;
    if (event.Records?.length && !first) throw new Error(why);
    console.error(`${why}; nothing sent, the batch is retried as it is`);
    return { batchItemFailures: first ? [{ itemIdentifier: first }] : [] };
  };
  const url = process.env.WEBHOOK_URL;
  if (!url) return notSent("WEBHOOK_URL must be set");
  const urlProblem = webhookUrlProblem(url);
  if (urlProblem) return notSent(urlProblem);
  // Read (or refused) before anything is sent.
  try {
    await webhookSecret();
  } catch (error) {
    return notSent((error as Error).message);
  }
  const deadline = Date.now() + context.getRemainingTimeInMillis() - SAFETY_MS;
  for (const records of splitIntoBodies(event.Records ?? [])) {
    const outcome = await deliver(url, () => webhookSecret(), records, deadline);
    if (outcome === "refused" && records.length > 1) {
      // Bisected by Lambda on this error: the records delivered before go again, and the
      // ordering guard skips them.
      throw new Error(
        `the webhook refused the body of ${records.length} records of ${tableOf(records)} from ${
          records[0]?.dynamodb?.SequenceNumber ?? "?"
        } (its answers are logged above): failing the invocation so that Lambda bisects the batch`,
      );
    }
    if (outcome !== "delivered") {
      const failed = records[0]?.dynamodb?.SequenceNumber;
      // Lambda reads an empty or unknown identifier as the whole batch failed, records
      // delivered included; a stream record always has its sequence number, so one
      // without it fails the invocation instead, naming it (bisection then isolates it).
      if (!failed) {
        throw new Error(`stream record ${records[0]?.eventID ?? "?"} has no SequenceNumber`);
      }
      return { batchItemFailures: [{ itemIdentifier: failed }] };
    }
  }
  return { batchItemFailures: [] };
}
