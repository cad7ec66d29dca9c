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
 *   each with "after": <the previous answer's next>, for the rest
 *
 * One request replays at most {@link REPLAY_LIMIT} letters and answers how many more
 * match (`remaining`) and where to go on from (`next`).
 *
 * @module
 */

import type postgres from "postgres";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import type { TableChange } from "./record_mapping.ts";
import { byTargetTable, TABLES } from "./table_registry.ts";
import { storableText } from "./dynamo_decoder.ts";
import { serviceRoleProblem } from "./service_auth.ts";
import { applyChanges } from "./sync_db.ts";
import { isCutOver, isDatabaseUnavailable, isTransientFailure } from "./db_errors.ts";
import { readOnlyRefusal } from "./read_only_answer.ts";
import { describeError, errorIdentifiers } from "./error_text.ts";
import {
  listOf,
  nonEmptyText,
  positiveInteger,
  problemText,
  strictObject,
  wholeNumber,
} from "./json_shape.ts";
import { namedReason, remapChecked, sameLetter, type StoredLetter } from "./dead_letter_remap.ts";

/**
 * The most dead letters one replay takes, in the order of their ids: a request maps and
 * merges them on one isolate, whose CPU the hosted runtime caps at 2 s ("Maximum CPU
 * Time: 2s", https://supabase.com/docs/guides/functions/limits), and holds their tables'
 * merge locks until it commits. Tens of thousands at once were killed every time, and
 * rolled back whole (a review measured 12.6 s of JavaScript for 50,000).
 */
export const REPLAY_LIMIT = 1_000;

/**
 * Which dead letters to replay: by id, by target table, or (neither) all open ones; of
 * them, those after the id `after` (a previous replay's `next`).
 */
export interface ReplayFilter {
  ids?: number[];
  table?: string;
  after?: number;
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
  /** Open letters of the filter after the last one looked at: left for the next replay. */
  remaining: number;
  /** The last id looked at when some remain (the next replay's `after`), else null. */
  next: number | null;
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

/**
 * Replays the open dead letters that match `filter`, at most {@link REPLAY_LIMIT} of
 * them (the first by id after `filter.after`), in one transaction.
 */
export async function replayDeadLetters(
  sql: postgres.Sql,
  filter: ReplayFilter,
): Promise<ReplayResult> {
  const ids = filter.ids ?? null;
  const table = filter.table ?? null;
  // A table's letters include those kept with no table from its DynamoDB table (a stream
  // record that came before the table was registered): replayed now, they map to it.
  const source = filter.table ? byTargetTable(filter.table)?.sourceTable ?? null : null;
  return await sql.begin(async (tx) => {
    const found = await tx<StoredLetter[]>`
      select id, coalesce(record::text, record_text) as record, position_at, position_source,
             received_at, source_table, target_table, row_key::text as row_key
      from sync.dead_letters
      where replayed_at is null and id > ${filter.after ?? 0}
        and (${ids}::bigint[] is null or id = any(${ids}::bigint[]))
        and (${table}::text is null or target_table = ${table}
             or (target_table is null and source_table = ${source}))
      order by id
      limit ${REPLAY_LIMIT}`;
    // The merge locks of the letters' tables first, in name order, as every writer takes
    // them before it locks a dead letter's row (a backfill's page, an export's chunk): the
    // letters' rows locked first, a replay and a backfill reading the same poison item
    // waited on each other until Postgres killed one (a review reproduced it). The table
    // a record maps to now counts too: a letter kept with no table (its table registered
    // since) or one an admin pointed at another.
    const first = new Map(found.map((row) => [row.id, { row, result: remapChecked(row) }]));
    const tables = new Set<string>();
    for (const { row, result } of first.values()) {
      if (row.target_table) tables.add(row.target_table);
      if (result.ok) tables.add(result.value.spec.targetTable);
    }
    for (const table of [...tables].sort()) await tx`select sync.enter_merge(${table})`;
    // The letters found above, still open; one committed since waits for the next replay.
    const rows = await tx<StoredLetter[]>`
      select id, coalesce(record::text, record_text) as record, position_at, position_source,
             received_at, source_table, target_table, row_key::text as row_key
      from sync.dead_letters
      where replayed_at is null and id = any(${found.map((f) => f.id)}::bigint[])
      order by id
      for update skip locked`;
    // Mapped again only when an admin's edit changed it in between. One the edit pointed
    // at a table not locked above is left open for the next replay (its lock now, after
    // the letters', would be out of order), as is one another transaction holds (skipped).
    const taken = new Set(rows.map((row) => Number(row.id)));
    const left = found.map((row) => Number(row.id)).filter((id) => !taken.has(id));
    const mapped = rows.flatMap((row) => {
      const before = first.get(row.id);
      const result = before && sameLetter(before.row, row) ? before.result : remapChecked(row);
      const moved = (row.target_table !== null && !tables.has(row.target_table)) ||
        (result.ok && !tables.has(result.value.spec.targetTable));
      if (moved) left.push(Number(row.id));
      return moved ? [] : [{ id: Number(row.id), row, result }];
    });
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
    // The cursor stays before the first letter left, so the next replay comes to it.
    const last = left.length > 0 ? Math.min(...left) - 1 : found.at(-1)?.id ?? null;
    const [{ remaining }] = last === null ? [{ remaining: 0 }] : await tx<{ remaining: number }[]>`
      select count(*)::int as remaining from sync.dead_letters
      where replayed_at is null and id > ${last}
        and (${ids}::bigint[] is null or id = any(${ids}::bigint[]))
        and (${table}::text is null or target_table = ${table}
             or (target_table is null and source_table = ${source}))`;
    return {
      considered: mapped.length,
      replayed: closed.length,
      applied,
      stillFailing,
      remaining,
      next: remaining > 0 ? Number(last) : null,
    };
  }) as ReplayResult;
}

const filterProblem = strictObject({
  ids: { check: listOf(positiveInteger), optional: true },
  table: { check: nonEmptyText, optional: true },
  after: { check: wholeNumber, optional: true },
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
