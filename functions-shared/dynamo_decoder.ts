/**
 * The decoder: DynamoDB's attribute values (DynamoDB JSON, as streams and the low-level
 * API carry them) into plain values, checked on the way so that Postgres cannot refuse
 * them later (docs/sync-semantics.md, "Bad input"). Numbers stay exact
 * (dynamo_numbers.ts); dynamo_encoder.ts writes the values out again.
 *
 * @module
 */

import type { AttributeValue } from "./dynamo_commands.ts";
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

/**
 * `text` as Postgres can store it, to name a value it cannot hold: U+0000 written as the
 * six characters `\u0000`, lone surrogates replaced (see {@link stringProblem}).
 */
export function storableText(text: string): string {
  return text.replaceAll("\u0000", "\\u0000").toWellFormed();
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

/** Throws when Postgres could not store a map key (or an attribute name, at the top). */
function checkName(name: string, path: string): void {
  const problem = stringProblem(name);
  if (!problem) return;
  if (path === "") throw new ValueError(JSON.stringify(name), `the attribute name ${problem}`);
  throw new ValueError(path, `the map key ${JSON.stringify(name)} ${problem}`);
}

/**
 * A value that cannot be stored, found while decoding; the path to it is put together
 * only then, on the way out (`segments`, outermost first), so that the decoding of the
 * many values that are fine builds no path at all.
 */
class Unstorable {
  readonly segments: (string | number)[] = [];
  constructor(readonly error: (path: string) => ValueError) {}

  /** The {@link ValueError}, its path joined as `join` joins it. */
  toValueError(): ValueError {
    return this.error(this.segments.reduce<string>((path, s) => join(path, s), ""));
  }
}

const unstorable = (problem: string) => new Unstorable((path) => new ValueError(path, problem));

/** Why a DynamoDB number text cannot be stored, without building a message when it can. */
function numberTextProblem(text: string): string | undefined {
  // Plain decimals of at most 38 digits (nearly every number) are DynamoDB numbers: the
  // exponent of their first digit lies within -38..37, well inside -130..+125.
  if (text.length <= 40 && SIMPLE_DECIMAL.test(text)) {
    const digits = text.length - (text[0] === "-" ? 1 : 0) - (text.includes(".") ? 1 : 0);
    if (digits <= 38) return undefined;
  }
  return numberProblem(text);
}
const SIMPLE_DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?$/;

function decodedString(text: unknown): string {
  if (typeof text !== "string") throw unstorable("expected a string");
  const problem = stringProblem(text);
  if (problem) throw unstorable(`the string ${problem}`);
  return text;
}

function decodedNumber(text: unknown): DynamoNumber {
  if (typeof text !== "string") throw unstorable("expected a number's text");
  const problem = numberTextProblem(text);
  if (problem) throw unstorable(problem);
  return new DynamoNumber(text);
}

function decodedBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw unstorable("expected binary");
}

/** Runs `decode` on a member; a failure gets the member's name or index on its path. */
function member<T>(name: string | number, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof Unstorable) error.segments.unshift(name);
    throw error;
  }
}

/**
 * Names (attribute names and map keys) already found storable. Items of a table repeat
 * the same few dozen names, and a visitor's holds about 90 of them (its sessions' keys):
 * a lookup here costs less than checking the name again. Bounded, and short names only.
 */
const STORABLE_NAMES = new Set<string>();
const MAX_STORABLE_NAMES = 4_096;

/** {@link stringProblem} of a name, remembering the storable ones. */
function nameProblem(name: string): string | undefined {
  if (STORABLE_NAMES.has(name)) return undefined;
  const problem = stringProblem(name);
  if (!problem && name.length <= 64 && STORABLE_NAMES.size < MAX_STORABLE_NAMES) {
    STORABLE_NAMES.add(name);
  }
  return problem;
}

/** Decodes a map's members, checking every name. */
function decodeMap(map: Record<string, unknown>): Record<string, DynamoValue> {
  const out: Record<string, DynamoValue> = {};
  for (const name in map) {
    if (!Object.hasOwn(map, name)) continue;
    const problem = nameProblem(name);
    if (problem) {
      throw new Unstorable((path) =>
        path === ""
          ? new ValueError(JSON.stringify(name), `the attribute name ${problem}`)
          : new ValueError(path, `the map key ${JSON.stringify(name)} ${problem}`)
      );
    }
    let value: DynamoValue;
    try {
      value = decodeValue(map[name] as AttributeValue);
    } catch (error) {
      if (error instanceof Unstorable) error.segments.unshift(name);
      throw error;
    }
    // A plain assignment makes an own data property of every name but `__proto__`.
    if (name === "__proto__") setOwn(out, name, value);
    else out[name] = value;
  }
  return out;
}

/** Decodes a list's or set's members with `decode`, each failure naming its index. */
function decodeMembers<T>(values: unknown[], decode: (v: unknown) => T): T[] {
  const out = new Array<T>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = member(i, () => decode(values[i]));
  return out;
}

/** Decodes one attribute value, checking it on the way (one pass). */
function decodeValue(value: AttributeValue): DynamoValue {
  const v = value as unknown as Record<string, unknown>;
  if (v === null || typeof v !== "object") throw unstorable("expected an attribute value");
  if ("S" in v) return decodedString(v.S);
  if ("N" in v) return decodedNumber(v.N);
  if ("B" in v) return decodedBytes(v.B);
  if ("BOOL" in v) return v.BOOL === true;
  if ("NULL" in v) return null;
  if ("SS" in v) return new Set(decodeMembers(v.SS as unknown[], decodedString));
  if ("NS" in v) return new Set(decodeMembers(v.NS as unknown[], decodedNumber));
  if ("BS" in v) return new Set(decodeMembers(v.BS as unknown[], decodedBytes));
  if ("L" in v) return decodeMembers(v.L as unknown[], (x) => decodeValue(x as AttributeValue));
  if ("M" in v) return decodeMap(v.M as Record<string, unknown>);
  throw unstorable(`unknown DynamoDB type ${JSON.stringify(Object.keys(v))}`);
}

/**
 * Decodes an item from DynamoDB JSON, keeping numbers exact, and checks every value on
 * the way so that Postgres cannot refuse it later: strings and map keys without U+0000
 * and valid UTF-16, numbers DynamoDB's own. Throws {@link ValueError} naming the path.
 */
export function fromDynamo(item: AttributeMap): DynamoItem {
  try {
    return decodeMap(item);
  } catch (error) {
    if (error instanceof Unstorable) throw error.toValueError();
    throw error;
  }
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
