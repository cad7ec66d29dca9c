/**
 * Turns DynamoDB items into changes of target rows, as the table registry describes:
 * the columns, the catch-all jsonb column, the collapse key and rank, Amplify's
 * `_deleted`. Both write paths (the webhook and the backfill) and the validator use it,
 * so a row means the same whichever way it came.
 *
 * @module
 */

import { type DynamoItem, type DynamoValue, ValueError } from "./dynamo_decoder.ts";
import { isCalendarDay, isoOfEpochMs } from "./civil_time.ts";
import { decimalParts, isDynamoNumber } from "./dynamo_numbers.ts";
import { itemProblem, keyProblem } from "./item_schema.ts";
import type { ColumnType, TableSpec } from "./table_registry.ts";

/** Which path produced a change. */
export type ChangeSource = "stream" | "backfill" | "repair" | "direct";

/** Where a change stands in time: the stream position, or the time a read saw the item. */
export interface Position {
  /** The stream record's SequenceNumber; null for a Scan or a person. */
  seq: string | null;
  /** ApproximateCreationDateTime of the record, or the time of the read (ISO-8601). */
  changedAt: string;
  source: ChangeSource;
}

/** A change of one target row (or, for collapsed tables, of one observation of it). */
export interface Change extends Position {
  op: "upsert" | "delete";
  /** Target column -> value. A delete carries the key columns only. */
  row: Record<string, unknown>;
  /** Collapsed tables: the observation's range key, as exact decimal text. */
  rangeKey?: string;
  /** Collapsed tables: the tie-break rank of the observation. */
  rank?: number;
  /**
   * Repairs only: when the validator saw the divergence (the database's clock). The
   * repair read the source consistently after that moment, so it replaces whatever was
   * written here before it, whatever its position; anything written later goes through
   * the ordering guard as usual.
   */
  seenAt?: string;
}

/** An item that cannot be mapped; the message names the table, the key and the cause. */
export class MappingError extends Error {
  constructor(readonly table: string, readonly key: string, readonly cause_: string) {
    super(`${table} ${key}: ${cause_}`);
    this.name = "MappingError";
  }
}

/** `name=value, ...` of the source key attributes present in an item, for messages. */
export function describeKey(spec: TableSpec, item: DynamoItem): string {
  const parts = spec.sourceKey.map(({ name }) => {
    const value = item[name];
    const shown = isDynamoNumber(value) ? value.value : JSON.stringify(value ?? null);
    return `${name}=${shown}`;
  });
  return `[${parts.join(", ")}]`;
}

const MIN_MICROS = -62135596800000000n; // 0001-01-01T00:00:00Z
const MAX_MICROS = 253402300799999999n; // 9999-12-31T23:59:59.999999Z
const MIN_MS = -62135596800000;
const MAX_MS = 253402300799999;
const WHOLE = /^-?(0|[1-9]\d*)$/;

/**
 * An epoch number (exact decimal text) as an ISO-8601 timestamp with microseconds,
 * computed exactly (no rounding through a double); digits below a microsecond are cut.
 */
export function epochToIso(text: string, unit: "seconds" | "millis"): string {
  // Whole seconds or milliseconds within the years 1 to 9999 (nearly every epoch) are
  // exact as doubles: the same result without BigInt.
  if (text.length <= (unit === "seconds" ? 12 : 15) && WHOLE.test(text)) {
    const ms = unit === "seconds" ? Number(text) * 1000 : Number(text);
    if (ms >= MIN_MS && ms <= MAX_MS) return `${isoOfEpochMs(ms)}000Z`;
  }
  const { sign, digits, exponent } = decimalParts(text);
  let micros = sign === 0 ? 0n : BigInt(digits) * BigInt(sign);
  const scale = exponent + (unit === "seconds" ? 6 : 3);
  micros = scale >= 0 ? micros * 10n ** BigInt(scale) : micros / 10n ** BigInt(-scale);
  if (micros < MIN_MICROS || micros > MAX_MICROS) {
    throw new RangeError(`${text} epoch ${unit} is outside the years 1 to 9999`);
  }
  let ms = micros / 1000n;
  let rest = micros % 1000n;
  if (rest < 0n) {
    ms -= 1n;
    rest += 1000n;
  }
  return `${isoOfEpochMs(Number(ms))}${String(rest).padStart(3, "0")}Z`;
}

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?(Z|[+-](\d{2})(?::?(\d{2}))?)?$/;

/**
 * Whether a string is an ISO-8601 date or timestamp that Postgres reads the same way:
 * a real calendar day and time, and a zone offset Postgres accepts (up to ±15:59). A
 * date alone takes `Z` or a positive offset, not a negative one: Postgres reads
 * `2024-03-01-05:00` as a date with a fourth field and refuses it (22007; tried on
 * Postgres 15), while `2024-03-01+05:00` is the day's midnight at +05.
 */
export function isIsoTimestamp(text: string): boolean {
  return isoParts(text) !== null;
}

/** The parts of an ISO-8601 date or timestamp that Postgres reads the same way, else null. */
function isoParts(text: string): RegExpExecArray | null {
  const m = ISO.exec(text);
  if (!m) return null;
  if (m[4] === undefined && m[7]?.startsWith("-")) return null;
  // Absent parts (a date alone, no seconds, no zone) read as 0: `+undefined` is NaN.
  const part = (i: number) => m[i] === undefined ? 0 : +m[i];
  return isCalendarDay(+m[1], +m[2], +m[3]) && part(4) < 24 && part(5) < 60 &&
      part(6) < 60 && part(8) <= 15 && part(9) < 60
    ? m
    : null;
}

