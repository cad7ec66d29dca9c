/**
 * DynamoDB attribute values in DynamoDB JSON (`{"S": ...}`, `{"N": "..."}`, ...), as
 * stream records and dead letters carry them: where the first problem is, and what it is.
 * Hand-written rather than a zod union: it runs for every attribute of every record.
 *
 * @module
 */

import { isDynamoNumber } from "./dynamo_numbers.ts";

/** Base64 text, as DynamoDB JSON writes binaries (B, BS). */
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const EXPECTED_VALUE = 'expected a DynamoDB attribute value such as {"S": ...} or {"N": "..."}';

/**
 * The first problem in an attribute value in DynamoDB JSON, with its path, or undefined.
 * Hand-written rather than a zod union: it runs for every attribute of every record.
 */
export function attributeValueProblem(
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; message: string } | undefined {
  const bad = (message = EXPECTED_VALUE) => ({ path, message });
  if (
    typeof value !== "object" || value === null || Array.isArray(value) || isDynamoNumber(value)
  ) return bad();
  const keys = Object.keys(value);
  if (keys.length !== 1) return bad();
  const [type] = keys;
  const v = (value as Record<string, unknown>)[type];
  const strings = (list: unknown, check: (s: string) => boolean) =>
    Array.isArray(list) && list.length > 0 &&
    list.every((s) => typeof s === "string" && check(s));
  switch (type) {
    case "S":
      return typeof v === "string" ? undefined : bad("S must be a string");
    // A number's text is checked by the mapping (dynamo_decoder.ts), so that a record with
    // a bad number is dead-lettered alone rather than refusing the whole batch.
    case "N":
      return typeof v === "string" ? undefined : bad("N must be a number's text");
    case "B":
      return typeof v === "string" && BASE64.test(v) ? undefined : bad("B must be base64 text");
    case "SS":
      return strings(v, () => true) ? undefined : bad("SS must be a non-empty list of strings");
    case "NS":
      return strings(v, () => true)
        ? undefined
        : bad("NS must be a non-empty list of numbers' text");
    case "BS":
      return strings(v, (s) => BASE64.test(s))
        ? undefined
        : bad("BS must be a non-empty list of base64 text");
    case "BOOL":
      return typeof v === "boolean" ? undefined : bad("BOOL must be true or false");
    case "NULL":
      return v === true ? undefined : bad("NULL must be true");
    case "L":
      if (!Array.isArray(v)) return bad("L must be a list");
      for (let i = 0; i < v.length; i++) {
        const problem = attributeValueProblem(v[i], [...path, "L", i]);
        if (problem) return problem;
      }
      return undefined;
    case "M":
      if (typeof v !== "object" || v === null || Array.isArray(v)) return bad("M must be a map");
      return attributeMapProblem(v, [...path, "M"]);
    default:
      return bad();
  }
}

/** The first problem in a map of attribute values, or undefined. */
export function attributeMapProblem(map: object, path: (string | number)[] = []) {
  for (const [name, value] of Object.entries(map)) {
    const problem = attributeValueProblem(value, [...path, name]);
    if (problem) return problem;
  }
  return undefined;
}
