/**
 * From what the webhook receives to changes of target rows: a DynamoDB Streams record
 * (the table read from its `eventSourceARN`), or a person's direct request. What cannot
 * be mapped becomes a dead letter: the record whole, with the reason, the position it
 * was streamed or read at and the key of the row it is about (docs/sync-semantics.md, "Bad
 * input"). Only a {@link MappingError} is a mapping problem; any other error is a bug
 * and propagates.
 *
 * @module
 */

import {
  checkPlain,
  type DynamoItem,
  type DynamoValue,
  fromDynamo,
  stringProblem,
  ValueError,
} from "./dynamo_decoder.ts";
import { bytesToBase64 } from "./dynamo_encoder.ts";
import { DynamoNumber, isDynamoNumber, numberProblem } from "./dynamo_numbers.ts";
import { byTargetTable, type TableSpec } from "./table_registry.ts";
import {
  type Change,
  describeKey,
  itemToChange,
  keyToChange,
  MappingError,
  type Position,
} from "./transform.ts";
import { readStreamArn } from "./stream_arn.ts";
import { attributeMapFromJson } from "./attribute_binaries.ts";
import type { StreamRecord } from "./webhook_envelope.ts";

/** A record that could not be mapped (or applied), kept whole. */
export interface DeadLetter {
  sourceTable: string | null;
  targetTable: string | null;
  /** The stream record's eventID; null for a Scan read or a direct request. */
  eventId: string | null;
  record: unknown;
  reason: string;
  /**
   * Where the record stands: the stream record's SequenceNumber and
   * ApproximateCreationDateTime, the Scan's read time or the request's time. A replay
   * applies it there, so a stale copy cannot beat newer changes. Null when the record
   * carries no usable time.
   */
  position: Position | null;
  /** The target row's key (`{"action_id": "a-1"}`), when the record names one. */
  rowKey: Record<string, unknown> | null;
}

/** A change, the table it goes to, and the dead letter it becomes if Postgres refuses it. */
export interface TableChange {
  spec: TableSpec;
  change: Change;
  /** The dead letter of the record this change came from, with `reason` (sync_db.ts). */
  deadLetter?: (reason: string) => DeadLetter;
}

/** The outcome of mapping one record. */
export type Mapped = { ok: true; value: TableChange } | { ok: false; deadLetter: DeadLetter };

/** The last creation time's ISO text: a batch's records mostly share their second. */
let lastCreated = { value: NaN, iso: null as string | null };

/** ApproximateCreationDateTime is in seconds in Lambda's events (milliseconds in some SDKs). */
function creationTime(value: number): string | null {
  if (value === lastCreated.value) return lastCreated.iso;
  const ms = value > 1e11 ? value : value * 1000;
  // 9999-12-31T23:59:59.999Z: later times have no ISO-8601 form Postgres reads.
  const iso = Number.isFinite(ms) && ms <= 253402300799999 ? new Date(ms).toISOString() : null;
  lastCreated = { value, iso };
  return iso;
}

/** A key attribute's value, from DynamoDB JSON or a plain (direct) value, if storable. */
function keyValue(value: unknown): string | DynamoNumber | undefined {
  if (typeof value === "string") return stringProblem(value) ? undefined : value;
  if (isDynamoNumber(value)) return numberProblem(value.value) ? undefined : value;
  const av = value as { S?: unknown; N?: unknown } | undefined;
  if (typeof av?.S === "string") return keyValue(av.S);
  if (typeof av?.N === "string") return numberProblem(av.N) ? undefined : new DynamoNumber(av.N);
  return undefined;
}

/**
 * The target row's key of an item or key map (DynamoDB JSON, or plain values), as the
 * row_key of sync.tombstones reads (`{"action_id": "a-1"}`); null when a key attribute
 * is missing or cannot be stored.
 */
export function rowKeyOf(
  spec: TableSpec,
  item: Record<string, unknown>,
): Record<string, unknown> | null {
  const key: Record<string, unknown> = {};
  for (const column of spec.targetKey) {
    const value = keyValue(item[[spec.columns[column].from].flat()[0]]);
    if (value === undefined) return null;
    key[column] = value;
  }
  return key;
}

/** `[name=value, ...]` of the key attributes in DynamoDB JSON (for items that do not decode). */
function describeRawKey(spec: TableSpec, item: Record<string, unknown>): string {
  const parts = spec.sourceKey.map(({ name }) => {
    const av = item[name] as { S?: unknown; N?: unknown } | undefined;
    return `${name}=${typeof av?.N === "string" ? av.N : JSON.stringify(av?.S ?? null)}`;
  });
  return `[${parts.join(", ")}]`;
}

/** Decodes (and checks) an item; a value Postgres cannot store is a {@link MappingError}. */
function decode(spec: TableSpec, item: Record<string, unknown>, fromJson: boolean): DynamoItem {
  try {
    return fromDynamo(
      fromJson ? attributeMapFromJson(item) : item as Parameters<typeof fromDynamo>[0],
    );
  } catch (error) {
    if (error instanceof ValueError) {
      throw new MappingError(spec.sourceTable, describeRawKey(spec, item), error.message);
    }
    throw error;
  }
}

