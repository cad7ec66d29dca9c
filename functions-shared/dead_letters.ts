/**
 * Replaying dead letters once their cause is fixed (a registry change deployed, or the
 * record corrected in `sync.dead_letters.record` by an admin): each open dead letter is
 * mapped again and, if it maps now, applied through the same merge as everything else
 * at the position its record was streamed or read at (the dead letter keeps it), so the
 * ordering guard still keeps newer data. One that still does not map, or that Postgres
 * still refuses, stays open with the new reason.
 *
 *   POST /functions/v1/mmp-toledo-sync/replay-dead-letters
 *   Authorization: Bearer <service role key>
 *   {"ids": [1, 2]} | {"table": "firespring_actions"} | {}   (all open ones)
 *
 * @module
 */

import type postgres from "postgres";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import {
  mapDirect,
  type Mapped,
  mapScannedItem,
  mapStreamRecord,
  type TableChange,
} from "./record_mapping.ts";
import { parseJsonExact } from "./dynamo_numbers.ts";
import { bySourceTable, byTargetTable, TABLES } from "./table_registry.ts";
import { storableText, ValueError } from "./dynamo_decoder.ts";
import { serviceRoleProblem } from "./service_auth.ts";
import { applyChanges, isCutOver, isDatabaseUnavailable, isTransientFailure } from "./sync_db.ts";
import { readOnlyRefusal } from "./read_only_answer.ts";
import { describeError, errorIdentifiers } from "./error_text.ts";
import { attributeMapFromJson } from "./attribute_binaries.ts";
import { parseWebhookBody, streamRecordProblem } from "./webhook_envelope.ts";
import {
  described,
  isObject,
  listOf,
  nonEmptyText,
  positiveInteger,
  problemText,
  strictObject,
} from "./json_shape.ts";
import { attributeMapProblem } from "./webhook_attributes.ts";

/** Which dead letters to replay: by id, by target table, or (neither) all open ones. */
export interface ReplayFilter {
  ids?: number[];
  table?: string;
}

/** What a replay did. */
export interface ReplayResult {
  /** Open dead letters looked at. */
  considered: number;
  /** Mapped this time, and so closed. */
  replayed: number;
  /** Rows written or deleted by them. */
  applied: number;
  /** Still not mappable: id and reason. */
  stillFailing: { id: number; reason: string }[];
}

/** A dead letter as the replay reads it. */
interface StoredLetter {
  id: string;
  record: string;
  position_at: Date | null;
  position_source: string | null;
  received_at: Date;
  source_table: string | null;
  target_table: string | null;
  row_key: string | null;
}

/**
 * A replay's reason, naming the letter's table and key when it names neither table (a
 * damaged record's reason says only what is wrong where).
 */
