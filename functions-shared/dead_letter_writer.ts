/**
 * Writes dead letters to `sync.dead_letters`, one row per record: the fingerprint that
 * says two dead letters are the same record, and the text and JSON a row can store
 * (docs/sync-semantics.md, "Bad input"). applyChanges (sync_db.ts) calls it inside its
 * transaction.
 *
 * @module
 */

import type postgres from "postgres";
import { createHash } from "node:crypto";
import { storableText, stringProblem } from "./dynamo_decoder.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import { isDynamoNumber, numericStorable } from "./dynamo_numbers.ts";
import type { DeadLetter } from "./record_mapping.ts";

/** Text Postgres can store ({@link storableText}), or null. */
function safeText(text: string | null): string | null {
  return text === null ? null : storableText(text);
}

/**
 * Whether jsonb can hold a value: no string or key with U+0000 or a lone surrogate, no
 * number past Postgres's numeric (dynamo_numbers.ts, `numericStorable`).
 */
function jsonbSafe(value: unknown): boolean {
  if (typeof value === "string") return stringProblem(value) === undefined;
  if (isDynamoNumber(value)) return numericStorable(value.value);
  if (value === null || typeof value !== "object") return true;
  if (value instanceof Uint8Array) return true;
  if (Array.isArray(value) || value instanceof Set) return [...value].every(jsonbSafe);
  return Object.entries(value).every(([k, v]) => stringProblem(k) === undefined && jsonbSafe(v));
}

/** A value with every object's keys in sorted order, so that equal content encodes equally. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (
    value === null || typeof value !== "object" || isDynamoNumber(value) ||
    value instanceof Uint8Array || value instanceof Set
  ) return value;
  return Object.fromEntries(
    Object.keys(value).sort().map((k) => [k, sortedKeys((value as Record<string, unknown>)[k])]),
  );
}

/**
 * What makes two dead letters the same record: a stream record by its source table,
 * eventID and SequenceNumber (a redelivery); a Scan's item, a repair's read or a direct
 * request by who sent it, its source table and exact content (the same page read again,
 * later; the same key repaired again; a request sent again). A repair's read is not a
 * backfill page's: the letter of a page is what spares its key at the backfill's end
 * (…3600_sweep_in_chunks.sql), and a repair seeing the same item later must not take
 * that letter over.
 */
export function deadLetterFingerprint(letter: DeadLetter): string {
  const record = letter.record as { dynamodb?: { SequenceNumber?: unknown } } | null;
  const source = letter.position?.source;
  const basis = letter.eventId !== null
    ? ["stream", letter.sourceTable, letter.eventId, String(record?.dynamodb?.SequenceNumber)]
    : [
      source === "direct" || source === "repair" ? source : "scan",
      letter.sourceTable ?? letter.targetTable,
      encodeJson(sortedKeys(letter.record)),
    ];
  return createHash("md5").update(encodeJson(basis)).digest("hex");
}

/**
 * Records dead letters, one row per record: a record seen again (same fingerprint)
 * counts in times_seen and last_seen_at, and a Scan copy keeps the later read time. A
 * dead letter already replayed stays closed when its record comes again: the replay
 * applied that record, and the same stream record or the same content brings nothing
 * new (docs/sync-semantics.md, "Bad input"). Except a person's direct request: one sent
 * again is a change of its own, made now, so its closed letter opens again, holding the
 * request as sent and its time (the replay applied an admin's corrected copy, or the
 * request of before).
 */