/** Maps one stream record. */
export function mapStreamRecord(record: StreamRecord): Mapped {
  const { sourceTable, spec, elsewhere } = readStreamArn(record.eventSourceARN);
  const changedAt = creationTime(record.dynamodb.ApproximateCreationDateTime);
  const position = changedAt === null
    ? null
    : { seq: record.dynamodb.SequenceNumber, changedAt, source: "stream" as const };
  const letter = (reason: string): DeadLetter => ({
    sourceTable,
    targetTable: spec?.targetTable ?? null,
    eventId: record.eventID,
    record,
    reason,
    position,
    rowKey: spec ? rowKeyOf(spec, record.dynamodb.Keys) : null,
  });
  const dead = (reason: string): Mapped => ({ ok: false, deadLetter: letter(reason) });
  if (!sourceTable) return dead(`eventSourceARN ${record.eventSourceARN} names no DynamoDB table`);
  if (!spec) return dead(`no target table is registered for DynamoDB table ${sourceTable}`);
  if (elsewhere) {
    // A stream mapped by mistake, not a problem of the key: the letter names no row, so
    // that it holds no key's sweep or tombstone back (every key of a replica would have
    // one), and its replay cannot apply it.
    const deadLetter = letter(`DynamoDB table ${elsewhere}`);
    return { ok: false, deadLetter: { ...deadLetter, targetTable: null, rowKey: null } };
  }
  if (!position) {
    return dead(
      `${sourceTable} ${describeRawKey(spec, record.dynamodb.Keys)}: record ${record.eventID} ` +
        `has ApproximateCreationDateTime ${record.dynamodb.ApproximateCreationDateTime}, not a time`,
    );
  }
  try {
    if (record.eventName === "REMOVE") {
      const keys = decode(spec, record.dynamodb.Keys, true);
      const change = keyToChange(spec, keys, position);
      return { ok: true, value: { spec, change, deadLetter: letter } };
    }
    if (!record.dynamodb.NewImage) {
      return dead(
        `${sourceTable} ${describeRawKey(spec, record.dynamodb.Keys)}: ${record.eventName} ` +
          `record ${record.eventID} has no NewImage: ` +
          "the stream must carry NEW_IMAGE or NEW_AND_OLD_IMAGES",
      );
    }
    const item = decode(spec, record.dynamodb.NewImage, true);
    return {
      ok: true,
      value: { spec, change: itemToChange(spec, item, position), deadLetter: letter },
    };
  } catch (error) {
    if (error instanceof MappingError) return dead(error.message);
    throw error;
  }
}

/** The last read time's ISO text: a page's items share one read time. */
let lastRead = { at: NaN, iso: "" };

function isoOf(readAt: Date): string {
  const at = readAt.getTime();
  if (at !== lastRead.at) lastRead = { at, iso: readAt.toISOString() };
  return lastRead.iso;
}

/**
 * Maps an item read by a Scan at `readAt` (the backfill and the validator's repair). A
 * dead letter keeps `{"sourceTable", "item"}` with the item in DynamoDB JSON.
 */
export function mapScannedItem(
  spec: TableSpec,
  item: Record<string, unknown>,
  readAt: Date,
  source: "backfill" | "repair" = "backfill",
): Mapped {
  const position = { seq: null, changedAt: isoOf(readAt), source };
  const letter = (reason: string): DeadLetter => ({
    sourceTable: spec.sourceTable,
    targetTable: spec.targetTable,
    eventId: null,
    record: { sourceTable: spec.sourceTable, item: jsonAttributeMap(item) },
    reason,
    position,
    rowKey: rowKeyOf(spec, item),
  });
  try {
    const change = itemToChange(spec, decode(spec, item, false), position);
    return { ok: true, value: { spec, change, deadLetter: letter } };
  } catch (error) {
    if (error instanceof MappingError) return { ok: false, deadLetter: letter(error.message) };
    throw error;
  }
}

/** An attribute map as JSON-safe DynamoDB JSON (binary as base64), for keeping it whole. */
export function jsonAttributeMap(item: Record<string, unknown>): unknown {
  const walk = (v: unknown): unknown => {
    if (v instanceof Uint8Array) return bytesToBase64(v);
    if (v instanceof Set) return [...v].map(walk);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return walk(item);
}

/** Plain JSON (numbers as their exact text) as a DynamoDB item: objects are maps. */
function plainToItem(value: unknown, path: string): DynamoValue {
  if (value instanceof DynamoNumber) return value;
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map((v, i) => plainToItem(v, `${path}[${i}]`));
  if (typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map((
        [k, v],
      ) => [k, plainToItem(v, path ? `${path}.${k}` : k)]),
    );
  }
  throw new ValueError(path, `cannot use a ${typeof value} as a DynamoDB value`);
}

/**
 * Maps a person's direct request. `data` must come from `parseJsonExact` (dynamo_numbers.ts), so that
 * its numbers keep every digit.
 */
export function mapDirect(
  body: { table: string; action: "UPSERT" | "DELETE"; data: Record<string, unknown> },
  now: Date = new Date(),
): Mapped {
  const spec = byTargetTable(body.table);
  const position = { seq: null, changedAt: now.toISOString(), source: "direct" as const };
  const letter = (reason: string): DeadLetter => ({
    sourceTable: spec?.sourceTable ?? null,
    targetTable: spec ? body.table : null,
    eventId: null,
    record: body,
    reason,
    position,
    rowKey: spec ? rowKeyOf(spec, body.data) : null,
  });
  if (!spec) return { ok: false, deadLetter: letter(`${body.table} is not a target table`) };
  try {
    let item: DynamoItem;
    try {
      checkPlain(body.data);
      item = plainToItem(body.data, "") as DynamoItem;
    } catch (error) {
      if (!(error instanceof ValueError)) throw error;
      throw new MappingError(
        spec.sourceTable,
        describeKey(spec, body.data as DynamoItem),
        error.message,
      );
    }
    const change = body.action === "DELETE"
      ? keyToChange(spec, item, position)
      : itemToChange(spec, item, position);
    return { ok: true, value: { spec, change, deadLetter: letter } };
  } catch (error) {
    if (error instanceof MappingError) return { ok: false, deadLetter: letter(error.message) };
    throw error;
  }
}
