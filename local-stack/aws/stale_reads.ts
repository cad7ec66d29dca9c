/**
 * What `stale_ms` (local-stack/aws/faults.ts) does to the answers of eventually
 * consistent reads, given the recent versions of each item (local-stack/aws/history.ts).
 * Pure functions over the JSON protocol's request and response bodies.
 *
 * What is emulated, exactly:
 * - GetItem and BatchGetItem without `ConsistentRead`: each requested key with a history
 *   is answered with its image at a random moment within the window: an item written
 *   since may come back as it was before, one made since may be missing, one deleted
 *   since may still be returned.
 * - Query and Scan without `ConsistentRead`: each returned item with a history is
 *   replaced by its image at a random moment (or left out when it did not exist then).
 *   Items deleted within the window are put back, at their stale image, into the final
 *   page (no LastEvaluatedKey) of a Scan of the table, and of a parallel Scan into the
 *   final page of one segment chosen by a hash of the key, so that a full (parallel) Scan
 *   sees each once, as the stale replica it read would have shown it.
 *
 * What is not: a Query never gets deleted items back (the proxy does not evaluate key
 * conditions), nor does a Scan with a filter, on an index, or with `Select: COUNT` (the
 * proxy does not evaluate filters; counts stay DynamoDB Local's); put-back items do not
 * respect `Limit` or key order in the final page; a projection is applied to a stale
 * image by top-level attribute only (a nested path returns its whole top-level
 * attribute); an item whose key attributes were projected away cannot be matched and is
 * returned as it is now.
 *
 * @module
 */

import type { Item } from "./capacity.ts";
import { type History, keyOf, keyText } from "./history.ts";

/** A request or response body of the JSON protocol. */
export type Body = Record<string, unknown>;

