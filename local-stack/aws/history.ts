/**
 * The recent versions of each item that passed the proxy, for `stale_ms` of
 * DYNAMODB_FAULTS (local-stack/aws/faults.ts): an eventually consistent read "might not
 * reflect the results of a recently completed write operation" (AWS Developer Guide,
 * "DynamoDB read consistency"), so the proxy answers such a read with each item as it was
 * at a random moment up to `stale_ms` ago. The proxy keeps a second one, of a few
 * minutes, for exports (exports.ts): an export's items may be as they were at any moment
 * of AWS's window around its export time (export_moments.ts).
 *
 * For every (table, key) written, the history holds the image in force before its first
 * remembered write (at time -Infinity) and then one version per write: the item's image
 * after it, or null when the write deleted it. Versions older than the window are
 * forgotten (only the newest of them is kept, as the base), and a key with nothing left
 * inside the window is dropped, so memory is bounded by the writes of the last window.
 *
 * @module
 */

import type { Item } from "./capacity.ts";
import { canonicalNumber } from "./key_schema.ts";

/** One version of an item: from `at` (ms since the epoch) on it was `image` (null: absent). */
export interface Version {
  at: number;
  image: Item | null;
}

/** A random number in [0, 1): Math.random, or a seeded one in tests. */
export type Random = () => number;

/** A small seeded generator (mulberry32) for tests that need a repeatable "random" pick. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A key in a canonical text form, the same for two keys DynamoDB takes for one: its
 * attributes sorted by name, and N values as numbers (key_schema.ts, `canonicalNumber`):
 * a write may name a key `{"N":"1.0"}` or `{"N":"1e0"}`, which DynamoDB's answers, Scans
 * and stream records give as `{"N":"1"}`. S and B values (B: base64, as DynamoDB answers
 * it) are compared as text; a value that is no number DynamoDB takes is kept as sent.
 */
export function keyText(key: Item): string {
  return JSON.stringify(Object.keys(key).sort().map((name) => [name, keyValue(key[name])]));
}

/** A key attribute's value, an N one as its canonical number. */
function keyValue(value: unknown): unknown {
  const number = (value as { N?: unknown } | null)?.N;
  if (typeof number !== "string" || Object.keys(value as object).length !== 1) return value;
  const canonical = canonicalNumber(number);
  return canonical === undefined ? value : { N: canonical };
}

/** The key attributes of an item, given the names of the table's key. */
export function keyOf(item: Item, keyNames: string[]): Item {
  return Object.fromEntries(keyNames.map((name) => [name, item[name]]));
}

/** The image in force at `moment` among `versions` (oldest first); the oldest before them all. */
function imageAt(versions: Version[], moment: number): Item | null {
  let image = versions[0].image;
  for (const version of versions) {
    if (version.at <= moment) image = version.image;
  }
  return image;
}

/** The recent versions of the items of every table. */
export class History {
  #versions = new Map<string, Map<string, { key: Item; versions: Version[] }>>();
  constructor(readonly windowMs: number, readonly random: Random = Math.random) {}

  /** Whether a key has versions inside the window (else its current image is exact). */
  has(table: string, key: Item): boolean {
    return this.#versions.get(table)?.has(keyText(key)) ?? false;
  }

  /**
   * Records a write: `before` is the image before it (used only when the key has no
   * history yet), `after` the image after it (null: deleted).
   */
  record(table: string, key: Item, before: Item | null, after: Item | null, now: number): void {
    let byKey = this.#versions.get(table);
    if (!byKey) this.#versions.set(table, byKey = new Map());
    const text = keyText(key);
    let entry = byKey.get(text);
    if (!entry) {
      entry = { key, versions: [{ at: -Infinity, image: before }] };
      byKey.set(text, entry);
    }
    entry.versions.push({ at: now, image: after });
    this.#prune(table, text, now);
  }

  /**
   * The image of an item at a random moment within the window before `now`, for an
   * eventually consistent read; `current` when the key has no history.
   */
  stale(table: string, key: Item, current: Item | null, now: number): Item | null {
    const entry = this.#versions.get(table)?.get(keyText(key));
    if (!entry) return current;
    return imageAt(entry.versions, now - this.random() * this.windowMs);
  }

  /**
   * The image of an item at `moment` (ms since the epoch), null when it was absent then;
   * undefined when the key has no versions held (no write within the window: its current
   * image is exact). For a moment older than the window, the oldest version held.
   */
  at(table: string, key: Item, moment: number): Item | null | undefined {
    const entry = this.#versions.get(table)?.get(keyText(key));
    return entry && imageAt(entry.versions, moment);
  }

  /** The keys of a table that have versions held: those written within the window. */
  keys(table: string): Item[] {
    return [...(this.#versions.get(table)?.values() ?? [])].map((entry) => entry.key);
  }

  /** The keys of a table whose newest version is a deletion: absent now, maybe not in the window. */
  deletedKeys(table: string): Item[] {
    return [...(this.#versions.get(table)?.values() ?? [])]
      .filter((entry) => entry.versions[entry.versions.length - 1].image === null)
      .map((entry) => entry.key);
  }

  /** Forgets what lies outside the window, for every key. */
  sweep(now: number): void {
    for (const [table, byKey] of this.#versions) {
      for (const text of [...byKey.keys()]) this.#prune(table, text, now);
      if (byKey.size === 0) this.#versions.delete(table);
    }
  }

  /** How many versions are held (for tests and logs). */
  size(): number {
    let n = 0;
    for (const byKey of this.#versions.values()) {
      for (const entry of byKey.values()) n += entry.versions.length;
    }
    return n;
  }

  #prune(table: string, text: string, now: number): void {
    const byKey = this.#versions.get(table)!;
    const entry = byKey.get(text);
    if (!entry) return;
    const horizon = now - this.windowMs;
    // Keep the newest version at or before the horizon as the base, and all after it.
    let base = 0;
    for (let i = 0; i < entry.versions.length; i++) {
      if (entry.versions[i].at <= horizon) base = i;
    }
    entry.versions = entry.versions.slice(base);
    if (entry.versions.length === 1) byKey.delete(text);
  }
}
