/**
 * The write-back's reverse mapping (docs/interfaces.md, "write-back"): an admin's edit of
 * a mirror row, as `sync.write_backs` recorded it (the edited columns' values before and
 * after), becomes one DynamoDB `UpdateItem` of the item the row was built from:
 * - SET of each changed attribute and REMOVE of each one the edit emptied;
 * - a ConditionExpression that the item still holds, for every attribute the update
 *   touches, exactly the value read (`attribute_not_exists` when it had none), and that
 *   the item exists (an update never creates an item).
 *
 * The item is read consistently first and mapped by the sync's own code
 * (transform.ts): when the edited columns' source values are no longer the values the
 * row held, the item changed in between and the edit is a conflict without a write.
 * Otherwise the condition pins what was read, so a change racing the update fails it.
 *
 * Which attribute a column goes to: the one that fed it (a column fed by alternatives,
 * `action_type` / `type`, goes to the one the item has; the first when it has none).
 * Catch-all keys go back to their attributes, only those of `catchAllAttributes`
 * (table_registry.ts; the writer's IAM identity allows no other). Key columns, range
 * keys and the `sync_*` columns are never written. Collapsed tables: the edit goes to the
 * observation the row shows (its `sync_range_key`); a row without one is refused.
 *
 * @module
 */

import type { UpdateItemInput } from "./dynamo_commands.ts";
import { type AttributeMap, type DynamoItem, fromDynamo, ValueError } from "./dynamo_decoder.ts";
import { itemToChange, MappingError, shownAttribute } from "./transform.ts";
import type { TableSpec } from "./table_registry.ts";
import { ConditionalUpdate } from "./conditional_update.ts";
import { editedKeys, sameKeys, writeCatchAll } from "./write_back_catch_all.ts";
import { columnToAttribute, sameColumnValue, WriteBackValueError } from "./write_back_values.ts";

/** One recorded edit, as the function reads it from `sync.write_backs`. */
export interface WriteBackEdit {
  id: number;
  /** The target row's key columns and their values (text). */
  rowKey: Record<string, string>;
  /** The edited data columns. */
  columns: string[];
  /** Column -> value before the edit (see write_back_values.ts for the forms). */
  before: Record<string, unknown>;
  /** Column -> value after the edit. */
  after: Record<string, unknown>;
  /** Collapsed tables: the range key of the observation the row showed. */
  rangeKey: string | null;
}

/** What to do with one edit, given the item as read. */
export type WriteBackPlan =
  | { kind: "update"; input: UpdateItemInput }
  /** The edit changes nothing in the item (it already holds the edit). */
  /**
   * The item holds the edit; `rowDiffers`: in values equal to DynamoDB that the row shows
   * otherwise (a set's members in another order), so the row is put back from the source.
   */
  | { kind: "noop"; rowDiffers?: boolean }
  /** The item changed since the row was built: `source` holds its edited columns. */
  | { kind: "conflict"; detail: string; source: Record<string, unknown> }
  /** The edit cannot be written back; retrying does not help. */
  | { kind: "refused"; detail: string };

/** `table [col=value, ...]`, the prefix of every message about an edit. */
export function describeEdit(spec: TableSpec, edit: Pick<WriteBackEdit, "rowKey" | "rangeKey">) {
  const parts = spec.targetKey.map((k) => `${k}=${JSON.stringify(edit.rowKey[k] ?? null)}`);
  if (spec.collapse && edit.rangeKey !== null) {
    parts.push(`${spec.collapse.rangeAttribute}=${edit.rangeKey}`);
  }
  return `${spec.targetTable} [${parts.join(", ")}]`;
}

/**
 * The DynamoDB key of the item an edit writes to, or why there is none (a collapsed row
 * without the range key of the observation it shows).
 */
