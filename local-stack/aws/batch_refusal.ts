/**
 * Which BatchWriteItem requests DynamoDB refuses whole, whatever the tables' capacity: the
 * write throttle (write_capacity.ts) must never split one of those, or the part it
 * forwards would be written where AWS writes nothing. One refused whole goes on as it
 * came, unthrottled, and DynamoDB Local refuses it as AWS does (checked by hand against
 * DynamoDB Local 1.25.1 for each case below: a ValidationException, nothing written).
 *
 * AWS's API reference, BatchWriteItem
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html):
 * "If one or more of the following is true, DynamoDB rejects the entire batch write
 * operation: One or more tables specified in the BatchWriteItem request does not exist.
 * Primary key attributes specified on an item in the request do not match those in the
 * corresponding table's primary key schema. You try to perform multiple operations on the
 * same item in the same BatchWriteItem request. [...] There are more than 25 requests in
 * the batch. Any individual item in a batch exceeds 400 KB. [...] Any individual items
 * with keys exceeding the key length limits." Keys are checked as key_schema.ts tells:
 * each key attribute of its defined type, S and B not empty, a DeleteRequest's Key
 * holding nothing else, and two keys the same when their numbers are; an item's other
 * attributes as attribute_values.ts tells (an empty set, a number DynamoDB cannot store, a
 * value nested too deep...). Not checked here: the total request size (16 MB; 25 items of
 * 400 KB stay below it).
 *
 * @module
 */

import { itemValueProblem } from "./attribute_values.ts";
import { type Item, itemSize } from "./capacity.ts";
import { keyOf, keyText } from "./history.ts";
import { type KeyAttribute, keyProblem } from "./key_schema.ts";
import type { WriteRequest } from "./write_capacity.ts";

/** The most requests one BatchWriteItem may hold, and the largest item DynamoDB stores. */
const MAX_BATCH_REQUESTS = 25;
const MAX_ITEM_BYTES = 400 * 1024;

/** Whether an item is over 400 KB, or has a value whose size cannot be told. */
function oversized(item: Item): boolean {
  try {
    return itemSize(item) > MAX_ITEM_BYTES;
  } catch {
    return true;
  }
}

/**
 * Whether DynamoDB refuses this BatchWriteItem's `RequestItems` whole: `keySchema` gives a
 * table's key attributes, undefined for a table that does not exist.
 */
export function refusedWhole(
  requestItems: unknown,
  keySchema: (table: string) => KeyAttribute[] | undefined,
): boolean {
  if (!requestItems || typeof requestItems !== "object") return true;
  const tables = Object.entries(requestItems as Record<string, unknown>);
  let count = 0;
  for (const [table, requests] of tables) {
    const schema = keySchema(table);
    if (!schema || !Array.isArray(requests) || requests.length === 0) return true;
    const keys = new Set<string>();
    for (const request of requests as WriteRequest[]) {
      if (!request || typeof request !== "object" || Object.keys(request).length !== 1) {
        return true;
      }
      const item = request.PutRequest?.Item;
      const key = request.DeleteRequest?.Key;
      const written = item ?? key;
      if (!written || keyProblem(written, schema, key !== undefined) !== undefined) return true;
      if (item && (oversized(item) || itemValueProblem(item) !== undefined)) return true;
      const identity = keyText(keyOf(written, schema.map((k) => k.name)));
      if (keys.has(identity)) return true;
      keys.add(identity);
    }
    count += requests.length;
  }
  return tables.length === 0 || count > MAX_BATCH_REQUESTS;
}
