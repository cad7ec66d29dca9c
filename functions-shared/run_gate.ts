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
 * requests), and {@link pausedAt} gives a
 * place up while its run waits on a timer.
 *
 * @module
 */

import { realPacing } from "./scan_pacing.ts";

/**
 * Admits at most `max` runs at a time. Requests that wait for a place
 * ({@link whenAdmitted}, {@link pausedAt}) stand in the gate's own line, and every place
 * given back, however it was taken, goes to the first of them: a run admitted with
 * {@link RunGate.admit} (the validator's re-reads, a backfill's run) hands its place on
 * when it ends, as one admitted through {@link whenAdmitted} does.
 */
export class RunGate {
  #active = 0;
  /** The requests waiting for a place, in arrival order (a paused run goes first). */
  readonly line: (() => void)[] = [];

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`a gate admits 1 or more runs, not ${max}`);
    }
  }

  /** Runs being admitted now. */
  get active(): number {
    return this.#active;
  }

  /** Takes a place if one is free; whether it did. */
  take(): boolean {
    if (this.#active >= this.max) return false;
    this.#active++;
    return true;
  }

  /**
   * Gives back a place taken with {@link take} (or held by an admitted run); the first
   * request in line, if any, is offered it at once.
   */
  give(): void {
    this.#active = Math.max(0, this.#active - 1);
    this.line.shift()?.();
  }

  /**
   * Starts `work` if a place is free and returns its promise, which frees the place when
   * it settles; returns undefined, starting nothing, when the gate is full.
   */
  admit<T>(work: () => Promise<T>): Promise<T> | undefined {
    if (!this.take()) return undefined;
    let running: Promise<T>;
    try {
      running = work();
    } catch (error) {
      this.give();
      throw error;
    }
    return running.finally(() => this.give());
  }
}

/**
 * How many wait for a place at `gate`: requests through {@link whenAdmitted}, and runs
 * back from a pause ({@link pausedAt}) while every place is taken.
 */
export function waitingAt(gate: RunGate): number {
  return gate.line.length;
}

/**
 * Runs `work` through the gate as soon as it has a place: at once when free (and nobody
 * is in line), else when a place is given back (in arrival order; a request that finds
 * the place taken again waits again, first in line).
 */
export function whenAdmitted<T>(gate: RunGate, work: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const tryNow = (first: boolean) => {
      let running: Promise<T> | undefined;
      try {
        running = gate.line.length > 0 && first ? undefined : gate.admit(work);
      } catch (error) {
        // `work` threw before returning its promise: this request fails, not the run
        // whose end gave it the place (it runs inside that run's give()).
        reject(error);
        return;
      }
      if (running === undefined) {
        if (first) gate.line.push(() => tryNow(false));
        else gate.line.unshift(() => tryNow(false));
        return;
      }
      running.then(resolve, reject);
    };
    tryNow(true);
  });
}

/**
 * Waits `ms` without holding a place at `gate`, for a run admitted through
 * {@link whenAdmitted} that waits on a timer (the validator's settle pause,
 * validator_compare.ts): it uses no CPU meanwhile, so the first request in line starts.
 * The run then takes a place again, ahead of the line (it held one), waiting for one to
 * free up if every place is taken.
 */
export async function pausedAt(
  gate: RunGate,
  ms: number,
  sleep: (ms: number) => Promise<void> = realPacing.sleep,
): Promise<void> {
  gate.give();
  await sleep(ms);
  await new Promise<void>((resolve) => {
    const tryTake = () => {
      if (gate.take()) resolve();
      else gate.line.unshift(tryTake);
    };
    tryTake();
  });
}
