/**
 * Signing and verifying webhook requests by the Standard Webhooks scheme (the one
 * Supabase's Auth hooks use): headers `webhook-id`, `webhook-timestamp` (unix seconds)
 * and `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` (several
 * space-separated signatures may be sent; any one may match).
 *
 * The secret setting (SYNC_WEBHOOK_SECRET) holds one `whsec_<base64>` secret, or two
 * separated by a comma during a rotation; either verifies, the first signs. It is
 * checked once, when the verifier is built at cold start ({@link createWebhookVerifier}):
 * - every secret is `whsec_` followed by standard, padded base64 (`A–Z a–z 0–9 + /`,
 *   `=`) that decodes to at least {@link MIN_SECRET_BYTES} (24) bytes, the smallest
 *   Standard Webhooks secret (they are 24 to 64 bytes; `openssl rand -base64 32` gives
 *   32); there is no maximum, HMAC takes keys of any length;
 * - at most {@link MAX_SECRETS} (2) secrets, and no empty part (`whsec_a,` is refused).
 * A malformed setting gives a verifier that verifies nothing: the webhook refuses every
 * request with a message naming the malformed secret by its place ("secret 2 of 2") and
 * the cause, never its value.
 *
 * Verification is done in steps, so that the webhook checks the cheap things first:
 * {@link checkWebhookHeaders} (the three headers, the timestamp within 300 s of now)
 * before the body is read, then {@link WebhookVerifier.verifySignature} over the body
 * with Web Crypto (HMAC-SHA256, then a constant-time comparison of the decoded
 * signatures). Nothing is accepted from a `catch`: every path that does not end in a
 * matching signature is a refusal.
 *
 * Signing ({@link signWebhook}) stays synchronous, for the Lambda (Node 22) and the
 * tools that spread its headers into a request; it uses the `standardwebhooks`
 * package's HMAC with the secret already checked here.
 *
 * @module
 */

import { Webhook } from "standardwebhooks";

/** How far (seconds) a request's `webhook-timestamp` may be from now, either way. */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;
/** The fewest bytes a secret may decode to (Standard Webhooks secrets are 24 to 64). */
export const MIN_SECRET_BYTES = 24;
/** The most secrets a setting may hold: the new and the old one during a rotation. */
export const MAX_SECRETS = 2;
/** The longest `webhook-id` accepted (the Lambda sends `msg_<uuid>`, 40 characters). */
export const MAX_WEBHOOK_ID_LENGTH = 256;

const PREFIX = "whsec_";
const SETTING = "SYNC_WEBHOOK_SECRET";
/** Standard base64 with its padding: whole groups of four, `=` only at the end. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const NO_MATCH = "webhook-signature does not match the body with any configured secret";

/** The outcome of checking a secret setting: the decoded keys, or what is wrong. */
export type ParsedSecrets =
  | { ok: true; keys: Uint8Array[] }
  | { ok: false; problem: string };