/** The top-level attribute names a read asks for, or undefined for all of them. */
export function projectedNames(request: Body): Set<string> | undefined {
  const names = request.ExpressionAttributeNames as Record<string, string> | undefined;
  if (typeof request.ProjectionExpression === "string") {
    return new Set(
      request.ProjectionExpression.split(",").map((path) => {
        const top = path.trim().split(/[.[]/)[0].trim();
        return top.startsWith("#") ? (names?.[top] ?? top) : top;
      }),
    );
  }
  if (Array.isArray(request.AttributesToGet)) return new Set(request.AttributesToGet as string[]);
  return undefined;
}

/** An item cut down to what the read asked for. */
export function project(item: Item, names: Set<string> | undefined): Item {
  if (!names) return item;
  return Object.fromEntries(Object.entries(item).filter(([name]) => names.has(name)));
}

function hasKey(item: Item, keyNames: string[]): boolean {
  return keyNames.every((name) => item[name] !== undefined);
}

/** A number from a key's text, to spread deleted items over a parallel Scan's segments. */
export function segmentOf(key: Item, totalSegments: number): number {
  let hash = 2166136261;
  for (const char of keyText(key)) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0;
  return hash % totalSegments;
}

/**
 * Rewrites an eventually consistent read's response in place; returns whether it changed.
 * `table` is the history's name of the table (namespaced by account and region).
 */
export function applyStale(
  operation: string,
  request: Body,
  response: Body,
  tableName: (name: string) => string,
  keyNames: (name: string) => string[] | undefined,
  history: History,
  now: number,
): boolean {
  if (operation === "GetItem") {
    if (request.ConsistentRead === true) return false;
    const table = tableName(request.TableName as string);
    const key = request.Key as Item;
    if (!history.has(table, key)) return false;
    const image = history.stale(table, key, (response.Item as Item) ?? null, now);
    if (image) response.Item = project(image, projectedNames(request));
    else delete response.Item;
    return true;
  }
  if (operation === "BatchGetItem") {
    let changed = false;
    const requests = request.RequestItems as Record<string, Body>;
    const responses = (response.Responses ?? {}) as Record<string, Item[]>;
    for (const [name, tableRequest] of Object.entries(requests ?? {})) {
      const names = keyNames(name);
      if (tableRequest.ConsistentRead === true || !names) continue;
      const table = tableName(name);
      const items = responses[name] ?? [];
      if (!items.every((item) => hasKey(item, names))) continue;
      const current = new Map(items.map((item) => [keyText(keyOf(item, names)), item]));
      for (const key of (tableRequest.Keys as Item[]) ?? []) {
        if (!history.has(table, key)) continue;
        const text = keyText(keyOf(key, names));
        const image = history.stale(table, key, current.get(text) ?? null, now);
        if (image) current.set(text, project(image, projectedNames(tableRequest)));
        else current.delete(text);
        changed = true;
      }
      responses[name] = [...current.values()];
    }
    if (changed) response.Responses = responses;
    return changed;
  }
  if (operation === "Query" || operation === "Scan") {
    if (request.ConsistentRead === true || !Array.isArray(response.Items)) return false;
    const names = keyNames(request.TableName as string);
    if (!names) return false;
    const table = tableName(request.TableName as string);
    const projection = projectedNames(request);
    const before = response.Items.length;
    let changed = false;
    const items: Item[] = [];
    for (const item of response.Items as Item[]) {
      if (!hasKey(item, names) || !history.has(table, keyOf(item, names))) {
        items.push(item);
        continue;
      }
      changed = true;
      const image = history.stale(table, keyOf(item, names), item, now);
      if (image) items.push(project(image, projection));
    }
    const finalPage = response.LastEvaluatedKey === undefined;
    const plainScan = operation === "Scan" && request.IndexName === undefined &&
      request.FilterExpression === undefined && request.ScanFilter === undefined;
    if (finalPage && plainScan) {
      const total = typeof request.TotalSegments === "number" ? request.TotalSegments : 1;
      const segment = typeof request.Segment === "number" ? request.Segment : 0;
      for (const key of history.deletedKeys(table)) {
        if (segmentOf(key, total) !== segment) continue;
        const image = history.stale(table, key, null, now);
        if (image) {
          items.push(project(image, projection));
          changed = true;
        }
      }
    }
    if (!changed) return false;
    response.Items = items;
    response.Count = items.length;
    if (typeof response.ScannedCount === "number") {
      response.ScannedCount = Math.max(0, response.ScannedCount + items.length - before);
    }
    return true;
  }
  return false;
}

/** The (table, key) pairs a write touches; `keyNames` gives a table's key attributes. */
export function writtenKeys(
  operation: string,
  request: Body,
  keyNames: (name: string) => string[] | undefined,
): { table: string; key: Item }[] {
  const out: { table: string; key: Item }[] = [];
  const add = (table: string, item: Item | undefined, isKey: boolean) => {
    const names = keyNames(table);
    if (!item || !names) return;
    out.push({ table, key: isKey ? keyOf(item, names) : keyOf(item, names) });
  };
  switch (operation) {
    case "PutItem":
      add(request.TableName as string, request.Item as Item, false);
      break;
    case "UpdateItem":
    case "DeleteItem":
      add(request.TableName as string, request.Key as Item, true);
      break;
    case "BatchWriteItem":
      for (
        const [table, writes] of Object.entries(request.RequestItems as Record<string, Body[]>)
      ) {
        for (const write of writes) {
          const put = write.PutRequest as Body | undefined;
          const del = write.DeleteRequest as Body | undefined;
          if (put) add(table, put.Item as Item, false);
          if (del) add(table, del.Key as Item, true);
        }
      }
      break;
    case "TransactWriteItems":
      for (const entry of (request.TransactItems as Body[]) ?? []) {
        const put = entry.Put as Body | undefined;
        const upd = (entry.Update ?? entry.Delete) as Body | undefined;
        if (put) add(put.TableName as string, put.Item as Item, false);
        if (upd) add(upd.TableName as string, upd.Key as Item, true);
      }
      break;
  }
  return out;
}
