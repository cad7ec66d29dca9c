/**
 * How the import-worker reads DynamoDB without hurting it (functions-shared/backfill_worker.ts):
 * a pace in read capacity units per second, and bounded retries with full jitter for the
 * errors a busy or unwell table answers.
 *
 * Pacing: each Scan asks for `ReturnConsumedCapacity: "TOTAL"`, and after a page that cost
 * U units the next page waits until U ÷ budget seconds have passed since the last one. The
 * budget is a table's (IMPORT_WORKER_MAX_RCU_PER_SECOND, functions-shared/settings.ts)
 * divided by the job's segments, since each parallel segment runs in its own request.
 * The backfill paces by its job's read ledger in Postgres instead (`ReadTurns` in
 * segment_scan.ts, `sync.backfill_read_turn`): the same rule, one budget for the table
 * shared by every request; `ReadPacer` paces the validator's segments.
 *
 * Retries: the SDK client (functions-shared/dynamo_client.ts) already makes up to 5
 * attempts for throttling (ProvisionedThroughputExceededException, ThrottlingException)
 * and transient (HTTP 5xx) errors, waiting a full-jitter exponential backoff between them
 * (random × min(base × 2^i, 20 s); base 1 s for throttling, 50 ms otherwise) while its
 * retry quota lasts. AWS: "reduce the frequency of requests and use exponential backoff"
 * (Developer Guide, "Error handling with DynamoDB", error retries and exponential
 * backoff). When those are spent, `withBackoff` waits a full-jitter backoff of its own
 * (random × min(1 s × 2^i, 10 s)) and tries again, `SCAN_ROUNDS` times at most; then it
 * gives up with `ScanGaveUp`, which names the cause, and the worker releases the segment.
 *
 * @module
 */

/** Rounds of the SDK's own attempts before a Scan gives up. */
export const SCAN_ROUNDS = 3;

/** The errors worth retrying: throttling and the service's own failures. */
export const RETRYABLE_ERRORS: ReadonlySet<string> = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
]);

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

/** The read budget of one segment: the table's, shared by the job's segments. */
export function segmentBudget(tablePerSecond: number, totalSegments: number): number {
  return tablePerSecond / Math.max(1, totalSegments);
}

/** Spaces pages so that a segment's reads stay within its budget. */
export class ReadPacer {
  #next = -Infinity;
  #lastAt = -Infinity;
  #lastUnits = 0;
  constructor(public perSecond: number, readonly deps: PacingDeps = realPacing) {}

  /**
   * Raises (never lowers) the budget: the segment's share grows when others of its job
   * are done (segmentBudget over the segments left). The last read is booked again at
   * the new budget.
   */
  raiseTo(perSecond: number): void {
    if (perSecond <= this.perSecond) return;
    this.perSecond = perSecond;
    if (this.#lastUnits > 0) {
      this.#next = this.#lastAt + (this.#lastUnits / this.perSecond) * 1000;
    }
  }

  /** Waits until the next read may start. */
  async wait(): Promise<void> {
    const delay = this.#next - this.deps.now();
    if (delay > 0) await this.deps.sleep(delay);
  }

  /**
   * Books what a read cost (its ConsumedCapacity.CapacityUnits), from when it started
   * (`startedAt`, on this pacer's clock; now by default): the next read may start
   * units / perSecond after this one started, as a token bucket spends its tokens when a
   * request arrives. Booked from its end instead, every page also waited out the read's
   * own latency, and a validator's segment (a Scan, then the comparison) read at about
   * two thirds of its share of the budget.
   */
  spent(units: number, startedAt = this.deps.now()): void {
    this.#lastAt = Math.max(this.#next, startedAt);
    this.#lastUnits = units;
    this.#next = this.#lastAt + (units / this.perSecond) * 1000;
  }
}

/** A Scan that kept failing with a retryable error; names the cause. */
export class ScanGaveUp extends Error {
  constructor(override readonly cause: Error, rounds: number) {
    super(
      `Scan failed ${rounds} times in a row (each after the SDK's own retries): ` +
        `${cause.name}: ${cause.message}`,
    );
    this.name = "ScanGaveUp";
  }
}

/**
 * Calls `read` until it succeeds, a non-retryable error comes (thrown as it is), or
 * `SCAN_ROUNDS` rounds failed (ScanGaveUp). `onRetry` hears each wait.
 */
export async function withBackoff<T>(
  read: () => Promise<T>,
  onRetry: (error: Error, waitMs: number) => void,
  deps: PacingDeps = realPacing,
  rounds = SCAN_ROUNDS,
): Promise<T> {
  for (let round = 0;; round++) {
    try {
      return await read();
    } catch (error) {
      const e = error as Error;
      if (!RETRYABLE_ERRORS.has(e.name)) throw e;
      if (round + 1 >= rounds) throw new ScanGaveUp(e, rounds);
      const waitMs = Math.floor(deps.random() * Math.min(10_000, 1000 * 2 ** round));
      onRetry(e, waitMs);
      await deps.sleep(waitMs);
    }
  }
}