/** Decodes standard, padded base64; undefined when `text` is not exactly that. */
function decodeBase64(text: string): Uint8Array | undefined {
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

/** Whether two byte strings are equal, taking the same time wherever they differ. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** The bytes that are signed: `<id>.<timestamp>.` followed by the body as sent. */
function signedContent(delivery: Delivery, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const prefix = new TextEncoder().encode(`${delivery.id}.${delivery.timestamp}.`);
  const content = new Uint8Array(prefix.length + body.length);
  content.set(prefix, 0);
  content.set(body, prefix.length);
  return content;
}

/** Whether any of `signatures` equals any of `expected`; every pair is compared in full. */
function anyMatches(signatures: Uint8Array[], expected: Uint8Array[]): boolean {
  let matched = false;
  for (const mac of expected) {
    for (const signature of signatures) {
      if (timingSafeEqual(signature, mac)) matched = true;
    }
  }
  return matched;
}

/** A verifier built from a well-formed setting. */
export interface ReadyVerifier {
  ok: true;
  /** How many secrets verify (2 during a rotation). */
  secretCount: number;
  /**
   * Checks the body's signature against every secret; resolves to undefined when one
   * matches, else to why not (for a 401). Call {@link checkWebhookHeaders} first.
   */
  verifySignature(delivery: Delivery, body: Uint8Array): Promise<string | undefined>;
}

/** A verifier built from a malformed setting: it verifies nothing. */
export interface MisconfiguredVerifier {
  ok: false;
  /**
   * Why (for the 500 answer and the cold-start log line): names the setting, which
   * secret of it is malformed and how, never a value.
   */
  problem: string;
}

/** What {@link createWebhookVerifier} builds, once, at cold start. */
export type WebhookVerifier = ReadyVerifier | MisconfiguredVerifier;

/**
 * Checks the secret setting and builds the verifier. Never throws: a malformed setting
 * gives a {@link MisconfiguredVerifier}, which the webhook answers every request with
 * a 500 for.
 */
export function createWebhookVerifier(setting: string | undefined): WebhookVerifier {
  const parsed = parseWebhookSecrets(setting);
  if (!parsed.ok) {
    return {
      ok: false,
      problem: `the webhook's ${SETTING} is misconfigured: ${parsed.problem}`,
    };
  }
  let cryptoKeys: Promise<CryptoKey[]> | undefined;
  const importKeys = () =>
    Promise.all(parsed.keys.map((key) =>
      crypto.subtle.importKey(
        "raw",
        new Uint8Array(key),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      )
    ));
  return {
    ok: true,
    secretCount: parsed.keys.length,
    async verifySignature(delivery: Delivery, body: Uint8Array): Promise<string | undefined> {
      cryptoKeys ??= importKeys();
      const content = signedContent(delivery, body);
      const expected: Uint8Array[] = [];
      for (const key of await cryptoKeys) {
        expected.push(new Uint8Array(await crypto.subtle.sign("HMAC", key, content)));
      }
      return anyMatches(delivery.signatures, expected) ? undefined : NO_MATCH;
    },
  };
}

/** The `v1,<base64>` signature of a message with one key (the package's HMAC). */
function signWithKey(key: Uint8Array, id: string, at: Date, body: string): string {
  return new Webhook(key, { format: "raw" }).sign(id, at, body);
}

/**
 * The three headers that sign `body` with the first secret of `setting`. Throws when
 * the setting is malformed (naming which secret and why, never its value).
 */
export function signWebhook(
  setting: string,
  body: string,
  id: string = `msg_${crypto.randomUUID()}`,
  at: Date = new Date(),
): Record<string, string> {
  const parsed = parseWebhookSecrets(setting);
  if (!parsed.ok) {
    throw new Error(`cannot sign the webhook request: ${SETTING} is malformed: ${parsed.problem}`);
  }
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signWithKey(parsed.keys[0], id, at, body),
  };
}

/**
 * A synchronous check of a whole request at once, for tests and tools that play the
 * receiving end (lambda/stream_forwarder_test.ts); the webhook itself uses
 * {@link createWebhookVerifier}. Returns undefined when the headers are good and a
 * signature matches one secret of `setting`, else why not. A malformed setting is
 * always a problem.
 */
export function webhookProblem(
  setting: string | undefined,
  headers: Headers,
  body: string,
  nowMs: number = Date.now(),
): string | undefined {
  const parsed = parseWebhookSecrets(setting);
  if (!parsed.ok) return `the webhook's ${SETTING} is misconfigured: ${parsed.problem}`;
  const checked = checkWebhookHeaders(headers, nowMs);
  if (!checked.ok) return checked.problem;
  const { id, timestamp, signatures } = checked.delivery;
  const at = new Date(timestamp * 1000);
  const expected = parsed.keys.map((key) =>
    decodeBase64(signWithKey(key, id, at, body).slice("v1,".length))!
  );
  return anyMatches(signatures, expected) ? undefined : NO_MATCH;
}
