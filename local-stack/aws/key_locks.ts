/**
 * One write of a key at a time through the DynamoDB proxy (local-stack/aws/proxy.ts), so
 * that the images it reads before and after a write are that write's own
 * (local-stack/aws/stream_times.ts).
 *
 * @module
 */

/** Serialises the writes of each key: one write of a key passes the proxy at a time. */
export class KeyLocks {
  #tails = new Map<string, Promise<void>>();

  /** Waits until every id is free, takes them (in sorted order: no deadlock); returns the release. */
  async lock(ids: string[]): Promise<() => void> {
    const releases: (() => void)[] = [];
    for (const id of [...new Set(ids)].sort()) {
      const previous = this.#tails.get(id) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((resolve) => release = resolve);
      const tail = previous.then(() => mine);
      this.#tails.set(id, tail);
      await previous;
      releases.push(() => {
        release();
        if (this.#tails.get(id) === tail) this.#tails.delete(id);
      });
    }
    return () => releases.forEach((release) => release());
  }

  /** How many ids are held or awaited (for tests). */
  size(): number {
    return this.#tails.size;
  }
}
