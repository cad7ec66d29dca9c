/**
 * At most as many statements in flight on a connection pool as it has connections, the
 * others waiting their turn, in order.
 *
 * Why: postgres.js pipelines a statement behind another on a busy connection once every
 * connection of its pool is busy, unless the statement in front carries parameters
 * (then it waits for their types). Through PgBouncer in transaction mode, the answer to a
 * statement pipelined behind one without parameters is lost: PgBouncer hands the server
 * connection back to its pool at the first statement's end, the second's answer reaches
 * no client ("got packet ... from server when not linked" in its log), and its caller
 * waits for ever. The webhook's one-round-trip statement has no parameters
 * (webhook_apply.ts), so its calls go through these slots, sized to the pool.
 *
 * @module
 */

/** A counting semaphore: {@link run} waits for a free slot. */
export class StatementSlots {
  #free: number;
  #waiting: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`statement slots must be 1 or more, not ${size}`);
    }
    this.#free = size;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `work` once a slot is free, and frees it when `work` settles. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) {
      this.#free--;
    } else {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

const bySql = new WeakMap<object, StatementSlots>();

/**
 * The slots of a postgres.js pool, sized to its `max` connections (made once per pool);
 * undefined for an object with no such option (a test's fake).
 */
export function statementSlotsOf(sql: object): StatementSlots | undefined {
  const max = (sql as { options?: { max?: unknown } }).options?.max;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1) return undefined;
  let slots = bySql.get(sql);
  if (!slots) bySql.set(sql, slots = new StatementSlots(max));
  return slots;
}