export function itemKeyOf(spec: TableSpec, edit: WriteBackEdit): AttributeMap | string {
  const key: AttributeMap = {};
  for (const column of spec.targetKey) {
    const attribute = [spec.columns[column].from].flat()[0];
    const type = spec.sourceKey.find((k) => k.name === attribute)!.type;
    key[attribute] = type === "S" ? { S: edit.rowKey[column] } : { N: edit.rowKey[column] };
  }
  if (spec.collapse) {
    if (edit.rangeKey === null) {
      return `${
        describeEdit(spec, edit)
      }: the row names no observation (sync_range_key is null), ` +
        "so there is no item to write the edit to";
    }
    const range = spec.sourceKey[1];
    key[range.name] = range.type === "S" ? { S: edit.rangeKey } : { N: edit.rangeKey };
  }
  return key;
}

/** The source attributes that must never be written: the item's key. */
function keyAttributes(spec: TableSpec): Set<string> {
  return new Set(spec.sourceKey.map((k) => k.name));
}

/** Builds the update (or says why not) for one edit and the item read consistently. */
export function planWriteBack(
  spec: TableSpec,
  edit: WriteBackEdit,
  key: AttributeMap,
  raw: AttributeMap,
): WriteBackPlan {
  const where = describeEdit(spec, edit);
  let item: DynamoItem;
  let mapped: Record<string, unknown>;
  try {
    // A value Postgres cannot hold anywhere in the item (a NUL, a lone surrogate, a number
    // out of range), even in an attribute no column maps, makes it unmappable: refused at
    // once, never thrown (a throw was retried as transient, then failed whole runs).
    item = fromDynamo(raw);
    mapped = itemToChange(spec, item, {
      seq: null,
      changedAt: new Date(0).toISOString(),
      source: "direct",
    }).row;
  } catch (error) {
    if (error instanceof MappingError) {
      return { kind: "refused", detail: `${where}: the item cannot be mapped: ${error.cause_}` };
    }
    if (error instanceof ValueError) {
      return { kind: "refused", detail: `${where}: the item cannot be mapped: ${error.message}` };
    }
    throw error;
  }
  // An Amplify item soft-deleted since: it maps to no row, and an update would be written
  // to an item no client sees (AppSync's own deletes set the flag and keep the item).
  if (spec.deletedFlag && item[spec.deletedFlag] === true) {
    return {
      kind: "conflict",
      detail: `${where}: the item was deleted in DynamoDB (${spec.deletedFlag} is true) ` +
        "since the row was built; the edit was not applied",
      source: Object.fromEntries(edit.columns.map((c) => [c, null])),
    };
  }
  // An earlier attempt that wrote the edit and died before it was recorded: the item
  // holds the edit already, and writing it again would only fail its condition.
  // Of the catch-all, only the keys the edit changes count, here and below: any other
  // may have changed in DynamoDB since, and both stand.
  const catchAllKeys = editedKeys(edit.before[spec.catchAll], edit.after[spec.catchAll]);
  const holds = (column: string, row: Record<string, unknown>) =>
    column === spec.catchAll
      ? sameKeys(mapped[column], row[column], catchAllKeys)
      : sameColumnValue(spec.columns[column]?.type ?? "jsonb", mapped[column], row[column]);
  if (edit.columns.every((column) => holds(column, edit.after))) return { kind: "noop" };
  // The item must still hold what the row was built from, column by column.
  const changed = edit.columns.filter((column) => !holds(column, edit.before));
  if (changed.length > 0) {
    // The source's values go in `source_values`, not the detail: the detail is logged,
    // and a lead's values (an email, a message) have no place in a function's log.
    const source = Object.fromEntries(edit.columns.map((c) => [c, mapped[c] ?? null]));
    return {
      kind: "conflict",
      detail: `${where}: the item changed in DynamoDB since the row was built (${
        changed.join(", ")
      }: its values now are in source_values); the edit was not applied`,
      source,
    };
  }
  const keys = keyAttributes(spec);
  // What the item holds already is not written (its condition still is): an edit that
  // changes only how the row shows a value (a set's members reordered) writes nothing,
  // and is a no-op whose row is put back as the source shows it (`rowDiffers`).
  const update = new ConditionalUpdate(raw);
  const write = update.write.bind(update);
  try {
    for (const column of edit.columns) {
      const after = edit.after[column];
      if (column === spec.catchAll) {
        const problem = writeCatchAll(spec, catchAllKeys, after, item, write);
        if (problem) return { kind: "refused", detail: `${where}: ${problem}` };
        continue;
      }
      const columnSpec = spec.columns[column];
      if (!columnSpec) {
        return { kind: "refused", detail: `${where}: ${column} is not a column the sync maps` };
      }
      const from = [columnSpec.from].flat();
      // The attribute the row shows (transform.ts): an older action's NULL action_type
      // gives way to its `type`, so an edit of the column is an edit of `type`.
      const attribute = shownAttribute(from, item) ?? from[0];
      if (keys.has(attribute)) {
        return {
          kind: "refused",
          detail: `${where}: column ${column} comes from the item's key attribute ${attribute}, ` +
            "which an update cannot change",
        };
      }
      // A null column is an absent attribute, or a NULL one when the item holds NULL.
      const value = after === null && raw[attribute]?.NULL === undefined
        ? undefined
        : columnToAttribute(columnSpec.type, after, item[attribute], column);
      write(attribute, value);
      // The column shows the first alternative the item has: emptied, it must have none,
      // or the next one would show (and the edit, reported applied, would not). A NULL
      // alternative goes with it; one holding a value is refused, not deleted: the row
      // shows it in the catch-all column, which the edit did not touch (a review found an
      // emptied action_type deleting the item's `type`, a value the admin never edited).
      if (value === undefined) {
        for (const other of from) {
          if (other === attribute || item[other] === undefined || keys.has(other)) continue;
          if (item[other] !== null) {
            return {
              kind: "refused",
              detail: `${where}: ${column} cannot be emptied: the item also holds ${other}, ` +
                `which ${column} shows when ${attribute} is absent; emptying it would delete ` +
                `${other} (shown in ${spec.catchAll}), which this edit did not change`,
            };
          }
          write(other, undefined);
        }
      }
      // Every alternative the column may show is held to what was read, written or not:
      // one an application set meanwhile (`action_type` beside the `type` written) would
      // show in the row instead of the edit, which would be reported applied (a review
      // found it). The condition fails instead, and the re-read names a conflict.
      for (const other of from) if (!keys.has(other)) update.pin(other);
    }
  } catch (error) {
    if (error instanceof WriteBackValueError) {
      return { kind: "refused", detail: `${where}: ${error.message}` };
    }
    throw error;
  }
  // Every column differs from the item as the row shows it (above), yet the item holds
  // every value: the row shows them otherwise than the source does.
  if (update.changesNothing()) return { kind: "noop", rowDiffers: true };
  if (spec.deletedFlag) moveAppSyncVersion(raw, update);
  return { kind: "update", input: update.input(spec.sourceTable, key) };
}

