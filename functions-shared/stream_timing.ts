/**
 * The times the lost-record check (stream_check_run.ts, stream_verdict.ts) relies on:
 * how long DynamoDB Streams keeps a record, how far apart two checks may be, how long a
 * record may wait undelivered, and when a waiting record counts as given up by Lambda's
 * mapping.
 *
 * @module
 */

/** The timing the check relies on. */
export interface CheckTiming {
  now: number;
  /** How long the stream keeps a record for sure: 24 h on AWS. */
  retentionMs: number;
  /** The longest gap between two runs that the check vouches across. */
  maxIntervalMs: number;
  /**
   * How long a record may wait, with nothing of its stream applied since, before the
   * stream counts as undelivered: {@link DELIVERY_LAG_LIMIT_MS}.
   */
  lagLimitMs: number;
}

/** 24 hours, DynamoDB Streams' retention. */
export const STREAM_RETENTION_MS = 24 * 3600_000;
/** The job runs hourly; two missed ticks are tolerated. */
export const MAX_CHECK_INTERVAL_MS = 3 * 3600_000;
/**
 * How much later than a check's `now` its reads may come: a run's wall budget (60 s) and
 * the skew of this function's clock from DynamoDB's, with room. A record just short of the at-risk
 * line at `now` is read up to this much older, and the next read may be a whole interval
 * after that.
 */
export const READ_MARGIN_MS = 5 * 60_000;

/**
 * The line before which a record not applied yet may be trimmed before the next check:
 * the stream's retention less the longest interval between checks and the read margin.
 */
export function atRiskLine(now: number, retentionMs: number, maxIntervalMs: number): number {
  return now - (retentionMs - maxIntervalMs - READ_MARGIN_MS);
}
/**
 * Two hours: how long a record may wait, unapplied, with nothing of its stream applied
 * since, before the check takes it that nothing delivers the stream. A mapping that
 * delivers applies later records within its maximum record age (an hour as deployed:
 * infrastructure/terraform/modules/stream-sync), giving a failing batch up to its
 * on-failure queue; a dead letter of the webhook's counts as applied.
 */
export const DELIVERY_LAG_LIMIT_MS = 2 * 3600_000;

/**
 * The longest a mapping that delivers the stream takes to apply some record of it, or to
 * give the waiting one up to its on-failure queue: its maximum record age, an hour as
 * deployed (infrastructure/terraform/modules/stream-sync). The undelivered rule asks about
 * at least this long: runs that hand on follow each other within seconds, and a stream
 * delivered with a lag may apply nothing in those.
 */
export const MAPPING_MAX_RECORD_AGE_MS = 3600_000;

/**
 * How old an unapplied record must be, with a record after it in its shard applied, to be
 * taken as given up by the mapping: its maximum record age (after which Lambda discards a
 * record, "MaximumRecordAgeInSeconds",
 * https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html) and 20 minutes:
 * an invocation begun just before the record came of age may run to Lambda's longest
 * timeout (15 minutes) and its request reach the webhook after the mapping went on, and
 * the creation time is rounded down.
 */
export const PASSED_OVER_AFTER_MS = MAPPING_MAX_RECORD_AGE_MS + 20 * 60_000;
