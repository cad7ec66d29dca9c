/**
 * The first step of verifying a webhook request by the Standard Webhooks scheme, done
 * before the body is read: the headers `webhook-id`, `webhook-timestamp` (unix seconds,
 * within 300 s of now) and `webhook-signature: v1,<base64>` (several space-separated
 * signatures may be sent; any one may match). webhook_signing.ts then checks a signature
 * over the body.
 *
 * @module
 */

import { decodeBase64 } from "./webhook_secrets.ts";

/** How far (seconds) a request's `webhook-timestamp` may be from now, either way. */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;
/** The longest `webhook-id` accepted (the Lambda sends `msg_<uuid>`, 40 characters). */
export const MAX_WEBHOOK_ID_LENGTH = 256;

/** The checked headers of a request, ready for the signature check over its body. */
export interface Delivery {
  /** `webhook-id`: the sender's id of this message (replays reuse it). */
  id: string;
  /** `webhook-timestamp`, unix seconds. */
  timestamp: number;
  /** The decoded `v1` signatures of `webhook-signature`. */
  signatures: Uint8Array[];
}

/** The outcome of {@link checkWebhookHeaders}: the delivery, or why it is refused (401). */
export type HeaderCheck =
  | { ok: true; delivery: Delivery }
  | { ok: false; problem: string };

/**
 * Checks what can be checked before the body is read: the three headers are present,
 * `webhook-id` is short printable ASCII, `webhook-timestamp` is unix seconds within
 * {@link TIMESTAMP_TOLERANCE_SECONDS} of `nowMs` (the problem says how far off it is),
 * and `webhook-signature` holds at least one `v1,<base64>` signature.
 */
export function checkWebhookHeaders(headers: Headers, nowMs: number = Date.now()): HeaderCheck {
  const wanted = ["webhook-id", "webhook-timestamp", "webhook-signature"];
  const missing = wanted.filter((name) => !headers.get(name));
  if (missing.length > 0) return { ok: false, problem: `missing header ${missing.join(", ")}` };
  const id = headers.get("webhook-id")!;
  const timestampText = headers.get("webhook-timestamp")!.trim();
  const signatureText = headers.get("webhook-signature")!;

  if (id.length > MAX_WEBHOOK_ID_LENGTH || !/^[\x21-\x7e]+$/.test(id)) {
    return {
      ok: false,
      problem: `webhook-id must be 1 to ${MAX_WEBHOOK_ID_LENGTH} printable ASCII characters ` +
        "without spaces",
    };
  }
  if (!/^\d{1,12}$/.test(timestampText)) {
    return { ok: false, problem: "webhook-timestamp must be a whole number of unix seconds" };
  }
  const timestamp = Number(timestampText);
  const skew = Math.floor(nowMs / 1000) - timestamp;
  if (Math.abs(skew) > TIMESTAMP_TOLERANCE_SECONDS) {
    const direction = skew > 0 ? "in the past" : "in the future";
    return {
      ok: false,
      problem: `webhook-timestamp ${timestamp} is ${Math.abs(skew)} s ${direction}; ` +
        `it must be within ${TIMESTAMP_TOLERANCE_SECONDS} s of now`,
    };
  }
  const signatures: Uint8Array[] = [];
  for (const entry of signatureText.split(" ")) {
    const [version, encoded] = entry.split(",", 2);
    if (version !== "v1" || encoded === undefined) continue;
    const decoded = decodeBase64(encoded);
    if (decoded) signatures.push(decoded);
  }
  if (signatures.length === 0) {
    return { ok: false, problem: "webhook-signature holds no v1,<base64> signature" };
  }
  return { ok: true, delivery: { id, timestamp, signatures } };
}