function namedReason(letter: StoredLetter, reason: string): string {
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

/**
 * {@link remap}, with what an admin's edit can leave (binary that is not base64, text that
 * is not JSON) as the letter's reason: one damaged letter must not fail the replay of
 * every other. Anything else (a fault of the mapping) fails the replay whole, rolled
 * back, so that no letter's reason is overwritten by it.
 */
function remapChecked(letter: StoredLetter): Mapped {
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

/**
 * The changes in rounds, none holding two changes of one row (or observation): a merge
 * keeps one change per key of its batch, the one with a sequence number first, where the
 * ordering guard between a stream change and a Scan's read ten seconds later prefers the
 * read. Only a replay mixes them in one batch; merged one round after another, each
 * change meets the guard against the row, in either order to the same end.
 */
export function rounds(changes: TableChange[]): TableChange[][] {
  const out: TableChange[][] = [];
  const seen = new Map<string, number>();
  for (const change of changes) {
    const { spec, change: c } = change;
    const id = JSON.stringify([spec.targetTable, spec.targetKey.map((k) => c.row[k]), c.rangeKey]);
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    (out[n] ??= []).push(change);
  }
  return out;
}

/** Replays the open dead letters that match `filter`, in one transaction. */
export async function replayDeadLetters(
  sql: postgres.Sql,
  filter: ReplayFilter,
): Promise<ReplayResult> {
  return await sql.begin(async (tx) => {
    // The merge locks of the letters' tables first, in name order, as every writer takes
    // them before it locks a dead letter's row (a backfill's page, an export's chunk): the
    // letters' rows locked first, a replay and a backfill reading the same poison item
    // waited on each other until Postgres killed one (a review reproduced it).
    const found = await tx<{ id: string; target_table: string | null }[]>`
      select id, target_table from sync.dead_letters
      where replayed_at is null
        and (${filter.ids ?? null}::bigint[] is null or id = any(${filter.ids ?? null}::bigint[]))
        and (${filter.table ?? null}::text is null or target_table = ${filter.table ?? null})`;
    const tables = [...new Set(found.flatMap((f) => f.target_table ?? []))].sort();
    for (const table of tables) await tx`select sync.enter_merge(${table})`;
    // The letters found above, still open; one committed since waits for the next replay.
    const rows = await tx<StoredLetter[]>`
      select id, coalesce(record::text, record_text) as record, position_at, position_source,
             received_at, source_table, target_table, row_key::text as row_key
      from sync.dead_letters
      where replayed_at is null and id = any(${found.map((f) => f.id)}::bigint[])
      order by id
      for update skip locked`;
    const mapped = rows.map((row) => ({ id: Number(row.id), row, result: remapChecked(row) }));
    const ok = mapped.flatMap((m) => (m.result.ok ? [{ id: m.id, change: m.result.value }] : []));
    // A change Postgres still refuses keeps its own dead letter open (no new one).
    let applied = 0;
    const refusedReason = new Map<TableChange, string>();
    for (const round of rounds(ok.map((m) => m.change))) {
      const result = await applyChanges(tx, round, [], { deadLetterRefused: false });
      applied += result.applied;
      for (const r of result.refused) refusedReason.set(r.change, r.deadLetter.reason);
    }
    const closed = ok.filter((m) => !refusedReason.has(m.change)).map((m) => m.id);
    const stillFailing = [
      ...mapped.flatMap((m) =>
        m.result.ok ? [] : [{ id: m.id, reason: namedReason(m.row, m.result.deadLetter.reason) }]
      ),
      ...ok.flatMap((m) =>
        refusedReason.has(m.change) ? [{ id: m.id, reason: refusedReason.get(m.change)! }] : []
      ),
    ];
    await tx`update sync.dead_letters set replayed_at = now(), replay_result = 'applied'
             where id = any(${closed}::bigint[])`;
    for (const failing of stillFailing) {
      await tx`update sync.dead_letters
               set reason = ${storableText(failing.reason)},
                   replay_result = 'still failing at ' || now()
               where id = ${failing.id}`;
    }
    return { considered: rows.length, replayed: closed.length, applied, stillFailing };
  }) as ReplayResult;
}

const filterProblem = strictObject({
  ids: { check: listOf(positiveInteger), optional: true },
  table: { check: nonEmptyText, optional: true },
});

/** The HTTP endpoint: service role key, a JSON filter, the {@link ReplayResult} back. */
export async function handleReplayRequest(
  req: Request,
  deps: { sql: postgres.Sql; serviceRoleKey: string | readonly string[] | undefined },
): Promise<Response> {
  if (req.method !== "POST") return methodNotAllowed("POST");
  const problem = serviceRoleProblem(req, deps.serviceRoleKey);
  if (problem) return errorResponse(401, problem);
  let filter: ReplayFilter;
  try {
    const text = await req.text();
    const parsed: unknown = text.trim() === "" ? {} : JSON.parse(text);
    const problem = filterProblem(parsed, []);
    if (problem) return errorResponse(400, `malformed filter at ${problemText(problem)}`);
    filter = parsed as ReplayFilter;
    // A mistyped name (a source table's, say) would match nothing and answer "nothing to
    // replay".
    if (filter.table !== undefined && !byTargetTable(filter.table)) {
      return errorResponse(
        400,
        `malformed filter at table: ${JSON.stringify(filter.table)} is not a target table ` +
          `(one of ${TABLES.map((t) => t.targetTable).join(", ")})`,
      );
    }
  } catch (error) {
    return errorResponse(400, `body is not valid JSON: ${(error as Error).message}`);
  }
  try {
    return json(200, await replayDeadLetters(deps.sql, filter));
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      return errorResponse(503, "the database is unavailable; retry later", { "retry-after": "5" });
    }
    // After the cutover (sync.enter_merge, SY005): nothing is replayed, every letter stays.
    if (isCutOver(error)) {
      return errorResponse(409, `${(error as Error).message}; no dead letter was replayed`);
    }
    const readOnly = readOnlyRefusal(
      error,
      "the dead-letter replay",
      "nothing was replayed, retry later",
    );
    if (readOnly) return readOnly;
    // A statement that timed out or lost to another: the same replay passes later. The
    // replay is one transaction: nothing of it was replayed.
    const code = (error as { code?: string }).code;
    if (isTransientFailure(error)) {
      return errorResponse(
        503,
        `the replay could not run now (${code}); nothing was replayed, retry later`,
        {
          "retry-after": "5",
        },
      );
    }
    console.error(`the dead-letter replay failed: ${describeError(error)}`);
    return errorResponse(
      500,
      `the dead-letter replay failed: ${(error as Error).message}${errorIdentifiers(error)}` +
        `${code ? ` (${code})` : ""}; nothing was replayed`,
    );
  }
}
