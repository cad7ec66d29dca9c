/**
 * A read budget for the benchmarks' raw limits: the same read units a second per table
 * as the function they are compared with paces itself to, so that the baseline reads the
 * tables as the function may, not with the applications' capacity.
 *
 * @module
 */

/**
 * A table's read budget shared by all of its segments, as tightly as a reader in one
 * process can: reads take their turn one after another (each booked at the cost of the
 * table's last page, corrected when its own cost is known), so the table reads at its
 * budget whichever segments are left. After a pause it catches up on `catchUpMs` of the
 * budget at most, as the functions' read ledger does (`backfill_catch_up_seconds`, 1 s):
 * paced strictly, the baseline lost what the function may read, and was no limit.
 */
export class TablePacer {
  #next = -Infinity;
  #estimate = 1;
  #turn: Promise<void> = Promise.resolve();
  constructor(readonly perSecond: number, readonly catchUpMs = 1000) {}

  /** Waits for the next read's turn; returns the units booked for it. */
  async take(): Promise<number> {
    const booked = this.#turn.then(async () => {
      const delay = this.#next - performance.now();
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      const units = this.#estimate;
      const from = Math.max(this.#next, performance.now() - this.catchUpMs);
      this.#next = from + (units / this.perSecond) * 1000;
      return units;
    });
    this.#turn = booked.then(() => {});
    return await booked;
  }

  /** Corrects a read's booking by what it cost. */
  settle(booked: number, units: number): void {
    this.#next += ((units - booked) / this.perSecond) * 1000;
    this.#estimate = units;
  }
}
