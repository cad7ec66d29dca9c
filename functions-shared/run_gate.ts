/**
 * How many runs of a function one isolate takes on at once. The Edge Runtime counts CPU
 * per isolate and sends it several requests at a time (its `per_worker` policy), so the
 * CPU of every run in an isolate adds up: a run checks the isolate's budget before each
 * page, but the pages that the other runs have in flight at that moment still count. A
 * backfill's fan-out (each run wakes another while segments wait) can land fifteen
 * requests on one isolate, whose pages in flight then pass the 2 s hard limit together
 * and the isolate is killed, leases and all. The gate keeps the runs of an isolate to a
 * few; a request beyond them answers at once and starts nothing (the runs already in
 * the isolate go on, and hand on to a fresh isolate when the budget is spent).
 *
 * @module
 */

/** Admits at most `max` runs at a time. */
export class RunGate {
  #active = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`a gate admits 1 or more runs, not ${max}`);
    }
  }

  /** Runs being admitted now. */
  get active(): number {
    return this.#active;
  }

  /**
   * Starts `work` if a place is free and returns its promise, which frees the place when
   * it settles; returns undefined, starting nothing, when the gate is full.
   */
  admit<T>(work: () => Promise<T>): Promise<T> | undefined {
    if (this.#active >= this.max) return undefined;
    this.#active++;
    let running: Promise<T>;
    try {
      running = work();
    } catch (error) {
      this.#active--;
      throw error;
    }
    return running.finally(() => this.#active--);
  }
}
