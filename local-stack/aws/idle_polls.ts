/**
 * Stream polls of an idle table, answered without DynamoDB Local.
 *
 * The stack's poller reads each open shard every 250 ms, as Lambda's event source
 * mappings poll a shard several times a second. On AWS those polls cost the table's
 * owner nothing. DynamoDB Local, though, spends CPU on every GetRecords in proportion to
 * what its streams hold: 75-85 ms of its CPU for one poll of an idle stream once the
 * report's data set had been loaded, so nine streams polled four times a second kept
 * one of this machine's two cores busy (99 % of it, with nothing written), and a PutItem
 * queued behind the polls took up to 0.6 s (p50 0.1 s) where it took 13-20 ms without
 * them (README, "The live path"). Every test, bench and `npm start` ran on the other core.
 *
 * So the proxy remembers the iterator that an empty answer gave back, for the table (in
 * its database: access key and region) it reads, with the number of writes that table
 * had been sent when that poll was forwarded. A poll of the same table with that iterator
 * is answered with no records and the same iterator (DynamoDB Local would have given a
 * new one) while the table has had no write since and the answer is under `refreshMs`
 * old. A write to the table, once DynamoDB Local has answered it, sends the table's next
 * poll to DynamoDB Local, which then has the write's record. What counts as a write is
 * the proxy's to say (local-stack/aws/proxy.ts): generously, any operation but the reads,
 * and one whose tables it does not read counts for every table. What DynamoDB Local does
 * on its own is seen at the latest `refreshMs` late, never lost: a shard it closes (its
 * rollover), an item its TTL deletes.
 *
 * The same counts tell the stack's poller which shards it need not poll at all
 * ({@link IdlePolls.watch}, local-stack/aws/stream_watch.ts).
 *
 * @module
 */

/** A remembered empty answer: its table's writes when it was asked, and when. */
interface Idle {
  writes: number;
  answeredAt: number;
}

/** A remembered answer's key: the same iterator of another database is another answer. */
const keyOf = (table: string, iterator: string) => `${table}\0${iterator}`;

/**
 * The writes a proxy has counted, as the stack's poller is told them
 * (local-stack/aws/stream_watch.ts): `instance` is new each time the proxy starts, and
 * `version` grows with each write.
 */
export interface WriteCounts {
  instance: string;
  version: number;
  /**
   * Writes begun and answered of each table, by its name in any database (the poller reads
   * the stack's own).
   */
  tables: Record<string, number>;
  /** Writes that may have touched any table. */
  everywhere: number;
}

/** The remembered empty answers of one proxy. */
export class IdlePolls {
  #writes = new Map<string, number>();
  #everywhere = 0;
  #idle = new Map<string, Idle>();
  readonly #instance = crypto.randomUUID();
  #version = 0;
  #byName: Record<string, number> = {};
  #watchedEverywhere = 0;
  #watching = new Set<() => void>();

  /**
   * @param refreshMs the longest an empty answer is given again without DynamoDB Local
   * @param maxIterators how many iterators are remembered (the oldest are forgotten)
   */
  constructor(readonly refreshMs = 10_000, readonly maxIterators = 10_000) {}

  /** The writes sent so far to `table` (a namespaced table name), those to every table included. */
  writesTo(table: string): number {
    return (this.#writes.get(table) ?? 0) + this.#everywhere;
  }

  /** A write to `tables` was answered; with no tables, a write that may touch any table. */
  written(tables: string[]): void {
    if (tables.length === 0) this.#everywhere++;
    for (const table of tables) this.#writes.set(table, (this.#writes.get(table) ?? 0) + 1);
    this.#watched(tables);
  }

  /**
   * A write to `tables` is about to be forwarded: the stack's poller is told at once, so
   * that it polls the tables' shards from its next tick on, not from the tick after the
   * write is answered (the proxy answers with the item's image read back, some
   * milliseconds after DynamoDB Local has the record). Polls answered here are not
   * changed by it: their record is not there yet.
   */
  began(tables: string[]): void {
    this.#watched(tables);
  }

  /** The stack's poller's counts: `tables` changed (none: any table), its watches woken. */
  #watched(tables: string[]): void {
    if (tables.length === 0) this.#watchedEverywhere++;
    for (const table of tables) {
      const name = table.slice(table.lastIndexOf("/") + 1);
      this.#byName[name] = (this.#byName[name] ?? 0) + 1;
    }
    this.#version++;
    for (const wake of this.#watching) wake();
    this.#watching.clear();
  }

  /** What tells this proxy's instance apart: new each time it starts. */
  get instance(): string {
    return this.#instance;
  }

  /** The writes counted so far. */
  counts(): WriteCounts {
    return {
      instance: this.#instance,
      version: this.#version,
      tables: { ...this.#byName },
      everywhere: this.#watchedEverywhere,
    };
  }

  /**
   * The counts once they differ from `seen` (another instance's, or an older version), or
   * after `timeoutMs`, or once `signal` aborts, as they are: a long poll of the stack's
   * poller.
   */
  async watch(
    seen: { instance?: string; version?: number },
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WriteCounts> {
    if (seen.instance === this.#instance && seen.version === this.#version && !signal?.aborted) {
      let wake = () => {};
      const woken = new Promise<void>((resolve) => wake = resolve);
      this.#watching.add(wake);
      const timer = setTimeout(wake, timeoutMs);
      // The watcher gone (its connection closed): no answer to wait for.
      signal?.addEventListener("abort", wake);
      await woken;
      clearTimeout(timer);
      signal?.removeEventListener("abort", wake);
      this.#watching.delete(wake);
    }
    return this.counts();
  }

  /**
   * The iterator to give back with no records when a poll of `table` (a namespaced table
   * name) with `iterator` may be answered here; undefined when it must go to DynamoDB Local.
   */
  answer(table: string, iterator: string, now: number): string | undefined {
    const key = keyOf(table, iterator);
    const idle = this.#idle.get(key);
    if (!idle) return undefined;
    if (idle.writes !== this.writesTo(table) || now - idle.answeredAt >= this.refreshMs) {
      this.#idle.delete(key);
      return undefined;
    }
    return iterator;
  }

  /**
   * DynamoDB Local answered a poll of `table` with no records and `next`, the poll having
   * been forwarded when the table had had `writesBefore` writes.
   */
  answeredEmpty(table: string, next: string, writesBefore: number, now: number): void {
    const key = keyOf(table, next);
    this.#idle.delete(key);
    this.#idle.set(key, { writes: writesBefore, answeredAt: now });
    if (this.#idle.size > this.maxIterators) {
      this.#idle.delete(this.#idle.keys().next().value!);
    }
  }
}
