/**
 * The secret the stream forwarder signs webhook requests with.
 *
 * Deployed, the Lambda gets `SYNC_WEBHOOK_SECRET_ARN` and reads the secret from AWS
 * Secrets Manager: once at cold start (the module starts the read while Lambda
 * initialises it), then from memory for `CACHE_MS`. It reads the secret's current
 * version and, when there is one, its previous (`AWSPREVIOUS`: "the version of the secret
 * that previously had AWSCURRENT"), and the forwarder signs with both: during a rotation,
 * whichever of the two the webhook holds verifies, in whatever order the operator puts the
 * new one in Secrets Manager and in Supabase. A 401 from the webhook makes the forwarder
 * forget them and read them again. On the local stack and in tests,
 * `SYNC_WEBHOOK_SECRET` holds the `whsec_...` value itself.
 *
 * @module
 */

import process from "node:process";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { MAX_SECRETS, parseWebhookSecrets } from "../functions-shared/webhook_secrets.ts";

/** How long a secret read from Secrets Manager is used before it is read again. */
export const CACHE_MS = 15 * 60 * 1000;

/**
 * How long the last value read stays usable when a read to refresh it fails (Secrets
 * Manager throttled or unreachable): every invocation would fail otherwise, each failure
 * splitting its batch into more. A 401 from the webhook still forgets it at once.
 */
export const STALE_MS = 60 * 60 * 1000;

/**
 * While a refresh fails, the value read before is served from memory this long before
 * Secrets Manager is asked again: the forwarder asks for the secret before every attempt
 * of every body, and each read of a Secrets Manager that does not answer takes
 * {@link READ_LIMIT_MS}, most of a short invocation.
 */
export const RETRY_FAILED_READ_MS = 60 * 1000;

/**
 * An attempt of a request to Secrets Manager gives up after this long. The SDK's
 * `requestTimeout` alone only warns ("If exceeded, a warning will be emitted unless
 * throwOnRequestTimeout=true", @smithy/node-http-handler's NodeHttpHandlerOptions), so it
 * is set to throw, and the SDK tries again.
 */
const REQUEST_TIMEOUT_MS = 5_000;

/**
 * A read of the secret (both versions, the SDK's attempts included) gives up after this
 * long: a Secrets Manager that takes a request and never answers would otherwise hold
 * every invocation to the Lambda's timeout, a function error on which Lambda splits the
 * batch, and start again at each cold start.
 */
export const READ_LIMIT_MS = 10_000;

let cached: { value: Promise<string>; readAt: number } | undefined;
/** The last value read, and when: used while a refresh fails, for {@link STALE_MS}. */
let lastGood: { value: string; readAt: number } | undefined;
let client: SecretsManagerClient | undefined;

/** The region of a secret's ARN (its fourth part). */
function regionOf(arn: string): string {
  return arn.split(":")[3];
}

/**
 * One version of the secret (the current one without `stage`); undefined when the secret
 * has no version at that stage (Secrets Manager answers ResourceNotFoundException).
 */
async function readVersion(
  arn: string,
  stage: string | undefined,
  limit: { signal: AbortSignal; ms: number },
): Promise<string | undefined> {
  // The region is the secret's own, whatever the Lambda's.
  client ??= new SecretsManagerClient({
    region: regionOf(arn) || undefined,
    requestHandler: {
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionTimeout: REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    },
  });
  try {
    const answer = await client.send(
      new GetSecretValueCommand({ SecretId: arn, VersionStage: stage }),
      { abortSignal: limit.signal },
    );
    return answer.SecretString?.trim() ?? "";
  } catch (error) {
    if (stage && (error as Error).name === "ResourceNotFoundException") return undefined;
    const cause = limit.signal.aborted
      ? `no answer within ${limit.ms / 1000} s`
      : (error as Error).message;
    throw new Error(
      `cannot read the webhook secret ${arn}${stage ? ` (${stage})` : ""} from Secrets ` +
        `Manager: ${cause}`,
    );
  }
}

