/**
 * A lossless codec between DynamoDB's attribute values and JSON, on
 * `@aws-sdk/util-dynamodb`.
 *
 * DynamoDB numbers carry up to 38 significant digits, more than a JS number holds, so
 * numbers stay {@link DynamoNumber}s (their exact decimal text) from the stream record
 * to the JSON that reaches Postgres, where jsonb and numeric keep every digit. Sets
 * become sorted arrays (a set has no order, so the sorted form is canonical), binary
 * becomes base64 text, maps and lists stay nested.
 *
 * @module
 */

import { marshall, NumberValueImpl } from "@aws-sdk/util-dynamodb";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";

/** A DynamoDB number, kept as its exact decimal text. */
export const DynamoNumber = NumberValueImpl;
/** A DynamoDB number, kept as its exact decimal text. */
export type DynamoNumber = InstanceType<typeof NumberValueImpl>;

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
 * A value that DynamoDB holds but Postgres cannot (sync-semantics.md, "Bad input"), at
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

/** DynamoDB's numbers: up to 38 significant digits, magnitudes from 1E-130 to under 1E+126. */
const MAX_DIGITS = 38;
const MIN_EXPONENT = -130;
const MAX_EXPONENT = 125;

/** Why a text is not a DynamoDB number, or undefined when it is one. */
export function numberProblem(text: string): string | undefined {
  const shown = JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
  let parts;
  try {
    parts = decimalParts(text);
  } catch {
    return `${shown} is not a number`;
  }
  if (parts.digits.length > MAX_DIGITS) {
    return `${shown} has ${parts.digits.length} significant digits; DynamoDB numbers have at most ${MAX_DIGITS}`;
  }
  const lead = parts.exponent + parts.digits.length - 1;
  if (parts.sign !== 0 && (lead < MIN_EXPONENT || lead > MAX_EXPONENT)) {
    return `${shown} is out of DynamoDB's number range (exponent ${MIN_EXPONENT} to +${MAX_EXPONENT})`;
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
  return new NumberValueImpl(text);
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

/** Encodes an item into DynamoDB JSON (numbers keep their text). */
export function toDynamo(item: DynamoItem): AttributeMap {
  return marshall(item, { removeUndefinedValues: true }) as AttributeMap;
}

/** Whether a value is a DynamoDB number. */
export function isDynamoNumber(value: unknown): value is DynamoNumber {
  return value instanceof NumberValueImpl;
}

/** A JSON number: DynamoDB's number text must be one to be written as it is. */
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * The exact JSON text of a DynamoDB number. DynamoDB accepts a few spellings that JSON
 * does not (`+1`, `.5`, `5.`, `007`); they are rewritten without changing the value.
 * Throws on text that is not a number at all.
 */
export function numberJson(text: string): string {
  if (JSON_NUMBER.test(text)) return text;
  const match = text.trim().match(/^([+-]?)(\d*)(?:\.(\d*))?([eE][+-]?\d+)?$/);
  if (!match || (match[2] === "" && (match[3] ?? "") === "")) {
    throw new TypeError(`not a number: ${JSON.stringify(text)}`);
  }
  const [, sign, whole, fraction, exponent] = match;
  const digits = whole.replace(/^0+(?=\d)/, "") || "0";
  const normalized = `${sign === "-" ? "-" : ""}${digits}${fraction ? `.${fraction}` : ""}${
    exponent ?? ""
  }`;
  if (!JSON_NUMBER.test(normalized)) throw new TypeError(`not a number: ${JSON.stringify(text)}`);
  return normalized;
}

/**
 * Binary as base64 text. Chunked: spreading a 400 KB item's bytes into one
 * `String.fromCharCode` call would overflow the stack.
 */
export function bytesToBase64(bytes: Uint8Array): string {
  const CHUNK = 0x2000;
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + CHUNK)));
  }
  return btoa(binary);
}

/** Sign, significant digits and the exponent of the last digit: 12.5 is (1, "125", -1). */
export function decimalParts(text: string): { sign: number; digits: string; exponent: number } {
  const [, sign, whole, fraction = "", exp = "0"] = numberJson(text).match(
    /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/,
  )!;
  const all = (whole + fraction).replace(/^0+/, "");
  const digits = all.replace(/0+$/, "");
  if (digits === "") return { sign: 0, digits: "", exponent: 0 };
  const exponent = Number(exp) - fraction.length + (all.length - digits.length);
  return { sign: sign === "-" ? -1 : 1, digits, exponent };
}

/** Compares two decimal numbers exactly (no rounding to a double): -1, 0 or 1. */
export function compareDecimal(a: string, b: string): number {
  const x = decimalParts(a);
  const y = decimalParts(b);
  if (x.sign !== y.sign) return Math.sign(x.sign - y.sign);
  if (x.sign === 0) return 0;
  // Compare magnitudes: first by the position of the leading digit, then digit by digit.
  const lead = (p: typeof x) => p.digits.length + p.exponent;
  let magnitude = Math.sign(lead(x) - lead(y));
  if (magnitude === 0) {
    const width = Math.max(x.digits.length, y.digits.length);
    const dx = x.digits.padEnd(width, "0");
    const dy = y.digits.padEnd(width, "0");
    magnitude = dx < dy ? -1 : dx > dy ? 1 : 0;
  }
  return magnitude * x.sign;
}

/**
 * The JSON-compatible form of a value, for anything that is not a number: sets become
 * sorted arrays, binary becomes base64. Numbers are left as {@link DynamoNumber}s for
 * {@link encodeJson} to write exactly.
 */
function canonical(value: unknown): unknown {
  if (value instanceof Uint8Array) return bytesToBase64(value);
  if (value instanceof Set) {
    const members = [...value].map(canonical);
    return members.sort((a, b) => {
      if (isDynamoNumber(a) && isDynamoNumber(b)) return compareDecimal(a.value, b.value);
      const x = String(a);
      const y = String(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }
  return value;
}

/** `JSON.rawJSON` (TC39 JSON.parse source text access), where the runtime has it. */
const rawJSON = (JSON as unknown as { rawJSON?: (text: string) => unknown }).rawJSON;

/**
 * Writes a value as JSON text, with every digit of every DynamoDB number (JSON itself
 * has no limit on digits; `JSON.stringify` alone would round). Accepts plain JS values
 * too.
 */
export function encodeJson(value: unknown): string {
  if (rawJSON) {
    // Native and fast: numbers are spliced in as their own text.
    return JSON.stringify(value, (_key, v) => {
      if (isDynamoNumber(v)) return rawJSON(numberJson(v.value));
      if (typeof v === "bigint") return rawJSON(v.toString());
      if (typeof v === "number" && !Number.isFinite(v)) {
        throw new TypeError(`not a finite number: ${v}`);
      }
      return v instanceof Uint8Array || v instanceof Set ? canonical(v) : v;
    }) ?? "null";
  }
  return encodeJsonSlowly(value);
}

/** {@link encodeJson} for runtimes without `JSON.rawJSON`. */
export function encodeJsonSlowly(value: unknown): string {
  const v = canonical(value);
  if (v === null || v === undefined) return "null";
  if (isDynamoNumber(v)) return numberJson(v.value);
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new TypeError(`not a finite number: ${v}`);
    return JSON.stringify(v);
  }
  if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v);
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return `[${v.map(encodeJsonSlowly).join(",")}]`;
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, member]) => member !== undefined)
      .map(([key, member]) => `${JSON.stringify(key)}:${encodeJsonSlowly(member)}`);
    return `{${entries.join(",")}}`;
  }
  throw new TypeError(`cannot encode a ${typeof v} as JSON`);
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
