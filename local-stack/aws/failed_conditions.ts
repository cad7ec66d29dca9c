/**
 * What a PutItem, UpdateItem or DeleteItem whose condition failed costs under
 * `throttle_wcu` (write_capacity.ts). DynamoDB Local answers one without
 * `ConsumedCapacity`; AWS charges it (Developer Guide, "Working with items and
 * attributes", capacity units consumed by conditional writes,
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalWrites.ReturnConsumedCapacity):
 * "If a ConditionExpression evaluates to false during a conditional write, DynamoDB still
 * consumes write capacity from the table: If the item does not currently exist in the
 * table, DynamoDB consumes one write capacity unit. If the item does exist, the number of
 * write capacity units consumed depends on the size of the item." The same page's newer
 * wording counts the larger of the existing item and the new one ("if an existing item is
 * 300kb and the new item you are trying to create or update is 310kb, the write capacity
 * units consumed will be the 310kb item").
 *
 * So the proxy must know the item the condition met. It forwards the write with
 * `ReturnValuesOnConditionCheckFailure: ALL_OLD`, which makes DynamoDB (and DynamoDB Local
 * 1.25.1, checked by hand) put the item in the ConditionalCheckFailedException, read in
 * the same step as the condition, at no cost ("There is no additional cost associated with
 * requesting a return value [...] No read capacity units are consumed", API reference,
 * DeleteItem, ReturnValuesOnConditionCheckFailure,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DeleteItem.html);
 * the client gets the item only if it asked for it. Charged: an UpdateItem or DeleteItem
 * the existing item's units, one when there is none; a PutItem the larger of its own
 * item's units and the existing item's (never less than AWS's one for a missing item).
 * Kinder, and left so: an UpdateItem whose update would have made the item larger is
 * charged the item as it is (the update is not evaluated here).
 *
 * @module
 */

import { type Item, itemSize } from "./capacity.ts";
import { writeUnits } from "./write_capacity.ts";

type Body = Record<string, unknown>;

/** The writes whose condition can fail on one item, and that can return it. */
const SINGLE_WRITES: ReadonlySet<string> = new Set(["PutItem", "UpdateItem", "DeleteItem"]);

/** Whether a client's request asked to get the item its failed condition met. */
function askedForItem(request: Body): boolean {
  return request.ReturnValuesOnConditionCheckFailure === "ALL_OLD";
}

/** The parsed body of a ConditionalCheckFailedException; undefined for any other answer. */
function conditionFailed(errorText: string): Body | undefined {
  let body: unknown;
  try {
    body = JSON.parse(errorText);
  } catch {
    return undefined;
  }
  const type = (body as Body | null)?.__type;
  return typeof type === "string" && type.endsWith("#ConditionalCheckFailedException")
    ? body as Body
    : undefined;
}

/**
 * `request` (a PutItem, UpdateItem or DeleteItem) as the proxy forwards it, asking for the
 * item a failed condition meets; any other request, or one that asked already, as it is.
 */
export function askingForConditionItem(operation: string, request: Body): Body {
  if (!SINGLE_WRITES.has(operation) || askedForItem(request)) return request;
  return { ...request, ReturnValuesOnConditionCheckFailure: "ALL_OLD" };
}

/**
 * The write units AWS charges each table for a write that DynamoDB Local refused with
 * `errorText` (asked with {@link askingForConditionItem}): for a failed condition, as the
 * module says; nothing for any other refusal (an empty map).
 */
export function failedConditionCharge(
  operation: string,
  request: Body,
  errorText: string,
): Map<string, number> {
  const failed = SINGLE_WRITES.has(operation) ? conditionFailed(errorText) : undefined;
  if (!failed || typeof request.TableName !== "string") return new Map();
  const existing = failed.Item as Item | undefined;
  let units = existing ? writeUnits(itemSize(existing)) : 1;
  if (operation === "PutItem" && request.Item) {
    units = Math.max(units, writeUnits(itemSize(request.Item as Item)));
  }
  return new Map([[request.TableName, units]]);
}

/**
 * DynamoDB Local's refusal (`errorText`) as the client gets it: a failed condition's
 * `Item` taken out unless the client's `request` asked for it; any other answer as it came.
 */
export function clientErrorText(operation: string, request: Body, errorText: string): string {
  if (!SINGLE_WRITES.has(operation) || askedForItem(request)) return errorText;
  const failed = conditionFailed(errorText);
  if (!failed || !("Item" in failed)) return errorText;
  const { Item: _, ...rest } = failed;
  return JSON.stringify(rest);
}
