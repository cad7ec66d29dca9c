/**
 * The current images of items, read consistently from DynamoDB Local: what the DynamoDB
 * proxy (local-stack/aws/proxy.ts) reads around a write to know what it changed, for the
 * stale reads' history (history.ts) and the stream records' times (stream_times.ts).
 *
 * @module
 */

import type { Item } from "./capacity.ts";
import { keyText } from "./history.ts";
import type { Body } from "./stale_reads.ts";

/** The most keys one BatchGetItem may ask for. */
const BATCH_GET_KEYS = 100;

/** The key of an item's image in {@link currentImages}' answer: its table and key. */
export function imageId(table: string, key: Item): string {
  return `${table}\0${keyText(key)}`;
}

/**
 * The current image of each of `keys` by {@link imageId}, null for an item that does not
 * exist: read with consistent BatchGetItems (`batchGet`, a call to DynamoDB Local that
 * answers its JSON), up to 100 keys each. `keyNames` gives a table's key attribute names,
 * to tell the items answered apart.
 */
export async function currentImages(
  batchGet: (body: Body) => Promise<Body>,
  keyNames: (table: string) => string[],
  keys: { table: string; key: Item }[],
): Promise<Map<string, Item | null>> {
  const images = new Map<string, Item | null>();
  for (let i = 0; i < keys.length; i += BATCH_GET_KEYS) {
    const chunk = keys.slice(i, i + BATCH_GET_KEYS);
    let requestItems: Record<string, { Keys: Item[]; ConsistentRead: true }> = {};
    for (const { table, key } of chunk) {
      const entry = requestItems[table] ??= { Keys: [], ConsistentRead: true };
      if (!entry.Keys.some((k) => keyText(k) === keyText(key))) entry.Keys.push(key);
    }
    for (const { table, key } of chunk) images.set(imageId(table, key), null);
    // Keys left unread (`UnprocessedKeys`: an answer past 16 MB, items of hundreds of KB)
    // are asked for again: one taken as absent would hide an item that exists.
    for (let ask = 0; Object.keys(requestItems).length > 0; ask++) {
      if (ask === 100) throw new Error("BatchGetItem left keys unprocessed 100 times over");
      const result = await batchGet({ RequestItems: requestItems });
      for (
        const [table, items] of Object.entries(
          (result.Responses ?? {}) as Record<string, Item[]>,
        )
      ) {
        const names = keyNames(table);
        for (const item of items) {
          const key = Object.fromEntries(names.map((n) => [n, item[n]]));
          images.set(imageId(table, key), item);
        }
      }
      requestItems = (result.UnprocessedKeys ?? {}) as typeof requestItems;
    }
  }
  return images;
}