/**
 * An ISO-8601 timestamp with its zone: one written without reads as UTC, as the sync has
 * always read it, but said so (`Z`), so that Postgres reads it the same whatever the
 * session's time zone, which is the database's (the hosted pooler passes no client's
 * zone on, sync_db.ts): UTC by default, and an admin may change it.
 */
export function withZone(text: string, parts = ISO.exec(text)): string {
  return parts && parts[7] === undefined ? `${text}Z` : text;
}

/** A table's columns as the mapping walks them, made once per table. */
const COLUMNS = new Map<TableSpec, { column: string; from: string[]; type: ColumnType }[]>();

function columnsOf(spec: TableSpec) {
  let columns = COLUMNS.get(spec);
  if (!columns) {
    columns = Object.entries(spec.columns).map(([column, { from, type }]) => ({
      column,
      from: [from].flat(),
      type,
    }));
    COLUMNS.set(spec, columns);
  }
  return columns;
}

function columnValue(type: ColumnType, value: DynamoValue, attribute: string): unknown {
  if (value === null) return null;
  switch (type) {
    case "epoch_seconds":
    case "epoch_millis": {
      const text = (value as { value: string }).value;
      try {
        return epochToIso(text, type === "epoch_seconds" ? "seconds" : "millis");
      } catch (error) {
        if (error instanceof RangeError) throw new ValueError(attribute, error.message);
        throw error;
      }
    }
    case "iso_timestamp": {
      // An empty string (DynamoDB has allowed them outside keys since 2020) is no time.
      if ((value as string).trim() === "") return null;
      const parts = isoParts(value as string);
      if (parts === null) {
        const m = (value as string).match(ISO);
        const why = m && (Number(m[8] ?? 0) > 15 || Number(m[9] ?? 0) > 59)
          ? ` (its zone offset ${m[7]} is beyond Postgres's ±15:59)`
          : "";
        throw new ValueError(
          attribute,
          `expected an ISO-8601 timestamp, got ${JSON.stringify(value)}${why}`,
        );
      }
      return withZone(value as string, parts);
    }
    default:
      return value;
  }
}

/**
 * The attribute of `item` a column of `from` (its attribute, then its fallbacks) shows:
 * the first that holds a value; a NULL one gives way to a fallback after it (actions'
 * `type` after `action_type`), and is the column's only when all are. Undefined when the
 * item has none of them. The write-back writes an edit of the column to this attribute.
 */
export function shownAttribute(
  from: readonly string[],
  item: Record<string, unknown>,
): string | undefined {
  return from.find((name) => item[name] !== undefined && item[name] !== null) ??
    from.find((name) => item[name] !== undefined);
}

/**
 * The change an item makes: an upsert of its row, or a delete when the registry's
 * `deletedFlag` is true. Throws {@link MappingError} when the item does not fit.
 */
export function itemToChange(spec: TableSpec, item: DynamoItem, position: Position): Change {
  const problem = itemProblem(spec, item);
  if (problem !== null) throw new MappingError(spec.sourceTable, describeKey(spec, item), problem);
  if (spec.deletedFlag && item[spec.deletedFlag] === true) {
    return keyToChange(spec, item, position);
  }
  const row: Record<string, unknown> = {};
  const consumed = new Set<string>();
  try {
    for (const { column, from, type } of columnsOf(spec)) {
      const attribute = shownAttribute(from, item);
      if (attribute === undefined) {
        row[column] = null;
        continue;
      }
      consumed.add(attribute);
      row[column] = columnValue(type, item[attribute], attribute);
    }
  } catch (error) {
    // Only a value the item carries is a mapping problem; anything else is a bug.
    if (error instanceof ValueError) {
      throw new MappingError(spec.sourceTable, describeKey(spec, item), error.message);
    }
    throw error;
  }
  const rest: Record<string, DynamoValue> = {};
  for (const name in item) {
    if (Object.hasOwn(item, name) && !consumed.has(name)) {
      rest[name] = item[name];
    }
  }
  row[spec.catchAll] = rest;
  return { op: "upsert", row, ...collapseFields(spec, item), ...position };
}

/** The delete of the row (or observation) that a key identifies. */
export function keyToChange(spec: TableSpec, keys: DynamoItem, position: Position): Change {
  const key = describeKey(spec, keys);
  const problem = keyProblem(spec, keys);
  if (problem !== null) throw new MappingError(spec.sourceTable, key, problem);
  const row: Record<string, unknown> = {};
  for (const column of spec.targetKey) {
    const from = [spec.columns[column].from].flat()[0];
    row[column] = keys[from];
  }
  return { op: "delete", row, ...collapseFields(spec, keys), ...position };
}

function collapseFields(spec: TableSpec, item: DynamoItem): Pick<Change, "rangeKey" | "rank"> {
  if (!spec.collapse) return {};
  const range = item[spec.collapse.rangeAttribute];
  const rankBy = spec.collapse.rank;
  // Its own keys only: a status of "constructor" or "__proto__" is no rank.
  const value = rankBy && String(item[rankBy.attribute]);
  return {
    rangeKey: isDynamoNumber(range) ? range.value : String(range),
    rank: rankBy && Object.hasOwn(rankBy.order, value!) ? rankBy.order[value!] : 0,
  };
}
