/**
 * From what the webhook receives to changes of target rows: a DynamoDB Streams record
 * (the table read from its `eventSourceARN`), or a person's direct request. What cannot
 * be mapped becomes a dead letter: the record whole, with the reason.
 *
 * @module
 */

import { type DynamoItem, DynamoNumber, type DynamoValue, fromDynamo } from "./dynamo_codec.ts";
import {
  bySourceTable,
  byTargetTable,
  tableNameFromArn,
  type TableSpec,
} from "./table_registry.ts";
import { type Change, itemToChange, keyToChange, MappingError } from "./transform.ts";
import { attributeMapFromJson, type StreamRecord } from "./webhook_envelope.ts";

/** A change and the table it goes to. */
export interface TableChange {
  spec: TableSpec;
  change: Change;
}

/** A record that could not be mapped, kept whole. */
export interface DeadLetter {
  sourceTable: string | null;
  targetTable: string | null;
  eventId: string | null;
  record: unknown;
  reason: string;
}

/** The outcome of mapping one record. */
export type Mapped = { ok: true; value: TableChange } | { ok: false; deadLetter: DeadLetter };

/** ApproximateCreationDateTime is in seconds in Lambda's events (milliseconds in some SDKs). */
function creationTime(value: number): string {
  const ms = value > 1e11 ? value : value * 1000;
  return new Date(ms).toISOString();
}

/** Maps one stream record. */
export function mapStreamRecord(record: StreamRecord): Mapped {
  const sourceTable = tableNameFromArn(record.eventSourceARN) ?? null;
  const spec = sourceTable ? bySourceTable(sourceTable) : undefined;
  const dead = (reason: string): Mapped => ({
    ok: false,
    deadLetter: {
      sourceTable,
      targetTable: spec?.targetTable ?? null,
      eventId: record.eventID,
      record,
      reason,
    },
  });
  if (!sourceTable) return dead(`eventSourceARN ${record.eventSourceARN} names no DynamoDB table`);
  if (!spec) return dead(`no target table is registered for DynamoDB table ${sourceTable}`);
  const position = {
    seq: record.dynamodb.SequenceNumber,
    changedAt: creationTime(record.dynamodb.ApproximateCreationDateTime),
    source: "stream" as const,
  };
  try {
    if (record.eventName === "REMOVE") {
      const keys = fromDynamo(attributeMapFromJson(record.dynamodb.Keys));
      return { ok: true, value: { spec, change: keyToChange(spec, keys, position) } };
    }
    if (!record.dynamodb.NewImage) {
      return dead(
        `${sourceTable} ${record.eventName} record ${record.eventID} has no NewImage: ` +
          "the stream must carry NEW_IMAGE or NEW_AND_OLD_IMAGES",
      );
    }
    const item = fromDynamo(attributeMapFromJson(record.dynamodb.NewImage));
    return { ok: true, value: { spec, change: itemToChange(spec, item, position) } };
  } catch (error) {
    if (error instanceof MappingError || error instanceof TypeError) {
      return dead((error as Error).message);
    }
    throw error;
  }
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
  const position = { seq: null, changedAt: readAt.toISOString(), source };
  try {
    const decoded = fromDynamo(item as Parameters<typeof fromDynamo>[0]);
    return { ok: true, value: { spec, change: itemToChange(spec, decoded, position) } };
  } catch (error) {
    if (error instanceof MappingError || error instanceof TypeError) {
      return {
        ok: false,
        deadLetter: {
          sourceTable: spec.sourceTable,
          targetTable: spec.targetTable,
          eventId: null,
          record: { sourceTable: spec.sourceTable, item: jsonAttributeMap(item) },
          reason: (error as Error).message,
        },
      };
    }
    throw error;
  }
}

/** An attribute map as JSON-safe DynamoDB JSON (binary as base64), for keeping it whole. */
export function jsonAttributeMap(item: Record<string, unknown>): unknown {
  const walk = (v: unknown): unknown => {
    if (v instanceof Uint8Array) return btoa(String.fromCharCode(...v));
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
function plainToItem(value: unknown): DynamoValue {
  if (value instanceof DynamoNumber) return value;
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (Array.isArray(value)) return value.map(plainToItem);
  if (typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, plainToItem(v)]),
    );
  }
  throw new TypeError(`cannot use a ${typeof value} as a DynamoDB value`);
}

/**
 * Maps a person's direct request. `data` must come from {@link parseJsonExact}, so that
 * its numbers keep every digit.
 */
export function mapDirect(
  body: { table: string; action: "UPSERT" | "DELETE"; data: Record<string, unknown> },
  now: Date = new Date(),
): Mapped {
  const spec = byTargetTable(body.table);
  const dead = (reason: string): Mapped => ({
    ok: false,
    deadLetter: {
      sourceTable: spec?.sourceTable ?? null,
      targetTable: spec ? body.table : null,
      eventId: null,
      record: body,
      reason,
    },
  });
  if (!spec) return dead(`${body.table} is not a target table`);
  const position = { seq: null, changedAt: now.toISOString(), source: "direct" as const };
  try {
    const item = plainToItem(body.data) as DynamoItem;
    const change = body.action === "DELETE"
      ? keyToChange(spec, item, position)
      : itemToChange(spec, item, position);
    return { ok: true, value: { spec, change } };
  } catch (error) {
    if (error instanceof MappingError || error instanceof TypeError) {
      return dead((error as Error).message);
    }
    throw error;
  }
}

/** JSON.parse that keeps each number's exact text as a {@link DynamoNumber}. */
export function parseJsonExact(text: string): unknown {
  // The reviver's third argument (the number's source text) is TC39's JSON.parse
  // source text access, in V8 and so in Deno and Node 20+.
  // deno-lint-ignore no-explicit-any
  return (JSON.parse as any)(
    text,
    (_key: string, value: unknown, context?: { source?: string }) =>
      typeof value === "number" && context?.source ? new DynamoNumber(context.source) : value,
  );
}
