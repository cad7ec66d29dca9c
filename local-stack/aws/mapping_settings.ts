/**
 * The settings of the local stack's event source mappings (event_source_mapping.ts): the
 * deployed mappings' own, and a setting given in the environment checked against the
 * range AWS allows for it.
 *
 * @module
 */

/**
 * The settings the deployed mappings have (infrastructure/terraform/modules/stream-sync,
 * a test keeps the two equal), so the local stack behaves as production does.
 */
export const DEPLOYED_MAPPING = {
  batchSize: 10,
  /**
   * -1: a failing batch is "retried until the record expires"
   * (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html), that is until
   * it passes `maxRecordAgeS`: an hour of the webhook down loses nothing.
   */
  maxRetryAttempts: -1,
  maxRecordAgeS: 3600,
  bisectBatchOnFunctionError: true,
  functionTimeoutMs: 60_000,
  /**
   * The function's `reserved_concurrent_executions`, invocations at once per region: none
   * (undefined), as deployed. Each shard then holds one batch in flight, as on AWS.
   */
  reservedConcurrency: undefined as number | undefined,
} as const;

/**
 * A mapping setting as a whole number within AWS's range for it (`allowNone`: -1 too),
 * or a one-line error naming it; `fallback` when unset. Ranges: CreateEventSourceMapping
 * in AWS's Lambda API reference (BatchSize 1-10,000 for DynamoDB Streams,
 * MaximumRetryAttempts -1 to 10,000, MaximumRecordAgeInSeconds -1 or 60-604,800).
 */
export function mappingSetting(
  name: string,
  text: string | undefined,
  fallback: number,
  range: { min: number; max: number; allowNone?: boolean },
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  const ok = text.trim() !== "" && Number.isInteger(n) &&
    ((n >= range.min && n <= range.max) || (range.allowNone === true && n === -1));
  if (!ok) {
    throw new Error(
      `${name} must be a whole number from ${range.min} to ${range.max}${
        range.allowNone ? " or -1 (no limit)" : ""
      }, as AWS allows, not ${JSON.stringify(text)}`,
    );
  }
  return n;
}
