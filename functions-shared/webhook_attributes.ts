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

/** A problem found, its path relative to where the check started. */
interface Found {
  path: (string | number)[];
  message: string;
}

function found(message = EXPECTED_VALUE): Found {
  return { path: [], message };
}

/** Whether `list` is a non-empty list of strings, each passing `base64` when asked. */
function stringList(list: unknown, base64: boolean): boolean {
  if (!Array.isArray(list) || list.length === 0) return false;
  for (const s of list) {
    if (typeof s !== "string" || (base64 && !BASE64.test(s))) return false;
  }
  return true;
}

/**
 * The first problem of one value, its path built only on the way back from a problem:
 * the check runs for every attribute of every record, and a valid value allocates
 * nothing.
 */
function valueProblem(value: unknown): Found | undefined {
  if (
    typeof value !== "object" || value === null || Array.isArray(value) || isDynamoNumber(value)
  ) return found();
  let type = "";
  let count = 0;
  for (const key in value) {
    if (Object.hasOwn(value, key)) {
      type = key;
      count++;
    }
  }
  if (count !== 1) return found();
  const v = (value as Record<string, unknown>)[type];
  switch (type) {
    case "S":
      return typeof v === "string" ? undefined : found("S must be a string");
    // A number's text is checked by the mapping (dynamo_decoder.ts), so that a record with
    // a bad number is dead-lettered alone rather than refusing the whole batch.
    case "N":
      return typeof v === "string" ? undefined : found("N must be a number's text");
    case "B":
      return typeof v === "string" && BASE64.test(v) ? undefined : found("B must be base64 text");
    case "SS":
      return stringList(v, false) ? undefined : found("SS must be a non-empty list of strings");
    case "NS":
      return stringList(v, false)
        ? undefined
        : found("NS must be a non-empty list of numbers' text");
    case "BS":
      return stringList(v, true) ? undefined : found("BS must be a non-empty list of base64 text");
    case "BOOL":
      return typeof v === "boolean" ? undefined : found("BOOL must be true or false");
    case "NULL":
      return v === true ? undefined : found("NULL must be true");
    case "L":
      if (!Array.isArray(v)) return found("L must be a list");
      for (let i = 0; i < v.length; i++) {
        const problem = valueProblem(v[i]);
        if (problem) {
          problem.path.unshift("L", i);
          return problem;
        }
      }
      return undefined;
    case "M": {
      if (typeof v !== "object" || v === null || Array.isArray(v)) return found("M must be a map");
      const problem = mapProblem(v);
      if (problem) problem.path.unshift("M");
      return problem;
    }
    default:
      return found();
  }
}

function mapProblem(map: object): Found | undefined {
  for (const name in map) {
    if (!Object.hasOwn(map, name)) continue;
    const problem = valueProblem((map as Record<string, unknown>)[name]);
    if (problem) {
      problem.path.unshift(name);
      return problem;
    }
  }
  return undefined;
}

/**
 * The first problem in an attribute value in DynamoDB JSON, with its path (below
 * `path`), or undefined.
 */
export function attributeValueProblem(
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; message: string } | undefined {
  const problem = valueProblem(value);
  return problem && { path: [...path, ...problem.path], message: problem.message };
}

/** The first problem in a map of attribute values, with its path (below `path`), or undefined. */
export function attributeMapProblem(
  map: object,
  path: (string | number)[] = [],
): { path: (string | number)[]; message: string } | undefined {
  const problem = mapProblem(map);
  return problem && { path: [...path, ...problem.path], message: problem.message };
}
