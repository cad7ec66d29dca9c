/**
 * An import-worker isolate's pages in flight, what a page costs it, and how many items
 * the next page may read. The Edge Runtime counts CPU per isolate, not per request (1 s
 * soft: retired; 2 s hard: killed; local-stack/supabase/edge_limits.ts), and an isolate
 * runs several of the worker's runs at once, so a run that starts a page must count what
 * the pages of every run still in flight will cost (backfill_worker.ts).
 *
 * A page that does not fit whole may fit smaller. An estimate that runs ahead of the real
 * CPU (cpu_meter.ts) leaves a fresh request about 500 ms of the ceiling under the hard
 * limit, and a page of 1 MB of visitors can cost the estimate more than that: before, the
 * run found no room, handed on, and the runtime sent the next request to the same isolate
 * (not yet retired), which found no room either, until the hand-ons' own CPU got it
 * retired (`npm start`: 67 requests of one isolate in 5 s, one page; every backfill of
 * the function stood still meanwhile). Now, when nothing is in flight, the page reads as
 * many items (DynamoDB Scan's `Limit`) as the room holds at what this isolate measured an
 * item of the table to cost: a fresh request reads, unless its isolate is within
 * {@link SMALLEST_PAGE_ROOM_MS} of the ceiling.
 *
 * @module
 */

/**
 * The CPU a page is expected to cost before this isolate has measured one, in ms: a cold
 * visitors page costs about 190 ms. With eight runs an isolate, at 150 its eight first
 * pages all fitted under the ceiling (350 ms of boot + 8 × 150) while they could cost it
 * about 1,900; at 200 six start at once, then the measured cost decides. (At 250, five:
 * `npm start`'s visitors' backfill took 31.9 and 32.9 s, against 28.0–30.1 s at 150.)
 */
export const FIRST_PAGE_CPU_MS = 200;

/**
 * The least room, in ms of the meter, in which a page smaller than a whole one is read:
 * below it the isolate is at its ceiling, and the run hands on.
 */
export const SMALLEST_PAGE_ROOM_MS = 50;

/**
 * The most items of a page of a table this isolate has not yet mapped, when a whole page
 * does not fit: a small page that measures what an item of the table costs. It is cut
 * further when the room holds fewer of the page size's items at the isolate's cost per
 * page. A Scan's page stops at 1 MB whatever its `Limit`: 50 items of the registry's
 * largest (visitors, about 2.5 KB each) are about an eighth of a page.
 */
export const PROBE_PAGE_ITEMS = 50;

/** A page that ended, as the worker saw it. */
export interface EndedPage {
  table: string;
  /** The items it was let read (its Scan's `Limit`). */
  limit: number;
  /** The claim's page size: a page let read this many is whole. */
  pageSize: number;
  /** Once written: the items it read, and what mapping them cost in ms of the meter. */
  mapped?: { items: number; ms: number };
}

/** What the isolate's pages of one table cost when mapped. */
interface TableCost {
  items: number;
  mappedMs: number;
  /** The most items a whole page of it held (undefined until one was mapped). */
  wholeItems?: number;
}

/**
 * An isolate's pages in flight and what a page costs it: the CPU used from the first
 * page's start, over the pages ended (every run's work in the isolate after its boot, on
 * the safe side; a page smaller than a whole one counts as the pages' worth of CPU it
 * cost), and, per table, what mapping an item cost and the most items a whole page held.
 */
export class PagesInFlight {
  #inFlight = 0;
  #ended = 0;
  #firstStartMs: number | undefined;
  #lastEndMs = 0;
  #waiting: (() => void)[] = [];
  #pastListeners = new Set<{ budgetMs: number; notify: () => void }>();
  #tables = new Map<string, TableCost>();
  #mappedMs = 0;

  /** A page passed the budget check at `cpuMs` of the isolate's CPU. */
  begin(cpuMs: number): void {
    this.#inFlight++;
    this.#firstStartMs ??= cpuMs;
  }

  /**
   * A page ended (written, or failed) at `cpuMs`. With `page`, what it mapped is counted
   * for its table, and a page let read fewer items than a whole one counts as the pages'
   * worth of CPU its items cost (at the table's cost of an item), so that small pages
   * leave the cost of a page as it was: neither cheaper, nor dearer.
   */
  end(cpuMs: number, page?: EndedPage): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    this.#ended += page ? this.#share(page) : 1;
    this.#lastEndMs = Math.max(this.#lastEndMs, cpuMs);
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
    for (const listener of [...this.#pastListeners]) {
      if (cpuMs < listener.budgetMs) continue;
      this.#pastListeners.delete(listener);
      listener.notify();
    }
  }

