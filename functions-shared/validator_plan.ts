/**
 * The checksum validator's plans, without I/O: what a page of source items should make
 * in Postgres (the expected rows, and the items that map to no row), and which changes
 * repair one divergent key (docs/sync-semantics.md, "Verification"). The validator
 * (checksum_validator.ts) runs them against DynamoDB and Postgres.
 *
 * @module
 */

import type { AttributeValue } from "./dynamo_commands.ts";
import { storableText, stringProblem } from "./dynamo_decoder.ts";
import { mapScannedItem, rowKeyOf, type TableChange } from "./record_mapping.ts";
import type { TableSpec } from "./table_registry.ts";
import type { Change } from "./transform.ts";

/** A DynamoDB item as the SDK returns it. */
export type Item = Record<string, AttributeValue>;

/** A target row's key, e.g. `{"action_id": "a-1"}`. */
export type RowKey = Record<string, string>;

/** A row key as text, its columns in order: two keys are the same when their texts are. */
export function rowKeyText(key: RowKey): string {
  return JSON.stringify(Object.keys(key).sort().map((column) => [column, key[column]]));
}

/** A source item that maps to no row: its source key, and why (names table, key, cause). */
export interface Unmappable {
  key: Record<string, string>;
  reason: string;
  /**
   * The key holds what Postgres cannot store (U+0000, a lone surrogate), written out in
   * `key` ({@link storableText}): no row can have it, so it is not read again.
   */
  escaped?: true;
}

/**
 * The target row key an unmappable item's source key names, as text; null when it names
 * none (or none Postgres could store).
 */
export function unmappableRowKey(spec: TableSpec, unmappable: Unmappable): RowKey | null {
  if (unmappable.escaped) return null;
  const key = rowKeyOf(spec, unmappable.key);
  if (key === null) return null;
  return Object.fromEntries(Object.entries(key).map(([column, v]) => [column, String(v)]));
}

/** What an item should be in Postgres, as `sync.stage_checksum_items` reads it. */
export interface ExpectedRow {
  row: Record<string, unknown>;
  range_key?: string;
  rank?: number;
}

/**
 * The source key of an item as plain text per attribute (S or N as written; anything
 * else, e.g. a key attribute of the wrong type, as its DynamoDB JSON), for naming an
 * item whatever is wrong with it.
 */
export function sourceKeyOf(spec: TableSpec, item: Item): Record<string, string> {
  const key: Record<string, string> = {};
  for (const { name } of spec.sourceKey) {
    const value = item[name] as unknown as Record<string, unknown> | undefined;
    if (value === undefined) key[name] = "(missing)";
    else if (typeof value.S === "string") key[name] = value.S;
    else if (typeof value.N === "string") key[name] = value.N;
    else key[name] = JSON.stringify(value);
  }
  return key;
}

/**
 * An item that cannot be mapped, as the run lists it: its key and the reason as text
 * jsonb can hold (a key with U+0000, the very thing that makes an item unmappable, would
 * fail the page's statement, and every validation of the table with it).
 */
function unmappableItem(spec: TableSpec, item: Item, reason: string): Unmappable {
  const key = sourceKeyOf(spec, item);
  if (Object.values(key).every((text) => stringProblem(text) === undefined)) {
    return { key, reason: storableText(reason) };
  }
  const written = Object.entries(key).map(([name, text]) => [name, storableText(text)]);
  return { key: Object.fromEntries(written), reason: storableText(reason), escaped: true };
}

/**
 * Maps a page of items to the rows they should be. A soft-deleted item makes no row
 * and is not a problem; an item that cannot be mapped is listed in `unmappable`, so that
 * the table cannot read as a match over it.
 */
export function expectedPage(
  spec: TableSpec,
  items: Item[],
  readAt: Date,
): { rows: ExpectedRow[]; unmappable: Unmappable[] } {
  const rows: ExpectedRow[] = [];
  const unmappable: Unmappable[] = [];
  for (const item of items) {
    const mapped = mapScannedItem(spec, item, readAt);
    if (!mapped.ok) {
      unmappable.push(unmappableItem(spec, item, mapped.deadLetter.reason));
      continue;
    }
    const { change } = mapped.value;
    if (change.op !== "upsert") continue;
    rows.push({ row: change.row, range_key: change.rangeKey, rank: change.rank });
  }
  return { rows, unmappable };
}

/** The source attribute (and its type) behind each target key column: the point read's key. */
export function pointReadKey(spec: TableSpec, key: RowKey): Item {
  const item: Item = {};
  for (const column of spec.targetKey) {
    const attribute = [spec.columns[column].from].flat()[0];
    const type = spec.sourceKey.find((k) => k.name === attribute)!.type;
    item[attribute] = type === "S" ? { S: key[column] } : { N: key[column] };
  }
  return item;
}

/** What repairs one key: changes for the merge, or why the key is left alone. */
export type RepairPlan =
  | { changes: TableChange[]; unmappable: [] }
  | { changes: []; unmappable: Unmappable[] };

/**
 * The changes that make one divergent key equal its source again.
 *
 * `items` are the key's current source items, read consistently after `seenAt` (the
 * database's time when the validator saw the divergence) at `readAt`: the item itself,
 * or for a collapsed table every observation of the key (a Query on the hash key).
 * `known` are the range keys of the observations (and of the row) that Postgres holds
 * for a collapsed key. Every change is `source: "repair"`, positioned at `readAt` with
 * no stream position, and carries `seenAt`, so the merge replaces what was written
 * before the divergence was seen (see supabase/migrations/20261128000300_merge.sql):
 * - plain table: an upsert of the item, or a delete (a tombstone at `readAt`) when the
 *   source has no item;
 * - collapsed table: an upsert of every observation, and a delete of every known
 *   observation the source no longer has; the merge recomputes the row from them.
 * A key with an item that cannot be mapped is left alone (nothing is deleted over it)
 * and its items are returned as unmappable.
 */
export function repairPlan(
  spec: TableSpec,
  key: RowKey,
  items: Item[],
  known: string[],
  readAt: Date,
  seenAt: string,
): RepairPlan {
  const changes: TableChange[] = [];
  const unmappable: Unmappable[] = [];
  const ranges = new Set<string>();
  for (const item of items) {
    const mapped = mapScannedItem(spec, item, readAt, "repair");
    if (!mapped.ok) {
      unmappable.push(unmappableItem(spec, item, mapped.deadLetter.reason));
      continue;
    }
    // With its dead letter (the item as read, content-fingerprinted): one Postgres
    // refuses is replayable, and one letter however often the key is repaired.
    changes.push({ ...mapped.value, change: { ...mapped.value.change, seenAt } });
    if (mapped.value.change.rangeKey !== undefined) ranges.add(mapped.value.change.rangeKey);
  }
  if (unmappable.length > 0) return { changes: [], unmappable };
  const remove = (rangeKey?: string): TableChange => {
    const change: Change = {
      op: "delete",
      row: { ...key },
      seq: null,
      changedAt: readAt.toISOString(),
      source: "repair",
      seenAt,
    };
    if (rangeKey !== undefined) Object.assign(change, { rangeKey, rank: 0 });
    return { spec, change };
  };
  if (!spec.collapse) {
    if (items.length === 0) changes.push(remove());
  } else {
    for (const rangeKey of new Set(known)) {
      if (!ranges.has(rangeKey)) changes.push(remove(rangeKey));
    }
  }
  return { changes, unmappable: [] };
}
