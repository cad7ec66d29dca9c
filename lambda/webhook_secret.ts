/**
 * The secret the stream forwarder signs webhook requests with.
 *
 * Deployed, the Lambda gets `SYNC_WEBHOOK_SECRET_ARN` and reads the secret from AWS
 * Secrets Manager: once at cold start (the module starts the read while Lambda
 * initialises it), then from memory for `CACHE_MS`. A 401 from the webhook makes the
 * forwarder forget it, so the retried batch reads it again: a rotated secret is picked
 * up without a redeploy. On the local stack and in tests, `SYNC_WEBHOOK_SECRET` holds
 * the `whsec_...` value itself.
 *
 * @module
 */

import process from "node:process";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

/** How long a secret read from Secrets Manager is used before it is read again. */
export const CACHE_MS = 15 * 60 * 1000;

let cached: { value: Promise<string>; readAt: number } | undefined;
let client: SecretsManagerClient | undefined;

async function readSecret(arn: string): Promise<string> {
  // The region is the secret's own (the ARN's fourth part), whatever the Lambda's.
  client ??= new SecretsManagerClient({ region: arn.split(":")[3] || undefined });
  let value: string | undefined;
  try {
    value = (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
  } catch (error) {
    throw new Error(
      `cannot read the webhook secret ${arn} from Secrets Manager: ${(error as Error).message}`,
    );
  }
  if (!value?.trim().startsWith("whsec_")) {
    throw new Error(
      `the webhook secret ${arn} holds no whsec_... value; put the one Supabase has with ` +
        `aws secretsmanager put-secret-value --secret-id ${arn} --secret-string whsec_...`,
    );
  }
  return value.trim();
}

/**
 * The `whsec_...` secret to sign with: `SYNC_WEBHOOK_SECRET` when set, else the secret
 * named by `SYNC_WEBHOOK_SECRET_ARN`, cached. Rejects with a message naming the setting
 * or the secret and the cause; a rejected read is not cached.
 */
export function webhookSecret(now: number = Date.now()): Promise<string> {
  const direct = process.env.SYNC_WEBHOOK_SECRET;
  if (direct) return Promise.resolve(direct);
  const arn = process.env.SYNC_WEBHOOK_SECRET_ARN;
  if (!arn) {
    return Promise.reject(
      new Error("SYNC_WEBHOOK_SECRET_ARN (or SYNC_WEBHOOK_SECRET) must be set"),
    );
  }
  if (!cached || now - cached.readAt > CACHE_MS) {
    const value = readSecret(arn);
    const entry = { value, readAt: now };
    cached = entry;
    value.catch(() => {
      if (cached === entry) cached = undefined;
    });
  }
  return cached.value;
}

/** Drops the cached secret, so the next call reads it again (after a 401: rotated?). */
export function forgetWebhookSecret(): void {
  cached = undefined;
}
