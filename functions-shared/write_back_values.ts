/**
 * Values of the write-back (docs/interfaces.md, "write-back"), column to attribute: the
 * inverse of the mapping in transform.ts, exact. Numbers stay decimal text, timestamps
 * go back to the form the source item used, JSON goes back to DynamoDB's types with the
 * item's current value as the guide (a set stays a set, binary stays binary).
 *
 * The edit's values come from `sync.write_backs` as Postgres wrote them: text for a
 * text or numeric column, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC) for a timestamptz, and
 * jsonb (parsed with every digit, `parseJsonExact`) for a jsonb column.
 *
 * @module
 */

import type { AttributeValue } from "./dynamo_commands.ts";
import { dynamoType, type DynamoValue, fromDynamo } from "./dynamo_decoder.ts";
import { base64ToBytes, encodeJson } from "./dynamo_encoder.ts";
import { compareDecimal, isDynamoNumber, numberProblem, parseJsonExact } from "./dynamo_numbers.ts";
import type { ColumnType } from "./table_registry.ts";

/** A value that cannot be written back; the caller adds the table, key and column. */
export class WriteBackValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WriteBackValueError";
  }
}

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:([T ])(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Offset text (`Z`, `+05:30`, `-0800`, `+05`) in minutes east of UTC. */
function offsetMinutes(zone: string | undefined): number {
  if (!zone || zone === "Z") return 0;
  const sign = zone[0] === "-" ? -1 : 1;
  const digits = zone.slice(1).replace(":", "");
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || "0"));
}

/**
 * The microseconds Postgres makes of a fraction of a second's digits: it reads the
 * fraction as a double (strtod) and rounds it times 10^6 to the nearest whole number,
 * ties to even (`rint`, in ParseFractionalSecond of src/backend/utils/adt/datetime.c):
 * `.0000005` is 0 µs, `.0000015` 2 µs, `.9999995` a whole second. JavaScript's numbers
 * are the same doubles, so the same arithmetic gives the same microsecond.
 */
export function fractionMicros(digits: string): number {
  if (digits === "") return 0;
  const scaled = Number(`0.${digits}`) * 1_000_000;
  const whole = Math.floor(scaled);
  const rest = scaled - whole; // exact: both lie on the same grid of doubles
  if (rest !== 0.5) return rest > 0.5 ? whole + 1 : whole;
  return whole % 2 === 0 ? whole : whole + 1;
}

/**
 * Microseconds since 1970 of an ISO-8601 timestamp (no zone is UTC, as the mapping's
 * Postgres reads it with the sync's UTC session); digits below a microsecond are rounded
 * as Postgres rounds them ({@link fractionMicros}).
 */
export function isoToMicros(text: string): bigint {
  const m = text.match(ISO);
  if (!m) throw new WriteBackValueError(`${JSON.stringify(text)} is not an ISO-8601 timestamp`);
  const [year, month, day] = [m[1], m[2], m[3]].map(Number);
  const [hour, minute, second] = [m[5], m[6], m[7]].map((p) => Number(p ?? 0));
  const micros = BigInt(fractionMicros(m[8] ?? ""));
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // years below 100 stay themselves
  date.setUTCHours(hour, minute, second, 0);
  const ms = date.getTime() - offsetMinutes(m[9]) * 60_000;
  return BigInt(ms) * 1000n + micros;
}

