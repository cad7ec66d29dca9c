/**
 * The encoder: writes decoded DynamoDB values (dynamo_decoder.ts) as JSON text with every
 * digit of every number, and back into DynamoDB JSON. Sets become sorted arrays (a set
 * has no order, so the sorted form is canonical), binary becomes base64 text, maps and
 * lists stay nested (docs/source-tables.md, "Values that JSON cannot hold as such").
 *
 * @module
 */

import type { AttributeValue } from "./dynamo_commands.ts";
import type { AttributeMap, DynamoItem } from "./dynamo_decoder.ts";
import { compareDecimal, isDynamoNumber, numberJson } from "./dynamo_numbers.ts";

/**
 * Encodes a decoded value into DynamoDB JSON (numbers keep their text): the inverse of
 * the decoder, members that are undefined left out.
 */
function toAttribute(value: unknown): AttributeValue {
  if (value === null) return { NULL: true };
  if (typeof value === "string") return { S: value };
  if (typeof value === "boolean") return { BOOL: value };
  if (typeof value === "number" || typeof value === "bigint") return { N: String(value) };
  if (isDynamoNumber(value)) return { N: value.value };
  if (value instanceof Uint8Array) return { B: value };
  if (value instanceof Set) {
    const members = [...value];
    if (members.length === 0) throw new TypeError("an empty set is no DynamoDB value");
    if (members.every((m) => typeof m === "string")) return { SS: members };
    if (members.every((m) => m instanceof Uint8Array)) return { BS: members };
    return { NS: members.map((m) => isDynamoNumber(m) ? m.value : String(m)) };
  }
  if (Array.isArray(value)) return { L: value.map(toAttribute) };
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return { M: toDynamo(value as DynamoItem) };
  }
  throw new TypeError(`cannot encode ${Object.prototype.toString.call(value)} as a DynamoDB value`);
}

/** Encodes an item into DynamoDB JSON (numbers keep their text). */
export function toDynamo(item: DynamoItem): AttributeMap {
  const out: AttributeMap = {};
  for (const [name, value] of Object.entries(item)) {
    if (value !== undefined) out[name] = toAttribute(value);
  }
  return out;
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

/** The bytes of base64 text (`atob` throws when it is not base64). */
export function base64ToBytes(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
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
    // Native and fast: numbers are spliced in as their own text. The replacer sees every
    // value, so what is neither an object nor a bigint (strings, most of them) goes back
    // at once, before any `instanceof`.
    return JSON.stringify(value, (_key, v) => {
      if (typeof v !== "object" || v === null) {
        if (typeof v === "bigint") return rawJSON(v.toString());
        if (typeof v === "number" && !Number.isFinite(v)) {
          throw new TypeError(`not a finite number: ${v}`);
        }
        return v;
      }
      if (isDynamoNumber(v)) return exactNumber(v.value);
      return v instanceof Uint8Array || v instanceof Set ? canonical(v) : v;
    }) ?? "null";
  }
  return encodeJsonSlowly(value);
}

/**
 * A DynamoDB number for the native writer: a JS number when that number prints as the
 * very same text (`42`, `-1.5`: most numbers), else its text spliced in whole (`1.50`,
 * `1E+5`, more digits than a double holds). The native writer prints a number faster
 * than it splices a raw text in: about a fifth of the encoding's time for the visitors,
 * whose sessions hold several numbers each.
 */
function exactNumber(text: string): unknown {
  const n = +text;
  return Number.isFinite(n) && String(n) === text ? n : rawJSON!(numberJson(text));
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
