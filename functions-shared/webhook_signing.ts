/**
 * Signing and verifying webhook requests by the Standard Webhooks scheme (the one
 * Supabase's Auth hooks use): headers `webhook-id`, `webhook-timestamp` (unix seconds)
 * and `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` (several
 * space-separated signatures may be sent; any one may match).
 *
 * The secret setting (SYNC_WEBHOOK_SECRET) is checked once, when the verifier is built at
 * cold start ({@link createWebhookVerifier}), by webhook_secrets.ts. A malformed setting
 * gives a verifier that verifies nothing: the webhook refuses every request with a
 * message naming the malformed secret by its place ("secret 2 of 2") and the cause,
 * never its value.
 *
 * Verification is done in steps, so that the webhook checks the cheap things first:
 * checkWebhookHeaders (webhook_headers.ts: the three headers, the timestamp within 300 s
 * of now) before the body is read, then {@link WebhookVerifier.verifySignature} over the
 * body with Web Crypto (HMAC-SHA256, then a constant-time comparison of the decoded
 * signatures). Nothing is accepted from a `catch`: every path that does not end in a
 * matching signature is a refusal.
 *
 * Signing ({@link signWebhook}) stays synchronous, for the Lambda (Node 22) and the
 * tools that spread its headers into a request; it uses `node:crypto`'s native HMAC
 * (Node and Deno both have it). The `standardwebhooks` package's own HMAC is plain
 * JavaScript: 43 ms to sign a 750 KB batch of 1,000 records on this machine, against
 * well under one with `node:crypto`; webhook_signing_test.ts checks that the package's
 * verifier accepts what is signed here.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { checkWebhookHeaders, type Delivery } from "./webhook_headers.ts";
import {
  decodeBase64,
  parseWebhookSecrets,
  WEBHOOK_SECRET_SETTING as SETTING,
} from "./webhook_secrets.ts";

const NO_MATCH = "webhook-signature does not match the body with any configured secret";

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
   * Why (for the 503 answer and the cold-start log line): names the setting, which
   * secret of it is malformed and how, never a value.
   */
  problem: string;
}

/** What {@link createWebhookVerifier} builds, once, at cold start. */
export type WebhookVerifier = ReadyVerifier | MisconfiguredVerifier;

/**
 * Checks the secret setting and builds the verifier. Never throws: a malformed setting
 * gives a {@link MisconfiguredVerifier}, which the webhook answers every request with
 * a 503 for (`x-sync-refusal: misconfigured`: the Lambda retries it as it is).
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

/** The `v1,<base64>` signature of a message with one key. */
function signWithKey(key: Uint8Array, id: string, at: Date, body: string | Uint8Array): string {
  const mac = createHmac("sha256", key)
    .update(`${id}.${Math.floor(at.getTime() / 1000)}.`)
    .update(body)
    .digest("base64");
  return `v1,${mac}`;
}

/**
 * The three headers that sign `body` with every secret of `setting`, one space-separated
 * signature each (Standard Webhooks allows several; the receiver accepts any one that
 * verifies): during a rotation the sender signs with the new secret and the old, so the
 * receiver verifies whichever it holds. Throws when the setting is malformed (naming
 * which secret and why, never its value).
 */
export function signWebhook(
  setting: string,
  body: string | Uint8Array,
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
    "webhook-signature": parsed.keys.map((key) => signWithKey(key, id, at, body)).join(" "),
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