/**
 * The setting to sign with: the current version's secrets (checked as the webhook checks
 * its own: a malformed value is refused here, naming the problem, never the value), then
 * the previous version's first secret while there is room (at most {@link MAX_SECRETS}).
 * A previous version that does not parse is left out: it is no longer the one to use.
 */
async function readSecret(arn: string, limitMs: number): Promise<string> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), limitMs);
  const limit = { signal: abort.signal, ms: limitMs };
  const [current, previous] = await Promise.all([
    readVersion(arn, undefined, limit),
    // The previous version only widens what verifies during a rotation: a failed read of
    // it leaves it out rather than failing the current one.
    readVersion(arn, "AWSPREVIOUS", limit).catch((error: Error) => {
      console.error(`${error.message}; signing with the current version only`);
      return undefined;
    }),
  ]).finally(() => clearTimeout(timer));
  const parsed = parseWebhookSecrets(current);
  if (!parsed.ok) {
    throw new Error(
      `the webhook secret ${arn} holds no valid whsec_... value (${parsed.problem}); put ` +
        `the one Supabase has with (as Terraform's put_webhook_secret output: the secret's ` +
        `region, since the CLI sends it to its default region whatever the ARN says, and the ` +
        `value from standard input, not the command line) printf %s "$SYNC_WEBHOOK_SECRET" | ` +
        `aws secretsmanager put-secret-value --region ${regionOf(arn)} --secret-id ${arn} ` +
        `--secret-string file:///dev/stdin`,
    );
  }
  const secrets = current!.split(",").map((s) => s.trim());
  const old = previous?.split(",")[0]?.trim();
  if (
    old && secrets.length < MAX_SECRETS && !secrets.includes(old) &&
    parseWebhookSecrets(old).ok
  ) {
    secrets.push(old);
  }
  return secrets.join(",");
}

/**
 * The `whsec_...` secrets to sign with (comma-separated, as the webhook's setting):
 * `SYNC_WEBHOOK_SECRET` when set, else the current and previous versions of the secret
 * named by `SYNC_WEBHOOK_SECRET_ARN`, cached. Rejects with a message naming the setting
 * or the secret and the cause, within `readLimitMs` ({@link READ_LIMIT_MS}); a rejected
 * read is not cached.
 */
export function webhookSecret(
  now: number = Date.now(),
  readLimitMs: number = READ_LIMIT_MS,
): Promise<string> {
  const direct = process.env.SYNC_WEBHOOK_SECRET;
  if (direct) return Promise.resolve(direct);
  const arn = process.env.SYNC_WEBHOOK_SECRET_ARN;
  if (!arn) {
    return Promise.reject(
      new Error("SYNC_WEBHOOK_SECRET_ARN (or SYNC_WEBHOOK_SECRET) must be set"),
    );
  }
  if (!cached || now - cached.readAt > CACHE_MS) {
    const fallback = lastGood && now - lastGood.readAt <= STALE_MS ? lastGood.value : undefined;
    const value = readSecret(arn, readLimitMs).then(
      (read) => {
        lastGood = { value: read, readAt: now };
        return read;
      },
      (error: Error) => {
        if (fallback === undefined) {
          if (cached === entry) cached = undefined;
          throw error;
        }
        console.error(
          `${error.message}; signing with the value read before, asking again in ` +
            `${RETRY_FAILED_READ_MS / 1000} s`,
        );
        // Asked again in a minute, or once the value read before is past STALE_MS.
        if (cached === entry && lastGood) {
          const askAt = Math.min(now + RETRY_FAILED_READ_MS, lastGood.readAt + STALE_MS);
          cached = { value: Promise.resolve(fallback), readAt: askAt - CACHE_MS };
        }
        return fallback;
      },
    );
    const entry = { value, readAt: now };
    cached = entry;
  }
  return cached.value;
}

/**
 * Drops the cached secret, so the next call reads it again (after a 401: rotated?), and
 * the last value read: the webhook refused it.
 */
export function forgetWebhookSecret(): void {
  cached = undefined;
  lastGood = undefined;
}