  /** Counts what `page` mapped; returns how many pages' worth of CPU it was. */
  #share(page: EndedPage): number {
    const whole = page.limit >= page.pageSize;
    // A small page's CPU: its mapping, scaled by the pages' work the mapping does not show,
    // both as they were before it.
    const { items, ms } = page.mapped ?? { items: 0, ms: 0 };
    const pagesWorth = ms * this.#unseen() / this.perPageMs();
    // A step the meter saw cost nothing says nothing of an item's cost: not counted.
    if (items > 0 && ms > 0) {
      const cost = this.#tables.get(page.table) ?? { items: 0, mappedMs: 0 };
      cost.items += items;
      cost.mappedMs += ms;
      if (whole) cost.wholeItems = Math.max(cost.wholeItems ?? 0, items);
      this.#tables.set(page.table, cost);
      this.#mappedMs += ms;
    }
    if (whole) return 1;
    // A small page that wrote nothing (it failed) counts as its share of the page size.
    return items > 0 && ms > 0 ? pagesWorth : page.limit / page.pageSize;
  }

  /**
   * Calls `notify` once, when a page of any run of the isolate ends with the isolate's CPU
   * at `budgetMs` or past it (not for a page that ended before); returns a function that
   * cancels it. A run waiting for its read's turn is then stopped at once, rather than at
   * its turn: the isolate's other runs went on booking turns meanwhile, and every run that
   * found the budget spent only when its own turn came left the table unread for that
   * turn, then queued its successor's first read behind the others (about 4 s lost each
   * time an isolate was spent, with four runs in it).
   */
  onCpuPast(budgetMs: number, notify: () => void): () => void {
    const listener = { budgetMs, notify };
    this.#pastListeners.add(listener);
    return () => this.#pastListeners.delete(listener);
  }

  /** Resolves when a page in flight ends (at once when none is in flight). */
  oneEnded(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** The CPU a page costs, as measured so far (or {@link FIRST_PAGE_CPU_MS}). */
  perPageMs(): number {
    if (this.#ended === 0 || this.#firstStartMs === undefined) return FIRST_PAGE_CPU_MS;
    return Math.max(1, (this.#lastEndMs - this.#firstStartMs) / this.#ended);
  }

  /** The CPU the pages in flight are still expected to use. */
  expectedMs(): number {
    return this.#inFlight * this.perPageMs();
  }

  /**
   * How many items of `table` the next page may read with `roomMs` of CPU left under the
   * ceiling (the pages in flight already counted): `pageSize` when a whole page fits
   * ({@link wholePageMs});
   * while another page is in flight, 0 (the run waits for it, or hands on); else a page
   * sized to the room, at what an item of the table cost this isolate, or a probe of at
   * most {@link PROBE_PAGE_ITEMS} when it has mapped none; 0 with less than
   * {@link SMALLEST_PAGE_ROOM_MS} of room (or when not one item fits).
   */
  pageItems(table: string, pageSize: number, roomMs: number): number {
    const perPageMs = this.perPageMs();
    if (roomMs > this.wholePageMs(table)) return pageSize;
    if (this.#inFlight > 0 || roomMs < SMALLEST_PAGE_ROOM_MS) return 0;
    const itemMs = this.itemMs(table);
    const items = itemMs === undefined
      ? Math.min(PROBE_PAGE_ITEMS, Math.floor(pageSize * roomMs / perPageMs))
      : Math.floor(roomMs / itemMs);
    return Math.max(0, Math.min(pageSize, items));
  }

  /**
   * What a whole page of `table` is expected to cost this isolate: the cost of a page
   * (every table's), or, when more, the most items a whole page of it held at what an item
   * of it cost (a page of visitors costs several of actions, whose pages may have set the
   * cost of a page).
   */
  wholePageMs(table: string): number {
    const wholeItems = this.#tables.get(table)?.wholeItems ?? 0;
    return Math.max(this.perPageMs(), wholeItems * (this.itemMs(table) ?? 0));
  }

  /**
   * What an item of `table` costs this isolate, in ms of the meter: its mapping as
   * measured, scaled up by the pages' work that the mapping does not show. Undefined
   * before a page of it was mapped.
   */
  itemMs(table: string): number | undefined {
    const cost = this.#tables.get(table);
    if (!cost) return undefined;
    return (cost.mappedMs / cost.items) * this.#unseen();
  }

  /**
   * The CPU from the first page's start to the last one's end over all that the pages'
   * mappings cost: what a page costs for each ms of its mapping (at least 1; 1 before
   * any was mapped).
   */
  #unseen(): number {
    if (this.#mappedMs === 0) return 1;
    const pagesMs = this.#lastEndMs - (this.#firstStartMs ?? this.#lastEndMs);
    return Math.max(1, pagesMs / this.#mappedMs);
  }

  /** Pages in flight now. */
  get count(): number {
    return this.#inFlight;
  }
}
