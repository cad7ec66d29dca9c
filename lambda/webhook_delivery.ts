/**
 * One body of stream records delivered to the `mmp-toledo-sync` webhook, signed by the
 * Standard Webhooks scheme, for the stream forwarder (lambda/stream_forwarder.ts) and for
 * `npm start`'s redelivery and `npm run stream:replay`.
 *
 * Transient failures (network errors, 5xx, 408, 429) are retried with exponential backoff
 * and jitter, honouring Retry-After, until the caller's deadline; so is a 401, with the
 * secret read again each time (a rotation under way: the webhook may not hold the new
 * secret yet, or the forwarder not). A 2xx counts as delivered only when it is the
 * webhook's own answer, with every record of the body received; a redirect is never
 * followed. How a body ended ({@link DeliveryOutcome}) tells the caller whether a smaller
 * body might pass.
 *
 * @module
 */

import { signWebhook } from "../functions-shared/webhook_signing.ts";
import { retryAfterMs } from "./retry_after.ts";
import { bodyStart, type StreamRecord } from "./stream_records.ts";
import { forgetWebhookSecret } from "./webhook_secret.ts";

const BASE_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;

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
 * Lambda's: its log), `logError` each failure's (the error log). `npm start`'s
 * redelivery (scripts/live_streams.ts) sends through it too, its failures above its board.
 */
export async function deliver(
  url: string,
  secret: string | (() => Promise<string>),
  records: StreamRecord[],
  deadline: number,
  log: (line: string) => void = console.log,
  logError: (line: string) => void = console.error,
): Promise<DeliveryOutcome> {
  const body = JSON.stringify({ records });
  // Each line names the table, the first record's sequence number and its key.
  const first = bodyStart(records);
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
        logError(`records of ${first} not sent: ${(error as Error).message}`);
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
        logError(
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
        logError(
          `webhook address answered ${response.status} for records of ${first}, but not as the ` +
            `webhook does (${JSON.stringify(text.slice(0, 200))}): not delivered; WEBHOOK_URL ` +
            "must be the mmp-toledo-sync function's own address",
        );
        return "later";
      }
      // Cut, as above: a WEBHOOK_URL that is another server's may answer with a whole page.
      // Supabase's gateway names its own failures in `sb-error-code` (its "Error codes"
      // page: BOOT_ERROR, WORKER_RESOURCE_LIMIT, ...), whatever the body says.
      const errorCode = response.headers.get("sb-error-code");
      logError(
        `webhook answered ${response.status}${
          errorCode ? ` (sb-error-code ${errorCode.slice(0, 64)})` : ""
        } for records of ${first}: ${
          text.length > 500 ? `${text.slice(0, 500)}... (${text.length} characters)` : text
        }`,
      );
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
      if (signal === undefined) {
        // No request was made: the secret could not be read again (its own message says
        // why, never the value). That says nothing of the body: what the answers before
        // it said stands.
        logError(`records of ${first} not sent: ${(error as Error).message}`);
      } else {
        logFailedRequest(url, first, error, logError);
        // An attempt cut off by the invocation's own deadline says nothing of the body:
        // what the answers before it said stands (a body failed on every time is still
        // bisected; counted as not delivered, it was retried whole, the good records with
        // the bad).
        if (!signal.aborted) lastStatus = undefined;
      }
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

/** Logs a request that got no answer, by the host it went to and the cause, never the URL. */
function logFailedRequest(
  url: string,
  first: string,
  error: unknown,
  logError: (line: string) => void,
): void {
  // Node's fetch says only "fetch failed": the cause (ECONNREFUSED, a DNS or TLS failure,
  // a reset) is its `cause`.
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const why = cause && [cause.code, cause.message].filter(Boolean).join(": ");
  // Never the URL itself (it may hold a key): Node's fetch names it in some messages.
  const said = `${(error as Error).message}` + (cause ? ` (${why || String(cause)})` : "");
  logError(
    `webhook request to ${URL.canParse(url) ? new URL(url).host : "(WEBHOOK_URL is no URL)"} ` +
      `for records of ${first} failed: ${said.replaceAll(url, "(WEBHOOK_URL)")}`,
  );
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
