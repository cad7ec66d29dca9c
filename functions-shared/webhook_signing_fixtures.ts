/**
 * What the webhook signing tests share: two good secrets, a body, the malformed settings
 * that must never verify anything, and a whole-request check as the webhook does it.
 *
 * @module
 */

import { checkWebhookHeaders } from "./webhook_headers.ts";
import type { WebhookVerifier } from "./webhook_signing.ts";

/** A good secret (32 bytes). */
export const secretA = `whsec_${btoa("a".repeat(32))}`;
/** Another good secret (32 bytes). */
export const secretB = `whsec_${btoa("b".repeat(32))}`;
/** A webhook body. */
export const body = '{"records":[]}';
/** The UTF-8 bytes of a text. */
export const bytes = (text: string) => new TextEncoder().encode(text);

/** The settings that must never verify anything, and what the problem says of each. */
export const MALFORMED: [string, string | undefined, RegExp][] = [
  ["unset", undefined, /it is not set/],
  ["empty", "", /it is not set/],
  ["blank", "  ", /it is not set/],
  ["whsec_ alone", "whsec_", /secret 1 of 1 has nothing after whsec_/],
  ["a plain password", "hunter2-correct-horse", /secret 1 of 1 does not start with whsec_/],
  ["a bad second secret", `${secretA},whsec_x`, /secret 2 of 2 is not valid base64/],
  ["a trailing comma", `${secretA},`, /secret 2 of 2 is empty/],
  ["a leading comma", `,${secretA}`, /secret 1 of 2 is empty/],
  ["three secrets", `${secretA},${secretB},${secretA}`, /holds 3 comma-separated secrets/],
  ["too short", `whsec_${btoa("s".repeat(16))}`, /decodes to 16 bytes; at least 24/],
  ["url-safe base64", `whsec_${"-_".repeat(16)}`, /is not valid base64/],
  ["unpadded base64", `whsec_${btoa("c".repeat(25)).replace(/=+$/, "")}`, /not valid base64/],
];

/** Verifies a whole request with a verifier, as the webhook does. */
export async function verify(verifier: WebhookVerifier, headers: Headers, text: string) {
  if (!verifier.ok) return verifier.problem;
  const checked = checkWebhookHeaders(headers);
  if (!checked.ok) return checked.problem;
  return await verifier.verifySignature(checked.delivery, bytes(text));
}
