/**
 * Signing and verifying webhook requests by the Standard Webhooks scheme (the one
 * Supabase's Auth hooks use), with the `standardwebhooks` package: headers `webhook-id`,
 * `webhook-timestamp` (unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
 * "<id>.<timestamp>.<body>">`. A timestamp more than 300 s from now is refused.
 *
 * The secret setting may hold two `whsec_...` secrets separated by a comma during a
 * rotation; either verifies.
 *
 * @module
 */

import { Webhook } from "standardwebhooks";

/** Splits a secret setting (`whsec_a` or `whsec_a,whsec_b`) into its secrets. */
export function parseSecrets(setting: string | undefined): string[] {
  return (setting ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

/** The three headers that sign `body` with the first secret of `setting`. */
export function signWebhook(
  setting: string,
  body: string,
  id: string = `msg_${crypto.randomUUID()}`,
  at: Date = new Date(),
): Record<string, string> {
  const [secret] = parseSecrets(setting);
  if (!secret) throw new Error("no webhook secret to sign with (SYNC_WEBHOOK_SECRET is empty)");
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(id, at, body),
  };
}

/**
 * Checks a request's signature against every secret of `setting`. Returns undefined
 * when one verifies, or why none does (for a 401 answer).
 */
export function webhookProblem(
  setting: string | undefined,
  headers: Headers,
  body: string,
): string | undefined {
  const secrets = parseSecrets(setting);
  if (secrets.length === 0) return "the webhook has no SYNC_WEBHOOK_SECRET to verify with";
  const wanted = ["webhook-id", "webhook-timestamp", "webhook-signature"];
  const missing = wanted.filter((name) => !headers.get(name));
  if (missing.length > 0) return `missing header ${missing.join(", ")}`;
  const plain = Object.fromEntries(wanted.map((name) => [name, headers.get(name)!]));
  let problem = "";
  for (const secret of secrets) {
    try {
      new Webhook(secret).verify(body, plain);
      return undefined;
    } catch (error) {
      // verify() parses the body after checking it; a body that is not JSON is still
      // correctly signed, and the caller answers 400 for it.
      if ((error as Error).name !== "WebhookVerificationError") return undefined;
      const message = (error as Error).message;
      problem = /timestamp/i.test(message)
        ? `webhook-timestamp ${plain["webhook-timestamp"]} is more than 300 s from now`
        : /signature/i.test(message)
        ? "webhook-signature does not match the body with any configured secret"
        : message;
    }
  }
  return problem;
}
