/**
 * The CPU that the pages in flight of every request in one isolate are still expected to
 * cost. The Edge Runtime counts CPU per isolate, not per request, and sends an isolate
 * several requests at once (its `per_worker` policy), so a request that starts a page
 * must count the other requests' pages in flight as well as its own: each request's
 * pages kept within the limit on their own could pass it together.
 *
 * Each request adds its own estimate (a function, read whenever asked, so that it follows
 * the request's pages and what they cost) and removes it when it ends, whatever ended it;
 * it says when one of its pages ends, so that a request waiting for room goes on.
 *
 * @module
 */

/** The pages in flight of an isolate's requests, as each request estimates its own. */
export class IsolatePages {
  #estimates = new Set<() => number>();
  #waiting: (() => void)[] = [];

  /**
   * Adds a request's estimate of what its pages in flight will still cost, in ms of CPU;
   * returns the function that removes it (once the request's pages have all ended or
   * been given up; calling it again does nothing).
   */
  add(expectedMs: () => number): () => void {
    const estimate = () => expectedMs();
    this.#estimates.add(estimate);
    return () => {
      this.#estimates.delete(estimate);
    };
  }

  /** What the pages in flight of every request are expected to cost, in ms of CPU. */
  expectedMs(): number {
    let total = 0;
    for (const estimate of this.#estimates) total += estimate();
    return total;
  }

  /** A page of some request ended (written, given up or failed): wakes {@link oneEnded}. */
  pageEnded(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves when a page of any request ends ({@link pageEnded}). */
  oneEnded(): Promise<void> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /**
   * Waits for room for a page and takes it in the same step: `reserve` is called at once
   * when `hasRoom()` holds (and nothing stopped the wait), else after a page of some
   * request ends and `hasRoom()` holds then, checked and taken without a pause in between,
   * so that two waiters woken by one page's end cannot both take the room it freed. Gives
   * up, reserving nothing, once `stopped()`, or once no room can come (`mayFree()` false:
   * no page in flight, or the isolate's budget spent). Resolves whether it reserved.
   */
  async reserveWhenRoom(
    hasRoom: () => boolean,
    mayFree: () => boolean,
    stopped: () => boolean,
    reserve: () => void,
  ): Promise<boolean> {
    while (!stopped()) {
      if (hasRoom()) {
        reserve();
        return true;
      }
      if (!mayFree()) return false;
      await this.oneEnded();
    }
    return false;
  }

  /** How many requests have an estimate here. */
  get requests(): number {
    return this.#estimates.size;
  }
}
