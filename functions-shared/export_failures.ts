/**
 * How the export loader (export_load.ts) tells its failures apart: one that may pass as
 * it is (retried after a wait, a few times in a row), credentials S3 refused (the loader
 * stops at once, its job left running for the next run after the fix), and the others,
 * which fail the file's job, naming the file.
 *
 * @module
 */

import { ExportReadError } from "./export_items.ts";
import { isStatementTimeout, isTransientFailure } from "./db_errors.ts";

/**
 * Failures in a row after which a worker stops, leaving its job running (resumable from
 * its checkpoints): with waits of 1, 2, 4, 8, 16 and then 30 s, about two minutes.
 */
export const TRANSIENT_ATTEMPTS = 8;

/**
 * A statement timeout (57014) of a chunk of no lines (export_stage.ts): the checkpoint
 * that ends a file (`ending`), or, rarely, a chunk that timed out before its first line
 * was staged. Nothing to write page by page instead, and no work that comes back the same
 * every time (a lock waited on, a busy moment), so it is retried as a failure that may
 * pass, a few times in a row, and never fails the file or its job.
 */
export class EndCheckpointTimedOut extends Error {
  readonly code = "57014";
  constructor(cause: Error, ending = true) {
    super(
      ending
        ? `the checkpoint that ends the file timed out: ${cause.message}`
        : `a chunk timed out before its first line was staged: ${cause.message}`,
      { cause },
    );
  }
}

/**
 * Whether loading failed for a cause that may pass as it is: the database unavailable,
 * a statement that lost to another or timed out (db_errors.ts, `isTransientFailure`), S3
 * throttling, failing on its side (5xx) or timing out, the network to it failing, or a
 * file's bytes stopping mid-way. Such a failure fails no file.
 */
export function transientLoadFailure(error: unknown): boolean {
  // A statement timeout comes back every time for the same work: commitChunk writes such
  // a chunk page by page instead (export_stage.ts), and a page that still times out fails.
  if (error instanceof EndCheckpointTimedOut) return true;
  if (isStatementTimeout(error)) return false;
  // A file whose bytes stopped mid-way, its own re-reads spent: the network, not the file.
  if (error instanceof ExportReadError) return true;
  if (isTransientFailure(error)) return true;
  const e = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode ?? 0;
  return status >= 500 || status === 429 ||
    ["SlowDown", "RequestTimeout", "TimeoutError", "ServiceUnavailable", "InternalError"]
      .includes(e?.name ?? "") ||
    NETWORK_CODES.includes(e?.code ?? "");
}

/**
 * Node's codes of a network that failed on the way to S3 (a name not found, no route)
 * that `isTransientFailure` does not know already (a connection refused, reset, timed
 * out or broken it does: db_errors.ts, `isDatabaseUnavailable`).
 */
const NETWORK_CODES = ["ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"];

/**
 * Whether S3 refused the loader's credentials (403: AccessDenied, an expired or unknown
 * key, a bad signature) or its region setting (a request signed for another region than
 * the bucket's: AuthorizationHeaderMalformed, PermanentRedirect): no retry can cure it,
 * but a fix of the IAM policy, the credentials or EXPORT_BUCKET_REGION can, so the loader
 * stops with its job left running (and its export remembered) rather than fail it.
 */
export function credentialsRefused(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.$metadata?.httpStatusCode === 403 ||
    [
      "AccessDenied",
      "ExpiredToken",
      "InvalidAccessKeyId",
      "SignatureDoesNotMatch",
      "InvalidToken",
      "AllAccessDisabled",
      "AuthorizationHeaderMalformed",
      "PermanentRedirect",
    ].includes(e?.name ?? "");
}
