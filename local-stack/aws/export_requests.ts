/**
 * What an ExportTableToPointInTime request must be before the export stand-in
 * (exports.ts) starts an export, as AWS's API reference says
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ExportTableToPointInTime.html):
 * its format and type, its bucket's name, its ExportTime within the table's PITR window,
 * and its ClientToken, which makes it idempotent.
 *
 * @module
 */

type Body = Record<string, unknown>;

/** How long a ClientToken keeps an export request idempotent after it completed: 8 hours. */
export const TOKEN_WINDOW_MS = 8 * 3600_000;

/** The parameters of ExportTableToPointInTime a ClientToken holds to (all but itself). */
const ASKED = [
  "TableArn",
  "S3Bucket",
  "S3Prefix",
  "S3BucketOwner",
  "S3SseAlgorithm",
  "S3SseKmsKeyId",
  "ExportFormat",
  "ExportType",
  "ExportTime",
  "IncrementalExportSpecification",
];

/** A request's parameters, as sent (one left out is null), for comparing two requests. */
export function askedOf(body: Body): Record<string, string> {
  return Object.fromEntries(ASKED.map((name) => [name, JSON.stringify(body[name] ?? null)]));
}

/**
 * Why a request is refused with a ValidationException before anything else is looked at,
 * if it is: only full exports in DynamoDB JSON are written here (ION or an incremental
 * export is refused), and the bucket's name must match the API's own pattern and length
 * (at most 255; the API reference, ExportTableToPointInTime, S3Bucket).
 */
export function exportRequestProblem(body: Body): string | undefined {
  if (
    (body.ExportFormat ?? "DYNAMODB_JSON") !== "DYNAMODB_JSON" ||
    (body.ExportType ?? "FULL_EXPORT") !== "FULL_EXPORT"
  ) {
    return "the local stack writes only full exports in DYNAMODB_JSON (ExportFormat, ExportType)";
  }
  if (
    typeof body.S3Bucket !== "string" || body.S3Bucket.length > 255 ||
    !/^[a-z0-9A-Z]+[.\-\w]*[a-z0-9A-Z]+$/.test(body.S3Bucket)
  ) {
    return `S3Bucket ${JSON.stringify(body.S3Bucket)} is not a bucket name`;
  }
  return undefined;
}

/**
 * Why a request's ExportTime is refused with an InvalidExportTimeException, if it is:
 * before PITR was turned on (`pitrSince`) or in the future; or more than a second in the
 * past, which the local stack cannot export (it keeps no table's past beyond the
 * export window). Undefined when it leaves ExportTime out (the present).
 */
export function exportTimeProblem(body: Body, pitrSince: number, now: number): string | undefined {
  if (body.ExportTime === undefined) return undefined;
  const at = Number(body.ExportTime) * 1000;
  if (!(at >= pitrSince) || at > now) return "ExportTime is outside the table's PITR window";
  if (at < now - 1000) return "the local stack exports only the present: leave ExportTime out";
  return undefined;
}

/** An export as its ClientToken is matched: its description, outcome and request. */
export interface TokenHolder {
  description: Body;
  outcome?: Body;
  asked: Record<string, string>;
}

/**
 * The export an earlier request with the same ClientToken started, among `exports`,
 * within 8 hours after it completed; or the ImportConflictException's message when that
 * request asked for anything else ("the same client token but a change in other
 * parameters"); undefined when there is none.
 */
export function sameToken<T extends TokenHolder>(
  exports: Iterable<T>,
  body: Body,
  now: number,
): { same: T } | { conflict: string } | undefined {
  if (body.ClientToken === undefined) return undefined;
  for (const state of exports) {
    const endedAt = Number(state.outcome?.EndTime ?? Infinity) * 1000;
    if (state.description.ClientToken !== body.ClientToken) continue;
    if (endedAt + TOKEN_WINDOW_MS <= now) continue;
    const asked = askedOf(body);
    const differs = ASKED.find((name) => asked[name] !== state.asked[name]);
    if (!differs) return { same: state };
    return {
      conflict:
        `ClientToken ${body.ClientToken} was used within the last 8 hours with another ${differs}`,
    };
  }
  return undefined;
}
