/**
 * How a look of the validator (validator_looks.ts) reads a divergent key again: all its
 * items, read consistently, with the Scan's backoff on throttling and 5xx, and paced to
 * the table's read budget, the run's lease renewed through a long wait.
 *
 * @module
 */

import type { ValidatorDeps } from "./validator_deps.ts";
import type { Item } from "./dynamo_commands.ts";
import type { TableSpec } from "./table_registry.ts";
import type { RowKey } from "./validator_plan.ts";
import { MAX_POINT_READ_PAGES, PartitionTooLarge, pointReadAt } from "./point_reads.ts";
import { realPacing, SCAN_ROUNDS, ScanGaveUp, withBackoff } from "./scan_pacing.ts";

/**
 * How often a look renews the run's lease between its checkpoints (its lease is
 * validation_lease_seconds, 60 by default): a chunk of reads that back off may last longer.
 */
export const RENEW_EVERY_MS = 20_000;

/**
 * A run's lease renewed between reads: `due()` renews it through `renew` once
 * {@link RENEW_EVERY_MS} has passed since the last renewal, `renewed()` notes one made
 * otherwise (a checkpoint holds the lease too). Reads that back off (throttled, 5xx) may
 * add up past the lease between two checkpoints.
 */
export function leaseRenewal(renew: () => Promise<void>) {
  let renewedAt = performance.now();
  return {
    async due(): Promise<void> {
      if (performance.now() - renewedAt < RENEW_EVERY_MS) return;
      await renew();
      renewedAt = performance.now();
    },
    renewed(): void {
      renewedAt = performance.now();
    },
  };
}

/**
 * A key read again that kept failing with an error that may pass (throttled, 5xx), past
 * the Scan's backoff: the look stops there and the run waits for the heartbeat, as a
 * throttled Scan does, instead of failing. Names the run, the table, the key and the cause.
 */
export class ReadAgainThrottled extends Error {
  constructor(message: string, override readonly cause: Error) {
    super(message, { cause });
    this.name = "ReadAgainThrottled";
  }
}

/**
 * A divergent key's items, read consistently, with the Scan's backoff on throttling and
 * 5xx (each after the client's own retries); a read that keeps failing is an error naming
 * the run, the table, the key and the cause.
 */
export async function readAgain(deps: ValidatorDeps, spec: TableSpec, run: number, key: RowKey) {
  const where = `validation run ${run} of ${spec.targetTable}: reading key ${
    JSON.stringify(key)
  } again`;
  try {
    return await withBackoff(
      () => pointReadAt(deps, spec, key, { maxPages: MAX_POINT_READ_PAGES }),
      (error, waitMs) =>
        deps.log?.(
          `${where}: ${error.name}: ${error.message} after the client's retries; trying ` +
            `again in ${waitMs} ms`,
        ),
      deps.pacing ?? realPacing,
    );
  } catch (error) {
    if (error instanceof PartitionTooLarge) throw error;
    if (error instanceof ScanGaveUp) {
      throw new ReadAgainThrottled(
        `${where} failed ${SCAN_ROUNDS} times in a row: ${error.cause.name}: ${error.cause.message}`,
        error.cause,
      );
    }
    const cause = error as Error;
    throw new Error(`${where} failed: ${cause.name}: ${cause.message}`, { cause });
  }
}

/**
 * Paces a look's reads to the table's read budget (`maxRcuPerSecond`, the one its Scan
 * keeps to; none when unset): after each key, waits until the read units spent in this
 * request fit the budget. A read's units are counted as DynamoDB charges a consistent
 * read, 1 per 4 KB of what it returned and at least 1, with each item's size taken as its
 * JSON's, which is larger than DynamoDB's measure: the pace errs on the slow side.
 */
export function lookPace(
  deps: ValidatorDeps,
  renew: () => Promise<void>,
): (items: Item[]) => Promise<void> {
  const rate = deps.maxRcuPerSecond;
  if (rate === undefined || !(rate > 0)) return () => Promise.resolve();
  const clock = deps.pacing ?? realPacing;
  const startedAt = clock.now();
  let units = 0;
  return async (items) => {
    const bytes = items.reduce((sum, item) => sum + JSON.stringify(item).length, 0);
    units += Math.max(1, Math.ceil(bytes / 4096));
    // A long wait (a collapsed key's large partition at a small budget) holds the run's
    // lease: renewed between slices of at most RENEW_EVERY_MS.
    for (;;) {
      const waitMs = (units / rate) * 1000 - (clock.now() - startedAt);
      if (waitMs <= 0) return;
      await clock.sleep(Math.min(waitMs, RENEW_EVERY_MS));
      if (waitMs > RENEW_EVERY_MS) await renew();
    }
  };
}
