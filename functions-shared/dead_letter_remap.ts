/**
 * A dead letter's record read back into a change (dead_letters.ts replays it): a Scan's
 * or a repair's item, a stream record, a person's direct request, or a change Postgres
 * refused in its wire form, each mapped again at the position it was read or sent at.
 * What an admin's edit of the record can leave is a reason, never a failure of the
 * others.
 *
 * @module
 */

import { mapDirect, type Mapped, mapScannedItem, mapStreamRecord } from "./record_mapping.ts";
import { parseJsonExact } from "./dynamo_numbers.ts";
import { bySourceTable } from "./table_registry.ts";
import { ValueError } from "./dynamo_decoder.ts";
import { attributeMapFromJson } from "./attribute_binaries.ts";
import { parseWebhookBody, streamRecordProblem } from "./webhook_envelope.ts";
import { described, isObject, problemText } from "./json_shape.ts";
import { attributeMapProblem } from "./webhook_attributes.ts";
import { changeFromWire } from "./change_wire.ts";

/** A dead letter as the replay reads it. */
export interface StoredLetter {
  id: string;
  record: string;
  position_at: Date | null;
  position_source: string | null;
  received_at: Date;
  source_table: string | null;
  target_table: string | null;
  row_key: string | null;
}

/** Whether two reads of a letter hold the same record at the same position. */
export function sameLetter(a: StoredLetter, b: StoredLetter): boolean {
  return a.record === b.record && a.position_source === b.position_source &&
    a.position_at?.getTime() === b.position_at?.getTime() &&
    a.received_at.getTime() === b.received_at.getTime();
}

/**
 * A replay's reason, naming the letter's table and key when it names neither table (a
 * damaged record's reason says only what is wrong where).
 */
export function namedReason(letter: StoredLetter, reason: string): string {
  const tables = [letter.target_table, letter.source_table].filter((t): t is string => !!t);
  if (tables.some((table) => reason.includes(table))) return reason;
  return `${tables[0] ?? "no known table"} ${letter.row_key ?? "(no key)"}: ${reason}`;
}

/** A dead letter that does not map, with `reason`. */
function stillDead(record: unknown, reason: string): Mapped {
  return {
    ok: false,
    deadLetter: {
      sourceTable: null,
      targetTable: null,
      eventId: null,
      record,
      reason,
      position: null,
      rowKey: null,
    },
  };
}

/**
 * Maps a dead letter's record again, at the position it was read or sent at (a stream
 * record carries its own), so that the merge's ordering guard judges it as it would have
 * then: a stale Scan copy loses to a newer stream change or tombstone.
 */
function remap(letter: StoredLetter): Mapped {
  const record = JSON.parse(letter.record);
  // An admin's edit can leave anything here: it stays a dead letter, with the reason.
  if (record === null || typeof record !== "object" || Array.isArray(record)) {
    return stillDead(record, "the dead letter's record is not a JSON object");
  }
  // Dead letters from before positions were kept: the time they were received.
  const at = new Date(letter.position_at ?? letter.received_at);
  if ("item" in record && "sourceTable" in record) {
    const spec = bySourceTable(String(record.sourceTable));
    if (!spec) {
      return stillDead(record, `no target table is registered for ${record.sourceTable}`);
    }
    if (!isObject(record.item)) {
      return stillDead(
        record,
        `record is not a scanned item at item: expected a map of attribute values, not ${
          described(record.item)
        }`,
      );
    }
    const problem = attributeMapProblem(record.item);
    if (problem) {
      return stillDead(
        record,
        `record is not a scanned item at ${
          ["item", ...problem.path].join(".")
        }: ${problem.message}`,
      );
    }
    const source = letter.position_source === "repair" ? "repair" : "backfill";
    return mapScannedItem(spec, attributeMapFromJson(record.item), at, source);
  }
  // A change Postgres refused that came from no record (a repair's delete): kept as the
  // merge reads it, and applied as it was, at its own position.
  if ("change" in record && "sourceTable" in record) return remapChange(letter, record);
  if (record && typeof record === "object" && "eventID" in record) {
    const checked = streamRecordProblem(record);
    if ("problem" in checked) {
      const { path, message } = checked.problem;
      return stillDead(record, `record is not a stream record at ${path.join(".")}: ${message}`);
    }
    return mapStreamRecord(checked.record);
  }
  // A person's direct request, checked as the webhook checks one: an edit that left it
  // without `data`, or with `action` "delete", is no request the webhook would take.
  // Kept as the webhook parsed it, with its `kind` (an admin may have left it out).
  const { kind: _, ...sent } = parseJsonExact(letter.record) as Record<string, unknown>;
  const direct = parseWebhookBody(sent);
  if (!direct.ok || direct.body.kind !== "direct") {
    const problem = direct.ok ? "a dead letter holds one record, not a batch" : direct.problem;
    return stillDead(record, `record is not a direct request at ${problem}`);
  }
  return mapDirect(direct.body, at);
}

/** A dead letter of a refused change in its wire form (sync_db.ts), read back. */
function remapChange(letter: StoredLetter, record: Record<string, unknown>): Mapped {
  const spec = bySourceTable(String(record.sourceTable));
  if (!spec) return stillDead(record, `no target table is registered for ${record.sourceTable}`);
  const exact = parseJsonExact(letter.record) as Record<string, unknown>;
  const read = changeFromWire(exact.change, ["change"]);
  if ("problem" in read) {
    return stillDead(record, `record is not a change at ${problemText(read.problem)}`);
  }
  const missing = spec.targetKey.filter((column) => read.change.row[column] == null);
  if (missing.length > 0) {
    return stillDead(
      record,
      `record is not a change of ${spec.targetTable} at change.row: its key ${
        missing.join(", ")
      } is missing`,
    );
  }
  return { ok: true, value: { spec, change: read.change } };
}

/**
 * {@link remap}, with what an admin's edit can leave (binary that is not base64, text that
 * is not JSON) as the letter's reason: one damaged letter must not fail the replay of
 * every other. Anything else (a fault of the mapping) fails the replay whole, rolled
 * back, so that no letter's reason is overwritten by it.
 */
export function remapChecked(letter: StoredLetter): Mapped {
  try {
    return remap(letter);
  } catch (error) {
    if (error instanceof ValueError) return stillDead(null, error.message);
    if (error instanceof SyntaxError) {
      return stillDead(null, `the dead letter's record is not JSON: ${error.message}`);
    }
    throw error;
  }
}
