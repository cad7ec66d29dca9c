/**
 * The attribute values DynamoDB refuses in an item it is asked to write, whatever the
 * table: what the write throttle must see before it splits a BatchWriteItem
 * (batch_refusal.ts), since DynamoDB "rejects the entire batch write operation" when any
 * request in it is invalid and writes none of it (API reference, BatchWriteItem,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html).
 *
 * The rules, each checked by hand against DynamoDB Local 1.25.1 (a batch of a valid put
 * and a put holding the value: a 400 ValidationException, or a 500 for a value of the
 * wrong JSON shape, and the valid put not written either):
 * - an attribute value holds exactly one of S, N, B, SS, NS, BS, M, L, NULL, BOOL
 *   ("Supplied AttributeValue is empty" / "has more than one datatypes set"), and is not
 *   JSON null ("The supplied Item contains a null AttributeValue");
 * - an attribute's name is not empty ("Empty attribute name");
 * - a number has at most 38 significant digits and a magnitude from 1E-130 to 9.99…E+125
 *   (Developer Guide, "Supported data types and naming rules",
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html);
 * - a set is not empty and holds no value twice, numbers compared as numbers ("DynamoDB
 *   does not support empty sets", "Each value within a set must be unique", same page);
 * - `NULL` is `true` ("Null attribute value types must have the value of true");
 * - a value nests at most 32 levels, the attribute itself the first ("Nesting Levels
 *   have exceeded supported limits"; Developer Guide, "Quotas in Amazon DynamoDB",
 *   nested attribute depth, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html);
 * - B and BS values are base64, L a list and M a map (a 500 InternalFailure from
 *   DynamoDB Local, a SerializationException from AWS: either way nothing is written).
 *
 * Not checked, because DynamoDB Local takes them (it coerces the JSON value): a string
 * `"true"` for NULL or BOOL, a number for S or N, a number in SS. Checking them would make
 * the proxy forward such a batch whole and unthrottled, kinder than splitting it.
 *
 * @module
 */

import type { Item } from "./capacity.ts";
import { canonicalNumber, isBase64 } from "./key_schema.ts";

/** The most levels a value may nest, its attribute the first. */
export const MAX_NESTING_LEVELS = 32;

const TYPES = new Set(["S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"]);

/** Why DynamoDB refuses a set of `type` (SS, NS or BS) holding `members`, if it does. */
function setProblem(type: string, members: unknown): string | undefined {
  if (!Array.isArray(members)) return `${type} is not a list`;
  if (members.length === 0) return `${type} is empty`;
  const seen = new Set<unknown>();
  for (const member of members) {
    let identity: unknown = member;
    if (type === "NS") {
      identity = canonicalNumber(String(member));
      if (identity === undefined) return `${type} holds ${JSON.stringify(member)}, not a number`;
    }
    if (type === "BS" && !isBase64(member)) return `${type} holds a value that is not base64`;
    if (seen.has(identity)) return `${type} holds ${JSON.stringify(member)} twice`;
    seen.add(identity);
  }
  return undefined;
}

/**
 * Why DynamoDB refuses the attribute value `value` at `path`, `level` levels deep (the
 * attribute itself 1); undefined when it takes it.
 */
function valueProblem(value: unknown, path: string, level: number): string | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return `${path} is not an attribute value`;
  }
  if (level > MAX_NESTING_LEVELS) return `${path} nests more than ${MAX_NESTING_LEVELS} levels`;
  const entries = Object.entries(value);
  if (entries.length !== 1 || !TYPES.has(entries[0][0])) {
    return `${path} must hold exactly one data type`;
  }
  const [type, inner] = entries[0];
  if (type === "N" && canonicalNumber(String(inner)) === undefined) {
    return `${path} is not a number DynamoDB stores`;
  }
  if (type === "B" && !isBase64(inner)) return `${path} is not base64`;
  if (type === "NULL" && inner !== true && inner !== "true") return `${path}: NULL must be true`;
  if (type === "SS" || type === "NS" || type === "BS") {
    const problem = setProblem(type, inner);
    return problem && `${path}: ${problem}`;
  }
  if (type === "L") {
    if (!Array.isArray(inner)) return `${path}: L is not a list`;
    for (const [index, member] of inner.entries()) {
      const problem = valueProblem(member, `${path}[${index}]`, level + 1);
      if (problem) return problem;
    }
  }
  if (type === "M") {
    if (inner === null || typeof inner !== "object" || Array.isArray(inner)) {
      return `${path}: M is not a map`;
    }
    return attributesProblem(inner as Item, `${path}.`, level + 1);
  }
  return undefined;
}

/** Why DynamoDB refuses a map of attributes (an item, or an M's value), if it does. */
function attributesProblem(attributes: Item, prefix: string, level: number): string | undefined {
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "") return `${prefix}(an attribute) has an empty name`;
    const problem = valueProblem(value, `${prefix}${name}`, level);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Why DynamoDB refuses to write `item` for its attribute values (undefined: it takes
 * them), naming the attribute: see the module's rules. Keys are checked against the
 * table's schema apart (key_schema.ts).
 */
export function itemValueProblem(item: Item): string | undefined {
  return attributesProblem(item, "", 1);
}
