/**
 * The webhook's secret setting (SYNC_WEBHOOK_SECRET), checked: one `whsec_<base64>`
 * secret, or two separated by a comma during a rotation; either verifies, and a sender
 * signs with each (webhook_signing.ts). It is checked once, when the verifier is built at
 * cold start:
 * - every secret is `whsec_` followed by standard, padded base64 (`A–Z a–z 0–9 + /`,
 *   `=`) that decodes to at least {@link MIN_SECRET_BYTES} (24) bytes, the smallest
 *   Standard Webhooks secret (they are 24 to 64 bytes; `openssl rand -base64 32` gives
 *   32); there is no maximum, HMAC takes keys of any length;
 * - at most {@link MAX_SECRETS} (2) secrets, and no empty part (`whsec_a,` is refused).
 * A problem names the malformed secret by its place ("secret 2 of 2") and the cause,
 * never its value.
 *
 * @module
 */

/** The fewest bytes a secret may decode to (Standard Webhooks secrets are 24 to 64). */
export const MIN_SECRET_BYTES = 24;
/** The most secrets a setting may hold: the new and the old one during a rotation. */
export const MAX_SECRETS = 2;
/** The name of the secret setting, for messages. */
export const WEBHOOK_SECRET_SETTING = "SYNC_WEBHOOK_SECRET";

const PREFIX = "whsec_";
/** Standard base64 with its padding: whole groups of four, `=` only at the end. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The outcome of checking a secret setting: the decoded keys, or what is wrong. */
export type ParsedSecrets =
  | { ok: true; keys: Uint8Array[] }
  | { ok: false; problem: string };

/** Decodes standard, padded base64; undefined when `text` is not exactly that. */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (text === "" || !BASE64.test(text)) return undefined;
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Checks one secret of a setting; returns its key, or why it is malformed. */
function parseOneSecret(part: string): { key: Uint8Array } | { why: string } {
  if (part === "") return { why: "is empty (a stray comma?)" };
  if (!part.startsWith(PREFIX)) return { why: `does not start with ${PREFIX}` };
  const encoded = part.slice(PREFIX.length);
  if (encoded === "") return { why: `has nothing after ${PREFIX}` };
  const key = decodeBase64(encoded);
  if (!key) {
    return { why: `is not valid base64 after ${PREFIX} (standard alphabet, padded with =)` };
  }
  if (key.length < MIN_SECRET_BYTES) {
    return {
      why: `decodes to ${key.length} bytes; at least ${MIN_SECRET_BYTES} are required`,
    };
  }
  return { key };
}

/**
 * Checks a secret setting (`whsec_a` or `whsec_a,whsec_b`) and decodes its secrets.
 * The problem names the malformed secret by its place and the cause, never its value.
 */
export function parseWebhookSecrets(setting: string | undefined): ParsedSecrets {
  if (setting === undefined || setting.trim() === "") {
    return { ok: false, problem: "it is not set" };
  }
  const parts = setting.split(",").map((part) => part.trim());
  if (parts.length > MAX_SECRETS) {
    return {
      ok: false,
      problem: `it holds ${parts.length} comma-separated secrets; at most ${MAX_SECRETS} ` +
        "(the new and the old one, during a rotation) are allowed",
    };
  }
  const keys: Uint8Array[] = [];
  for (const [i, part] of parts.entries()) {
    const parsed = parseOneSecret(part);
    if ("why" in parsed) {
      return { ok: false, problem: `secret ${i + 1} of ${parts.length} ${parsed.why}` };
    }
    keys.push(parsed.key);
  }
  return { ok: true, keys };
}