/** Exact decimal text of `micros / 10^scale` (no exponent, no trailing zeros). */
function scaledDecimal(micros: bigint, scale: number): string {
  const negative = micros < 0n;
  const digits = (negative ? -micros : micros).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

/** An instant as an epoch number of seconds or milliseconds, exact decimal text. */
export function microsToEpoch(micros: bigint, unit: "seconds" | "millis"): string {
  return scaledDecimal(micros, unit === "seconds" ? 6 : 3);
}

/**
 * An instant written the way `like` (the item's current value) is written: the same
 * separator (`T` or space), the same zone form (`Z`, `+00:00`, or its offset, the
 * instant shown in that offset) and at least as many fraction digits (more when the
 * instant needs them). Without `like`: `YYYY-MM-DDTHH:MM:SS.sssZ`, as JavaScript writes.
 */
export function microsToIso(micros: bigint, like?: string): string {
  const m = like?.match(ISO);
  const zone = m?.[9] ?? (m ? "" : "Z");
  const shift = BigInt(offsetMinutes(zone)) * 60_000_000n;
  const local = micros + shift;
  let seconds = local / 1_000_000n;
  let rest = local % 1_000_000n;
  if (rest < 0n) {
    seconds -= 1n;
    rest += 1_000_000n;
  }
  const date = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  const needed = rest === 0n ? 0 : String(rest).padStart(6, "0").replace(/0+$/, "").length;
  const shown = m ? Math.max((m[8] ?? "").length, needed) : Math.max(3, needed);
  const fraction = shown === 0
    ? ""
    : `.${String(rest).padStart(6, "0").padEnd(9, "0").slice(0, shown)}`;
  const separator = m?.[4] ?? "T";
  return `${date.replace("T", separator)}${fraction}${zone}`;
}

/** The DynamoDB value of a JSON value, shaped like `like` (the item's current value). */
export function jsonToAttribute(
  value: unknown,
  like?: DynamoValue,
  path = "value",
): AttributeValue {
  if (value === null || value === undefined) return { NULL: true };
  if (like instanceof Set && Array.isArray(value)) {
    if (value.length === 0) {
      throw new WriteBackValueError(`${path}: DynamoDB has no empty set (the item holds a set)`);
    }
    const sample = [...like][0];
    if (isDynamoNumber(sample) || value.every(isDynamoNumber)) {
      if (!value.every(isDynamoNumber)) {
        throw new WriteBackValueError(`${path}: a number set takes numbers only`);
      }
      return { NS: value.map((n) => checkedNumber(n.value, path)) };
    }
    if (sample instanceof Uint8Array) return { BS: value.map((v) => base64(v, path)) };
    if (!value.every((v) => typeof v === "string")) {
      throw new WriteBackValueError(`${path}: a string set takes strings only`);
    }
    return { SS: value as string[] };
  }
  if (like instanceof Uint8Array && typeof value === "string") return { B: base64(value, path) };
  if (isDynamoNumber(value)) return { N: checkedNumber(value.value, path) };
  if (typeof value === "number") return { N: checkedNumber(String(value), path) };
  if (typeof value === "string") return { S: value };
  if (typeof value === "boolean") return { BOOL: value };
  if (Array.isArray(value)) {
    const likeList = Array.isArray(like) ? like : [];
    return {
      L: value.map((v, i) => jsonToAttribute(v, listGuide(likeList, v, i), `${path}[${i}]`)),
    };
  }
  if (typeof value === "object") {
    const likeMap = like && typeof like === "object" && !Array.isArray(like) &&
        !(like instanceof Set) && !(like instanceof Uint8Array) && !isDynamoNumber(like)
      ? like as Record<string, DynamoValue>
      : {};
    const map: Record<string, AttributeValue> = {};
    for (const [name, member] of Object.entries(value as Record<string, unknown>)) {
      map[name] = jsonToAttribute(member, likeMap[name], `${path}.${name}`);
    }
    return { M: map };
  }
  throw new WriteBackValueError(`${path}: cannot write a ${typeof value}`);
}

/**
 * The member of the item's list (`like`) whose types a new list's member at `index`
 * takes: one equal to it wherever it is, so that a list cut or reordered keeps each
 * member's own types (a set stays a set, binary stays binary; by position, a list whose
 * first member was dropped gave the next one the types of the one it replaced); else, for
 * a member that is new or edited, the one at its position.
 */
function listGuide(like: DynamoValue[], member: unknown, index: number): DynamoValue | undefined {
  return like.find((old) => sameJsonValue(old, member)) ?? like[index];
}

function checkedNumber(text: string, path: string): string {
  const problem = numberProblem(text);
  if (problem) throw new WriteBackValueError(`${path}: ${problem}`);
  return text;
}

function base64(value: unknown, path: string): Uint8Array {
  if (typeof value !== "string") throw new WriteBackValueError(`${path}: binary takes base64 text`);
  try {
    return base64ToBytes(value);
  } catch {
    throw new WriteBackValueError(`${path}: ${JSON.stringify(value)} is not base64`);
  }
}

/**
 * The attribute value of a column's edited value, in the form of the item's current
 * value `like` (undefined when the item lacks the attribute).
 */
export function columnToAttribute(
  type: ColumnType,
  value: unknown,
  like: DynamoValue | undefined,
  column: string,
): AttributeValue {
  if (value === null || value === undefined) return { NULL: true };
  switch (type) {
    case "text":
      if (typeof value !== "string") throw new WriteBackValueError(`${column}: expected text`);
      return { S: value };
    case "numeric":
      return { N: checkedNumber(String(isDynamoNumber(value) ? value.value : value), column) };
    case "epoch_seconds":
    case "epoch_millis":
      return {
        N: microsToEpoch(
          isoToMicros(String(value)),
          type === "epoch_seconds" ? "seconds" : "millis",
        ),
      };
    case "iso_timestamp":
      return {
        S: microsToIso(isoToMicros(String(value)), typeof like === "string" ? like : undefined),
      };
    case "jsonb":
      return jsonToAttribute(value, like, column);
  }
}

/**
 * JSON-comparable form of a mapped value: sets sorted, binary as base64, numbers exact
 * (all three as encodeJson writes them).
 */
function normalized(value: unknown): unknown {
  return parseJsonExact(encodeJson(value ?? null));
}

function sameJson(a: unknown, b: unknown): boolean {
  if (isDynamoNumber(a) && isDynamoNumber(b)) return compareDecimal(a.value, b.value) === 0;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
      a.every((v, i) => sameJson(v, b[i]));
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length &&
    keys.every((k) => Object.hasOwn(y, k) && sameJson(x[k], y[k]));
}

/**
 * Whether a column's value as the mapping makes it from the item (`mapped`) equals the
 * value the row held (`recorded`, as `sync.write_backs` stores it).
 */
export function sameColumnValue(type: ColumnType, mapped: unknown, recorded: unknown): boolean {
  if (mapped === null || mapped === undefined) return recorded === null || recorded === undefined;
  if (recorded === null || recorded === undefined) return false;
  switch (type) {
    case "text":
      return mapped === recorded;
    case "numeric": {
      const text = isDynamoNumber(mapped) ? mapped.value : String(mapped);
      return compareDecimal(text, String(recorded)) === 0;
    }
    case "epoch_seconds":
    case "epoch_millis":
    case "iso_timestamp":
      try {
        return isoToMicros(String(mapped)) === isoToMicros(String(recorded));
      } catch (error) {
        if (error instanceof WriteBackValueError) return false; // not a timestamp: not equal
        throw error;
      }
    case "jsonb":
      return sameJson(normalized(mapped), recorded);
  }
}

/**
 * Whether an attribute value to be written equals the item's, as DynamoDB compares them:
 * of one type, sets as sets, numbers by value. Writing it would change nothing (and
 * DynamoDB's stream would carry no record of it).
 */
export function sameAttribute(written: AttributeValue, held: AttributeValue | undefined): boolean {
  if (held === undefined) return false;
  const { a, b } = fromDynamo({ a: written, b: held });
  return dynamoType(a) === dynamoType(b) && sameJson(normalized(a), normalized(b));
}

/** Same JSON values, numbers compared exactly (for the catch-all's keys). */
export function sameJsonValue(a: unknown, b: unknown): boolean {
  return sameJson(normalized(a), normalized(b));
}
