/**
 * The decoder: DynamoDB's attribute values (DynamoDB JSON, as streams and the low-level
 * API carry them) into plain values, checked on the way so that Postgres cannot refuse
 * them later (docs/sync-semantics.md, "Bad input"). Numbers stay exact
 * (dynamo_numbers.ts); dynamo_encoder.ts writes the values out again.
 *
 * @module
 */

import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { DynamoNumber, isDynamoNumber, numberProblem } from "./dynamo_numbers.ts";

/** A value of an item, as {@link fromDynamo} returns it. */
export type DynamoValue =
  | string
  | boolean
  | null
  | DynamoNumber
  | Uint8Array
  | Set<string>
  | Set<DynamoNumber>
  | Set<Uint8Array>
  | DynamoValue[]
  | { [name: string]: DynamoValue };

/** An item: attribute name to value. */
export type DynamoItem = Record<string, DynamoValue>;

/** An item in DynamoDB's own JSON (what streams and the low-level API carry). */
export type AttributeMap = Record<string, AttributeValue>;

/**
 * A value that DynamoDB holds but Postgres cannot (docs/sync-semantics.md, "Bad input"), at
 * `path` inside the item (`meta.tags[2].title`). The mapping turns it into a
 * `MappingError` that also names the table and the key.
 */
export class ValueError extends Error {
  constructor(readonly path: string, readonly problem: string) {
    super(`attribute ${path}: ${problem}`);
    this.name = "ValueError";
  }
}

/**
 * Why Postgres cannot store a string, or undefined: text and jsonb refuse U+0000, and a
 * lone surrogate (not valid UTF-16) has no UTF-8 form.
 */
export function stringProblem(text: string): string | undefined {
  const nul = text.indexOf("\u0000");
  if (nul >= 0) return `contains U+0000 (NUL) at character ${nul}, which Postgres cannot store`;
  if (!text.isWellFormed()) {
    return "is not valid UTF-16 (a lone surrogate), which Postgres cannot store";
  }
  return undefined;
}

/** A JSON-safe name of a map key or list index for a path: `a.b`, `a[3]`. */
function join(path: string, name: string | number): string {
  if (typeof name === "number") return `${path}[${name}]`;
  const shown = /^[\w-]+$/.test(name) ? name : JSON.stringify(name);
  return path === "" ? shown : `${path}.${shown}`;
}

/** Sets an own property (a key such as `__proto__` stays data, not a prototype). */
function setOwn(target: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(target, name, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function checkedString(text: unknown, path: string): string {
  if (typeof text !== "string") throw new ValueError(path, "expected a string");
  const problem = stringProblem(text);
  if (problem) throw new ValueError(path, `the string ${problem}`);
  return text;
}

function checkedNumber(text: unknown, path: string): DynamoNumber {
  if (typeof text !== "string") throw new ValueError(path, "expected a number's text");
  const problem = numberProblem(text);
  if (problem) throw new ValueError(path, problem);
  return new DynamoNumber(text);
}

function checkedBytes(value: unknown, path: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new ValueError(path, "expected binary");
}

/** Throws when Postgres could not store a map key (or an attribute name, at the top). */
function checkName(name: string, path: string): void {
  const problem = stringProblem(name);
  if (!problem) return;
  if (path === "") throw new ValueError(JSON.stringify(name), `the attribute name ${problem}`);
  throw new ValueError(path, `the map key ${JSON.stringify(name)} ${problem}`);
}

/** Decodes a map's members, checking every name. */
function decodeMap(map: Record<string, unknown>, path: string): Record<string, DynamoValue> {
  const out: Record<string, DynamoValue> = {};
  for (const [name, value] of Object.entries(map)) {
    checkName(name, path);
    setOwn(out, name, decodeValue(value as AttributeValue, join(path, name)));
  }
  return out;
}

/** Decodes one attribute value, checking it on the way (one pass). */
function decodeValue(value: AttributeValue, path: string): DynamoValue {
  const v = value as unknown as Record<string, unknown>;
  if (v === null || typeof v !== "object") {
    throw new ValueError(path, "expected an attribute value");
  }
  if ("S" in v) return checkedString(v.S, path);
  if ("N" in v) return checkedNumber(v.N, path);
  if ("B" in v) return checkedBytes(v.B, path);
  if ("BOOL" in v) return v.BOOL === true;
  if ("NULL" in v) return null;
  if ("SS" in v) return new Set((v.SS as unknown[]).map((s, i) => checkedString(s, join(path, i))));
  if ("NS" in v) return new Set((v.NS as unknown[]).map((n, i) => checkedNumber(n, join(path, i))));
  if ("BS" in v) return new Set((v.BS as unknown[]).map((b, i) => checkedBytes(b, join(path, i))));
  if ("L" in v) return (v.L as AttributeValue[]).map((x, i) => decodeValue(x, join(path, i)));
  if ("M" in v) return decodeMap(v.M as Record<string, unknown>, path);
  throw new ValueError(path, `unknown DynamoDB type ${JSON.stringify(Object.keys(v))}`);
}

/**
 * Decodes an item from DynamoDB JSON, keeping numbers exact, and checks every value on
 * the way so that Postgres cannot refuse it later: strings and map keys without U+0000
 * and valid UTF-16, numbers DynamoDB's own. Throws {@link ValueError} naming the path.
 */
export function fromDynamo(item: AttributeMap): DynamoItem {
  return decodeMap(item, "");
}

/**
 * Checks a plain value (a direct request's data, numbers as {@link DynamoNumber}) as
 * {@link fromDynamo} checks a decoded one; throws {@link ValueError} naming the path.
 */
export function checkPlain(value: unknown, path = ""): void {
  if (typeof value === "string") checkedString(value, path);
  else if (isDynamoNumber(value)) checkedNumber(value.value, path);
  else if (Array.isArray(value)) value.forEach((x, i) => checkPlain(x, join(path, i)));
  else if (value !== null && typeof value === "object") {
    for (const [name, member] of Object.entries(value)) {
      checkName(name, path);
      checkPlain(member, join(path, name));
    }
  }
}

/** The DynamoDB type descriptor of a value (S, N, B, SS, NS, BS, M, L, BOOL, NULL). */
export function dynamoType(value: DynamoValue): string {
  if (value === null) return "NULL";
  if (typeof value === "string") return "S";
  if (typeof value === "boolean") return "BOOL";
  if (isDynamoNumber(value)) return "N";
  if (value instanceof Uint8Array) return "B";
  if (value instanceof Set) {
    const first = value.values().next().value;
    return isDynamoNumber(first) ? "NS" : first instanceof Uint8Array ? "BS" : "SS";
  }
  return Array.isArray(value) ? "L" : "M";
}
