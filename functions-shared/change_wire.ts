/**
 * The one declared shape of a change on its way from TypeScript to SQL: the JSON objects
 * that `sync.merge_changes(target, changes jsonb)` reads, field for field the composite
 * type `sync.change` (supabase/migrations/20261128000300_merge.sql). TypeScript names are
 * camelCase, the wire's are snake_case; this module is the only place that knows both.
 * Both ends are tested against each other: `change_wire_test.ts` here, and
 * `tests/registry_database_test.ts`, which compares {@link CHANGE_WIRE_FIELDS} with the
 * type's attributes in the database; `sync.merge_changes` refuses a field it does not know.
 *
 * @module
 */

import { described, isObject, oneOf, type ShapeProblem, strictObject } from "./json_shape.ts";
import type { Check, Field } from "./json_shape.ts";
import { DynamoNumber, isDynamoNumber } from "./dynamo_numbers.ts";
import type { Change } from "./transform.ts";

/** A change as `sync.merge_changes` reads it (the composite type `sync.change`). */
export interface ChangeWire {
  op: "upsert" | "delete";
  /** Target column -> value; a delete carries the key columns only. */
  row: Record<string, unknown>;
  /** The stream record's SequenceNumber (exact digits), or null for a read. */
  seq: string | null;
  /** ApproximateCreationDateTime, or the time of the read (ISO-8601). */
  changed_at: string;
  source: Change["source"];
  /** Collapsed tables: the observation's range key, every digit kept. */
  range_key?: DynamoNumber;
  /** Collapsed tables: the tie-break rank. */
  rank?: number;
  /** Repairs: when the validator saw the divergence. */
  seen_at?: string;
}

/** The wire's fields, in the order of the SQL type's attributes. */
export const CHANGE_WIRE_FIELDS: readonly (keyof ChangeWire)[] = [
  "op",
  "row",
  "seq",
  "changed_at",
  "source",
  "range_key",
  "rank",
  "seen_at",
];

/** A change in its wire form (fields a change does not have are left out). */
export function toWire(change: Change): ChangeWire {
  return {
    op: change.op,
    row: change.row,
    seq: change.seq,
    changed_at: change.changedAt,
    source: change.source,
    range_key: change.rangeKey === undefined ? undefined : new DynamoNumber(change.rangeKey),
    rank: change.rank,
    seen_at: change.seenAt,
  };
}

/** A time as the wire carries it: ISO-8601 text. */
const isoTime: Check = (value, path) =>
  typeof value === "string" && !Number.isNaN(Date.parse(value))
    ? undefined
    : { path, message: `expected an ISO-8601 time, not ${described(value)}` };

/** A stream record's SequenceNumber (its digits, as text), or null. */
const sequence: Check = (value, path) =>
  value === null || (typeof value === "string" && /^[0-9]{1,40}$/.test(value)) ? undefined : {
    path,
    message: `expected a sequence number (digits, as text) or null, not ${described(value)}`,
  };

/** An exact number (parsed with `parseJsonExact`), whole when `whole`. */
function exactNumber(whole: boolean): Check {
  return (value, path) =>
    isDynamoNumber(value) && (!whole || /^-?[0-9]+$/.test(value.value)) ? undefined : {
      path,
      message: `expected ${whole ? "a whole number" : "a number"}, not ${described(value)}`,
    };
}

/** The wire's fields, each with its check (held equal to {@link CHANGE_WIRE_FIELDS}). */
export const WIRE_FIELD_CHECKS: Record<keyof ChangeWire, Field> = {
  op: { check: oneOf(["upsert", "delete"]) },
  row: {
    check: (v, path) =>
      isObject(v) ? undefined : { path, message: `expected an object, not ${described(v)}` },
  },
  seq: { check: sequence },
  changed_at: { check: isoTime },
  source: { check: oneOf(["stream", "backfill", "repair", "direct"]) },
  range_key: { check: exactNumber(false), optional: true },
  rank: { check: exactNumber(true), optional: true },
  seen_at: { check: isoTime, optional: true },
};

const wireShape = strictObject(WIRE_FIELD_CHECKS);

/**
 * A change read back from its wire form, as a dead letter of a change Postgres refused
 * keeps it (sync_db.ts), parsed with `parseJsonExact` so that every number keeps its
 * digits: the change, or where its shape is wrong (an admin's edit, say).
 */
export function changeFromWire(
  value: unknown,
  path: (string | number)[],
): { change: Change } | { problem: ShapeProblem } {
  const problem = wireShape(value, path);
  if (problem) return { problem };
  const wire = value as Record<string, unknown>;
  const change: Change = {
    op: wire.op as Change["op"],
    row: wire.row as Record<string, unknown>,
    seq: wire.seq as string | null,
    changedAt: wire.changed_at as string,
    source: wire.source as Change["source"],
  };
  if (wire.range_key !== undefined) change.rangeKey = (wire.range_key as DynamoNumber).value;
  if (wire.rank !== undefined) change.rank = Number((wire.rank as DynamoNumber).value);
  if (wire.seen_at !== undefined) change.seenAt = wire.seen_at as string;
  return { change };
}
