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
 * {@link whenAdmitted} waits for a place instead, in arrival order (the validator's
 * requests; the webhook's statements, statement_slots.ts).
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

/** The requests waiting for a place at each gate, in arrival order. */
const waiting = new WeakMap<RunGate, (() => void)[]>();

/** How many are waiting for a place at `gate` through {@link whenAdmitted}. */
export function waitingAt(gate: RunGate): number {
  return waiting.get(gate)?.length ?? 0;
}

/**
 * Runs `work` through the gate as soon as it has a place: at once when free, else when
 * a run admitted here ends (in arrival order; a request that finds the place taken again
 * waits again, first in line).
 */
export function whenAdmitted<T>(gate: RunGate, work: () => Promise<T>): Promise<T> {
  const queue = waiting.get(gate) ?? [];
  waiting.set(gate, queue);
  const next = () => queue.shift()?.();
  return new Promise<T>((resolve, reject) => {
    const tryNow = (first: boolean) => {
      const running = queue.length > 0 && first ? undefined : gate.admit(work);
      if (running === undefined) {
        if (first) queue.push(() => tryNow(false));
        else queue.unshift(() => tryNow(false));
        return;
      }
      running.then(resolve, reject).finally(next);
    };
    tryNow(true);
  });
}