export async function recordDeadLetters(
  tx: postgres.TransactionSql,
  letters: DeadLetter[],
): Promise<void> {
  const rows = new Map<string, Record<string, unknown>>();
  for (const l of letters) {
    const fingerprint = deadLetterFingerprint(l);
    const seen = rows.get(fingerprint);
    if (seen) {
      seen.times_seen = (seen.times_seen as number) + 1;
      seen.reason = safeText(l.reason);
      if ((l.position?.changedAt ?? "") > String(seen.position_at ?? "")) {
        seen.position_at = l.position?.changedAt;
        seen.position_source = l.position?.source ?? seen.position_source;
      }
      continue;
    }
    const storable = jsonbSafe(l.record);
    rows.set(fingerprint, {
      source_table: safeText(l.sourceTable),
      target_table: safeText(l.targetTable),
      event_id: safeText(l.eventId),
      record: storable ? l.record : null,
      record_text: storable ? null : encodeJson(l.record),
      reason: safeText(l.reason),
      position_seq: l.position?.seq ?? null,
      position_at: l.position?.changedAt ?? null,
      position_source: l.position?.source ?? null,
      row_key: l.rowKey,
      fingerprint,
      times_seen: 1,
    });
  }
  await tx.unsafe(
    `insert into sync.dead_letters as d (source_table, target_table, event_id, record,
       record_text, reason, position_seq, position_at, position_source, row_key, fingerprint,
       times_seen)
     select source_table, target_table, event_id, record, record_text, reason, position_seq,
            position_at, position_source, row_key, fingerprint, times_seen
     from jsonb_to_recordset($1::text::jsonb) as x(source_table text, target_table text,
       event_id text, record jsonb, record_text text, reason text, position_seq numeric,
       position_at timestamptz, position_source text, row_key jsonb, fingerprint text,
       times_seen integer)
     on conflict (fingerprint) do update
       set times_seen = d.times_seen + excluded.times_seen,
           last_seen_at = now(),
           reason = case when d.replayed_at is null or excluded.position_source = 'direct'
                         then excluded.reason else d.reason end,
           position_at = case when d.replayed_at is not null and excluded.position_source = 'direct'
                              then excluded.position_at
                              else greatest(d.position_at, excluded.position_at) end,
           -- Who saw it at that position, the latest sighting's.
           position_source = case when d.position_at is null
                                    or excluded.position_at >= d.position_at
                                  then coalesce(excluded.position_source, d.position_source)
                                  else d.position_source end,
           record = case when d.replayed_at is not null and excluded.position_source = 'direct'
                         then excluded.record else d.record end,
           record_text = case when d.replayed_at is not null and excluded.position_source = 'direct'
                              then excluded.record_text else d.record_text end,
           replay_result = case when d.replayed_at is not null and excluded.position_source = 'direct'
                                then null else d.replay_result end,
           replayed_at = case when excluded.position_source = 'direct' then null
                              else d.replayed_at end,
           row_key = coalesce(d.row_key, excluded.row_key)`,
    [encodeJson([...rows.values()])],
  );
}

/** How many of a batch's dead letters get a log line each. */
export const DEAD_LETTER_LINES_PER_BATCH = 3;

/**
 * Logs a batch's dead letters once its transaction committed: the first
 * {@link DEAD_LETTER_LINES_PER_BATCH} a line each (`line` says how), then one line with how
 * many more, by table. A hosted function keeps 100 log events in 10 s
 * (https://supabase.com/docs/guides/functions/limits), and a batch of 1,000 poison records
 * logged 1,000 lines, crowding out whatever else went wrong in those 10 s. Each dead letter
 * is in `sync.dead_letters` with its table, key and cause.
 */
export function logDeadLetters(
  letters: DeadLetter[],
  line: (letter: DeadLetter) => string,
  log: (line: string) => void = console.warn,
): void {
  for (const letter of letters.slice(0, DEAD_LETTER_LINES_PER_BATCH)) log(line(letter));
  const rest = letters.slice(DEAD_LETTER_LINES_PER_BATCH);
  if (rest.length === 0) return;
  const byTable = new Map<string, number>();
  for (const letter of rest) {
    const table = letter.targetTable ?? letter.sourceTable ?? "no known table";
    byTable.set(table, (byTable.get(table) ?? 0) + 1);
  }
  const tables = [...byTable].map(([table, n]) => `${table} ${n}`).join(", ");
  log(
    `…and ${rest.length} more dead letter${rest.length === 1 ? "" : "s"} in this batch ` +
      `(${tables}; sync.dead_letters holds each, with its key and cause)`,
  );
}
