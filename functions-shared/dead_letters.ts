/**
 * Replaying dead letters once their cause is fixed (a registry change deployed, or the
 * record corrected in `sync.dead_letters.record` by an admin): each open dead letter is
 * mapped again and, if it maps now, applied through the same merge as everything else
 * (its original stream position still guards against overwriting newer data). One
 * that still does not map stays open with the new reason.
 *
 *   POST /functions/v1/mmp-toledo-sync/replay-dead-letters
 *   Authorization: Bearer <service role key>
 *   {"ids": [1, 2]} | {"table": "firespring_actions"} | {}   (all open ones)
 *
 * @module
 */

import type postgres from "postgres";
import { z } from "zod";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import {
  mapDirect,
  type Mapped,
  mapScannedItem,
  mapStreamRecord,
  parseJsonExact,
} from "./record_mapping.ts";
import { bySourceTable } from "./table_registry.ts";
import { serviceRoleProblem } from "./service_auth.ts";
import { applyChanges, isDatabaseUnavailable } from "./sync_db.ts";
import { attributeMapFromJson, StreamRecordSchema } from "./webhook_envelope.ts";

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

function remap(recordText: string): Mapped {
  const record = JSON.parse(recordText);
  if (record && typeof record === "object" && "item" in record && "sourceTable" in record) {
    const spec = bySourceTable(String(record.sourceTable));
    if (spec) return mapScannedItem(spec, attributeMapFromJson(record.item), new Date());
  }
  if (record && typeof record === "object" && "eventID" in record) {
    const parsed = StreamRecordSchema.safeParse(record);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return {
        ok: false,
        deadLetter: {
          sourceTable: null,
          targetTable: null,
          eventId: String(record.eventID),
          record,
          reason: `record is not a stream record at ${issue.path.join(".")}: ${issue.message}`,
        },
      };
    }
    return mapStreamRecord(parsed.data as Parameters<typeof mapStreamRecord>[0]);
  }
  return mapDirect(parseJsonExact(recordText) as Parameters<typeof mapDirect>[0]);
}

/** Replays the open dead letters that match `filter`, in one transaction. */
export async function replayDeadLetters(
  sql: postgres.Sql,
  filter: ReplayFilter,
): Promise<ReplayResult> {
  return await sql.begin(async (tx) => {
    const rows = await tx<{ id: string; record: string }[]>`
      select id, record::text as record from sync.dead_letters
      where replayed_at is null
        and (${filter.ids ?? null}::bigint[] is null or id = any(${filter.ids ?? null}::bigint[]))
        and (${filter.table ?? null}::text is null or target_table = ${filter.table ?? null})
      order by id
      for update skip locked`;
    const mapped = rows.map((row) => ({ id: Number(row.id), result: remap(row.record) }));
    const ok = mapped.filter((m) => m.result.ok);
    const { applied } = await applyChanges(
      tx,
      ok.map((m) => (m.result as Extract<Mapped, { ok: true }>).value),
    );
    const stillFailing = mapped.flatMap((m) =>
      m.result.ok ? [] : [{ id: m.id, reason: m.result.deadLetter.reason }]
    );
    await tx`update sync.dead_letters set replayed_at = now(), replay_result = 'applied'
             where id = any(${ok.map((m) => m.id)}::bigint[])`;
    for (const failing of stillFailing) {
      await tx`update sync.dead_letters
               set reason = ${failing.reason}, replay_result = 'still failing at ' || now()
               where id = ${failing.id}`;
    }
    return { considered: rows.length, replayed: ok.length, applied, stillFailing };
  }) as ReplayResult;
}

const FilterSchema = z.strictObject({
  ids: z.array(z.number().int().positive()).optional(),
  table: z.string().min(1).optional(),
});

/** The HTTP endpoint: service role key, a JSON filter, the {@link ReplayResult} back. */
export async function handleReplayRequest(
  req: Request,
  deps: { sql: postgres.Sql; serviceRoleKey: string | undefined },
): Promise<Response> {
  if (req.method !== "POST") return methodNotAllowed("POST");
  const problem = serviceRoleProblem(req, deps.serviceRoleKey);
  if (problem) return errorResponse(401, problem);
  let filter: ReplayFilter;
  try {
    const text = await req.text();
    const parsed = FilterSchema.safeParse(text.trim() === "" ? {} : JSON.parse(text));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return errorResponse(
        400,
        `malformed filter at ${issue.path.join(".") || "(the body)"}: ${issue.message}`,
      );
    }
    filter = parsed.data;
  } catch (error) {
    return errorResponse(400, `body is not valid JSON: ${(error as Error).message}`);
  }
  try {
    return json(200, await replayDeadLetters(deps.sql, filter));
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      return errorResponse(503, "the database is unavailable; retry later", { "retry-after": "5" });
    }
    throw error;
  }
}
