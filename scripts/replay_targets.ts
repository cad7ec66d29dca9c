/**
 * Where `npm run stream:replay` (replay_stream_failure.ts) delivers and reads: the local
 * stack's webhook and DynamoDB unless the environment names another webhook, checked and
 * said before any range is read, without printing the URL's path or a secret.
 *
 * @module
 */

import { webhookUrlProblem } from "../lambda/stream_forwarder.ts";
import type { readStackEnv } from "../local-stack/stack_env.ts";

/** The local stack's settings the command may default to. */
type StackDefaults = Pick<
  ReturnType<typeof readStackEnv>,
  "FUNCTIONS_URL" | "SYNC_WEBHOOK_SECRET" | "DYNAMODB_ENDPOINT"
>;

/**
 * Fills in the local stack's settings where the environment names no other webhook, and
 * says where the command will send: `{problem}` when the environment is half of one. A
 * webhook secret set without WEBHOOK_URL is a production run that forgot its URL: it
 * would have replayed into the local stack, and every range would have read as gone.
 */
export function replayTargets(
  env: Record<string, string | undefined>,
  stack: StackDefaults | undefined,
): { line: string } | { problem: string } {
  // A secret, or the ARN it is read from, without WEBHOOK_URL is a production run that
  // forgot its URL, not the local stack's.
  const local = stack &&
    (env.WEBHOOK_URL === undefined
      ? env.SYNC_WEBHOOK_SECRET === undefined && env.SYNC_WEBHOOK_SECRET_ARN === undefined
      : env.WEBHOOK_URL.startsWith(stack.FUNCTIONS_URL));
  if (local) {
    env.WEBHOOK_URL ??= `${stack.FUNCTIONS_URL}/mmp-toledo-sync`;
    env.SYNC_WEBHOOK_SECRET ??= stack.SYNC_WEBHOOK_SECRET;
    env.DYNAMODB_ENDPOINT ??= stack.DYNAMODB_ENDPOINT;
    env.FUNCTIONS_URL ??= stack.FUNCTIONS_URL;
  }
  if (env.WEBHOOK_URL === undefined) {
    return {
      problem: "WEBHOOK_URL is not set: name the webhook to deliver to " +
        "(https://<project ref>.supabase.co/functions/v1/mmp-toledo-sync) with its " +
        "SYNC_WEBHOOK_SECRET" + (stack ? " (unset, both are the local stack's)" : ""),
    };
  }
  // Checked as the forwarder checks it, and never printed (it may hold a key): its host.
  const urlProblem = webhookUrlProblem(env.WEBHOOK_URL);
  if (urlProblem) return { problem: urlProblem };
  const host = new URL(env.WEBHOOK_URL).host;
  // Said before any range is read: each file would fail on it, after its read.
  if (!env.SYNC_WEBHOOK_SECRET && !env.SYNC_WEBHOOK_SECRET_ARN) {
    return {
      problem: `neither SYNC_WEBHOOK_SECRET nor SYNC_WEBHOOK_SECRET_ARN is set: give the ` +
        `secret the webhook at ${host} verifies with (the whsec_... value, or its Secrets Manager ARN)`,
    };
  }
  const dynamo = env.DYNAMODB_ENDPOINT ?? "AWS's regional endpoints";
  return { line: `webhook at ${host}, DynamoDB Streams at ${dynamo}` };
}
