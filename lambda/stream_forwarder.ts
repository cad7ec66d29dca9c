/**
 * The AWS Lambda (Node 22, runtime `nodejs22.x`) between DynamoDB Streams and the
 * `mmp-toledo-sync` webhook.
 *
 * It forwards the records of its batch unchanged, in order, as `{"records": [...]}`,
 * split so that no request exceeds the webhook's 6 MiB (lambda/stream_records.ts), each
 * body signed and retried for as long as the invocation's time budget allows
 * (lambda/webhook_delivery.ts).
 * It answers with `batchItemFailures` naming the first record not delivered, so that
 * Lambda (ReportBatchItemFailures) checkpoints what was delivered and retries only from
 * there, when the webhook could not take the body now (503, 502, 504, 408, 429, no
 * answer, or a 401, 403, 404 or 409 that no other body would pass either). A body of
 * several records that the webhook refused (400, 413, 415, 422) or failed on (500, or 546
 * at a resource limit) fails the invocation instead: Lambda bisects a batch
 * only on a function error ("the batch is bisected at the returned sequence number" for a
 * partial failure, which retries the same body until its records pass their maximum age:
 * https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html),
 * so the halves go again until the record at fault is alone and the rest is delivered
 * (the records behind it once it has passed its maximum age, an hour: those of the same
 * age go to the on-failure queue with it, for `npm run stream:replay`).
 *
 * Settings (environment): WEBHOOK_URL, and either SYNC_WEBHOOK_SECRET_ARN (deployed: the
 * `whsec_...` secret in Secrets Manager, read at cold start and cached) or
 * SYNC_WEBHOOK_SECRET (the value itself: local stack, tests).
 *
 * @module
 */

import process from "node:process";
import {
  type BatchResponse,
  bodyStart,
  type DynamoDBStreamEvent,
  type LambdaContext,
  splitIntoBodies,
} from "./stream_records.ts";
import { deliver } from "./webhook_delivery.ts";
import { webhookSecret } from "./webhook_secret.ts";

// Start reading the secret while Lambda initialises the function (the cold start), so
// the first invocation need not wait for it; a failed read is retried by that invocation.
if (process.env.SYNC_WEBHOOK_SECRET_ARN) webhookSecret().catch(() => {});

/** Stop retrying this long before the invocation would time out. */
const SAFETY_MS = 1_000;

/**
 * How long an invocation lasts, at least, when it reports its batch not delivered (its
 * deadline first): Lambda retries a failed stream batch with no pause of its own that
 * AWS documents ("failed records are retried until the record expires",
 * https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html). A failure that
 * comes in milliseconds (the function not deployed, 404; a secret not put; a setting
 * missing) was asked for again thousands of times an hour on every shard, each a call of
 * the webhook or of Secrets Manager and a log line, until the records passed their
 * maximum age (found by a review). A batch whose deliveries were retried to the deadline
 * (503s, no answer) has waited already; one the webhook refused, to be bisected, goes on
 * at once.
 */
export const NOT_DELIVERED_MIN_MS = 30_000;

/** The pause before a batch not delivered is reported (tests replace it). */
export const forwarderClock = {
  sleep: (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** The hosts a plain-http WEBHOOK_URL may name: this machine's (the local stack's gateway). */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * What is wrong with a WEBHOOK_URL, in words that never repeat it (it may hold a key):
 * it must parse, as https (http only to this machine: the records, the items they carry,
 * would cross the network in the clear; Terraform's variable holds the deployed one to
 * https too), with no user or password and no query but the `forceFunctionRegion`
 * Supabase reads. Node's fetch puts the whole URL in the message of the error it throws
 * for such a URL, which the forwarder would log on every attempt.
 */
export function webhookUrlProblem(url: string): string | undefined {
  if (!URL.canParse(url)) return "WEBHOOK_URL is no URL";
  const parsed = new URL(url);
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    return `WEBHOOK_URL must be an https address, not ${parsed.protocol}`;
  }
  if (parsed.protocol === "http:" && !LOOPBACK.has(parsed.hostname)) {
    return `WEBHOOK_URL must be an https address for ${parsed.hostname}, not http: (the ` +
      "records would cross the network unencrypted)";
  }
  if (parsed.username || parsed.password) {
    return "WEBHOOK_URL must not hold a user or password (the webhook is signed, not logged in to)";
  }
  const extra = [...parsed.searchParams.keys()].filter((key) => key !== "forceFunctionRegion");
  if (extra.length > 0 || parsed.hash) {
    return "WEBHOOK_URL may have no query but forceFunctionRegion, and no fragment";
  }
  return undefined;
}

/** The Lambda handler. */
export async function handler(
  event: DynamoDBStreamEvent,
  context: LambdaContext,
): Promise<BatchResponse> {
  const started = Date.now();
  const deadline = started + context.getRemainingTimeInMillis() - SAFETY_MS;
  // Reported from `failed` on, once the invocation has lasted NOT_DELIVERED_MIN_MS.
  const notDelivered = async (failed: string): Promise<BatchResponse> => {
    const until = Math.min(deadline, started + NOT_DELIVERED_MIN_MS);
    if (until > Date.now()) await forwarderClock.sleep(until - Date.now());
    return { batchItemFailures: [{ itemIdentifier: failed }] };
  };
  // Without its settings, nothing is sent and the batch is reported failed from its first
  // record: Lambda retries it as it is, and nothing is lost while the setting is fixed.
  // (Thrown, the error would make Lambda split every batch down to single records, for
  // a fault of no record.)
  // Named by its table, first record and key: one forwarder serves every table of its
  // region, and the operator must know which mapping's batches wait.
  const notSent = async (why: string): Promise<BatchResponse> => {
    const records = event.Records ?? [];
    const first = records[0]?.dynamodb?.SequenceNumber;
    const batch = records.length > 0 ? ` (the batch of ${bodyStart(records)})` : "";
    if (records.length && !first) throw new Error(`${why}${batch}`);
    console.error(`${why}; nothing sent${batch}, the batch is retried as it is`);
    return first ? await notDelivered(first) : { batchItemFailures: [] };
  };
  const url = process.env.WEBHOOK_URL;
  if (!url) return await notSent("WEBHOOK_URL must be set");
  const urlProblem = webhookUrlProblem(url);
  if (urlProblem) return await notSent(urlProblem);
  // Read (or refused) before anything is sent.
  try {
    await webhookSecret();
  } catch (error) {
    return await notSent((error as Error).message);
  }
  for (const records of splitIntoBodies(event.Records ?? [])) {
    const outcome = await deliver(url, () => webhookSecret(), records, deadline);
    if (outcome === "refused" && records.length > 1) {
      // Bisected by Lambda on this error: the records delivered before go again, and the
      // ordering guard skips them.
      throw new Error(
        `the webhook refused the body of ${records.length} records of ${bodyStart(records)} ` +
          "(its answers are logged above): failing the invocation so that Lambda bisects the batch",
      );
    }
    if (outcome !== "delivered") {
      const failed = records[0]?.dynamodb?.SequenceNumber;
      // Lambda reads an empty or unknown identifier as the whole batch failed, records
      // delivered included; a stream record always has its sequence number, so one
      // without it fails the invocation instead, naming it (bisection then isolates it).
      if (!failed) {
        throw new Error(
          `stream record ${records[0]?.eventID ?? "?"} (${
            bodyStart(records)
          }) has no SequenceNumber`,
        );
      }
      return await notDelivered(failed);
    }
  }
  return { batchItemFailures: [] };
}
