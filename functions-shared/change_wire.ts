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

import { DynamoNumber } from "./dynamo_numbers.ts";
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
