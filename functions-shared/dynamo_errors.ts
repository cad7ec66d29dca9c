/**
 * DynamoDB's errors as the functions' client (dynamo_http.ts) throws them, and which of
 * them are worth another attempt, by the AWS SDK's rules ("standard" retry mode, its
 * THROTTLING_ERROR_CODES, TRANSIENT_ERROR_CODES and CLOCK_SKEW_ERROR_CODES; AWS, "Error
 * handling with DynamoDB",
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
 *
 * @module
 */

import type { ResponseMetadata } from "./dynamo_commands.ts";

/** How an error may be retried: after a throttling backoff, a short one, or not at all. */
export type RetryKind = "throttling" | "transient" | "no";

/**
 * An error DynamoDB answered, or a failure to reach it: `name` is DynamoDB's (e.g.
 * `ResourceNotFoundException`) or the client's own (`NetworkingError`,
 * `CRC32CheckFailed`, `CredentialsProviderError`), the message names the operation and
 * the table, and `$metadata` holds the HTTP status and the attempts made.
 */
export class DynamoError extends Error {
  constructor(
    name: string,
    message: string,
    readonly $metadata: ResponseMetadata,
    readonly retry: RetryKind = "no",
  ) {
    super(message);
    this.name = name;
  }
}

/** Throttling: retried after a backoff from 1 s (the SDK's THROTTLING_ERROR_CODES). */
const THROTTLING = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "Throttling",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "LimitExceededException",
  "TransactionInProgressException",
  "ThrottledException",
  "BandwidthLimitExceeded",
  "SlowDown",
  "PriorRequestNotComplete",
]);

/** Retried as transient whatever their status (the SDK's, and DynamoDB's retryable ones). */
const TRANSIENT_NAMES = new Set([
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalServerError",
  "ServiceUnavailable",
  "ReplicatedWriteConflictException",
]);
const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);

/** Refusals for a request's clock (the SDK's CLOCK_SKEW_ERROR_CODES). */
const CLOCK_SKEW = new Set([
  "AuthFailure",
  "InvalidSignatureException",
  "RequestExpired",
  "RequestInTheFuture",
  "RequestTimeTooSkewed",
  "SignatureDoesNotMatch",
  "AccessDeniedException",
]);

/**
 * How an error answer is retried: throttling (by name, or HTTP 429), transient (by
 * name or HTTP 5xx), a clock-skew refusal once the client corrected its clock, else not.
 */
export function retryKind(name: string, status: number, clockCorrected: boolean): RetryKind {
  if (THROTTLING.has(name) || status === 429) return "throttling";
  if (TRANSIENT_NAMES.has(name) || TRANSIENT_STATUS.has(status)) return "transient";
  if (clockCorrected && CLOCK_SKEW.has(name)) return "transient";
  return "no";
}

/** Whether an error thrown by the client could succeed if the request were made again. */
export function isRetryable(error: unknown): boolean {
  return error instanceof DynamoError && error.retry !== "no";
}

/**
 * DynamoDB's message, without what it may echo of the request's signing: a signature
 * refusal can quote the canonical request, whose headers hold the session token.
 */
export function safeMessage(message: string, secrets: (string | undefined)[]): string {
  let text = message.split(/\n\s*\n?The (Canonical String|String-to-Sign)/)[0];
  for (const secret of secrets) {
    if (secret) text = text.replaceAll(secret, "[redacted]");
  }
  return text.trim();
}
