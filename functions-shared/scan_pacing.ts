/**
 * How the backfill and the validator read DynamoDB without hurting it (segment_scan.ts): a
 * pace in read capacity units per second, and bounded retries with full jitter for the
 * errors a busy or unwell table answers.
 *
 * Pacing: each Scan asks for `ReturnConsumedCapacity: "TOTAL"`, and a read that cost U
 * units holds the next one back U ÷ budget seconds, the budget being a table's
 * (IMPORT_WORKER_MAX_RCU_PER_SECOND, VALIDATOR_MAX_RCU_PER_SECOND, functions-shared/settings.ts).
 * The backfill and the validator both keep that rule in their job's read ledger in
 * Postgres (read_turns.ts, `sync.backfill_read_turn`): one budget for the table, shared
 * by every segment in flight in every request. This module keeps the clock and the retries.
 *
 * Retries: the client (functions-shared/dynamo_http.ts) already makes up to 5 attempts
 * for throttling (ProvisionedThroughputExceededException, ThrottlingException) and
 * transient (HTTP 5xx, no answer) errors, waiting a full-jitter exponential backoff
 * between them (random × min(base × 2^i, 20 s); base 1 s for throttling, 25 ms otherwise)
 * while its retry quota lasts. AWS: "reduce the frequency of requests and use exponential backoff"
 * (Developer Guide, "Error handling with DynamoDB", error retries and exponential
 * backoff). When those are spent, `withBackoff` waits a full-jitter backoff of its own
 * (random × min(1 s × 2^i, 10 s)) and tries again, `SCAN_ROUNDS` times at most; then it
 * gives up with `ScanGaveUp`, which names the cause, and the worker releases the segment.
 *
 * @module
 */

import { isRetryable, retryKind } from "./dynamo_errors.ts";

/** Rounds of the client's own attempts before a Scan gives up. */
export const SCAN_ROUNDS = 3;

/** Clock and randomness, replaceable in tests. */
export interface PacingDeps {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

/** The real clock. */
export const realPacing: PacingDeps = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

/**
 * Whether a read's error may pass if tried again (throttled, a 5xx, the network): the
 * client's own classification (dynamo_errors.ts); an error of another source (a test's
 * fake) by its name alone.
 */
export function isTransientRead(error: Error): boolean {
  return isRetryable(error) || retryKind(error.name, 0, false) !== "no";
}

/** A Scan that kept failing with a retryable error; names the cause. */
export class ScanGaveUp extends Error {
  constructor(override readonly cause: Error, rounds: number) {
    super(
      `Scan failed ${rounds} times in a row (each after the client's own retries): ` +
        `${cause.name}: ${cause.message}`,
    );
    this.name = "ScanGaveUp";
  }
}

/**
 * Calls `read` until it succeeds, a non-retryable error comes (thrown as it is), or
 * `SCAN_ROUNDS` rounds failed (ScanGaveUp). `onRetry` hears each wait, and is awaited
 * before it (a segment holds its lease there: a throttled Scan's rounds outlast it).
 */
export async function withBackoff<T>(
  read: () => Promise<T>,
  onRetry: (error: Error, waitMs: number) => void | Promise<void>,
  deps: PacingDeps = realPacing,
  rounds = SCAN_ROUNDS,
): Promise<T> {
  for (let round = 0;; round++) {
    try {
      return await read();
    } catch (error) {
      const e = error as Error;
      if (!isTransientRead(e)) throw e;
      if (round + 1 >= rounds) throw new ScanGaveUp(e, rounds);
      const waitMs = Math.floor(deps.random() * Math.min(10_000, 1000 * 2 ** round));
      await onRetry(e, waitMs);
      await deps.sleep(waitMs);
    }
  }
}
