/**
 * A request's lanes over the one resumable Scan (functions-shared/segment_scan.ts): the
 * import-worker's runs (backfill_worker.ts) and the validator's requests
 * (validator_source.ts) each scan several segments at once, one lane each, and share a
 * stop, so that once one lane finds the request's budget spent the others stop at once
 * and the request hands on.
 *
 * @module
 */

import type { ScanResult } from "./segment_work.ts";

/**
 * A request's lanes (each a `scanSegments` of its own) and their shared stop: once
 * one lane must stop (its budget spent), `stop()` ends the others' waits for a turn
 * (their `stopping`) and `stopped` keeps them from claiming another segment. `settle`
 * waits for every lane, then answers their sum and the first failure, if any.
 */
export class ScanLanes {
  stopped = false;
  readonly stopping: Promise<void>;
  #stop!: () => void;
  #lanes: Promise<ScanResult>[] = [];

  constructor() {
    this.stopping = new Promise<void>((resolve) => (this.#stop = resolve));
  }

  /** Stops every lane at its next wait or check. */
  stop(): void {
    this.stopped = true;
    this.#stop();
  }

  /** Counts a lane started (settled with the others). */
  add(lane: Promise<ScanResult>): Promise<ScanResult> {
    this.#lanes.push(lane);
    return lane;
  }

  /**
   * Every lane's end: their sum (stopped by the budget if one was, else throttled if one
   * was) and the first failure, if any (the others ran to their end).
   */
  async settle(): Promise<{ total: ScanResult; failure?: unknown }> {
    const settled = await Promise.allSettled(this.#lanes);
    const done = settled.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
    const failed = settled.find((r) => r.status === "rejected") as
      | PromiseRejectedResult
      | undefined;
    const total: ScanResult = {
      segmentsFinished: done.reduce((n, r) => n + r.segmentsFinished, 0),
      pages: done.reduce((n, r) => n + r.pages, 0),
      items: done.reduce((n, r) => n + r.items, 0),
      rows: done.reduce((n, r) => n + r.rows, 0),
      resumed: done.reduce((n, r) => n + r.resumed, 0),
      stoppedBy: done.some((r) => r.stoppedBy === "budget")
        ? "budget"
        : done.some((r) => r.stoppedBy === "throttled")
        ? "throttled"
        : "no work",
    };
    const handedOn = done.find((r) => r.handedOn)?.handedOn;
    if (handedOn) total.handedOn = handedOn;
    return failed ? { total, failure: failed.reason } : { total };
  }
}

/**
 * The id a lane of a request holds its segments' leases under: the request's own when it
 * has one lane, else the request's with the lane's number. Two lanes of one request must
 * differ: a lane whose lease lapsed during a slow page, and a lane that claimed the
 * segment after, would both pass the checkpoint's lease check under one id, and the later
 * commit would put the segment's checkpoint behind the earlier's.
 */
export function laneId(worker: string, lane: number, lanes: number): string {
  return lanes > 1 ? `${worker}/${lane + 1}` : worker;
}