/**
 * AppSync's versioning (Amplify DataStore, the tables with a soft-delete flag): its
 * clients sync by _lastChangedAt and its conflict detection compares _version. An update
 * that left them alone would reach no client, and a client's save with the old _version
 * would pass AppSync's check and overwrite it. So they move on as AppSync's own writes
 * move them, on condition of the values read.
 */
function moveAppSyncVersion(raw: AttributeMap, update: ConditionalUpdate): void {
  const version = raw._version?.N;
  if (version !== undefined && !update.names("_version")) {
    update.write("_version", { N: String(BigInt(version) + 1n) });
  }
  const lastChanged = raw._lastChangedAt?.N;
  if (lastChanged !== undefined && !update.names("_lastChangedAt")) {
    // Never back in time: this function's clock may lag the one AppSync stamped with,
    // and a client syncing by _lastChangedAt would take the edit for an older change.
    update.write("_lastChangedAt", { N: String(Math.max(Date.now(), Number(lastChanged) + 1)) });
  }
  // Amplify's @model resolvers set updatedAt on every update: an admin's edit moves it
  // on too, unless it set it, in the item's ISO form, never back in time.
  const updatedAt = raw.updatedAt?.S;
  const updatedAtMs = updatedAt === undefined ? NaN : Date.parse(updatedAt);
  if (Number.isFinite(updatedAtMs) && !update.names("updatedAt")) {
    update.write("updatedAt", { S: new Date(Math.max(Date.now(), updatedAtMs + 1)).toISOString() });
  }
}
