/**
 * The Edge Functions' way into Postgres: a small pool on SUPABASE_DB_URL (prepared
 * statements off, so that Supabase's transaction pooler works), and the one call that
 * applies changes: `sync.merge_changes` per table, plus the dead letters, in one
 * transaction.
 *
 * @module
 */

import postgres from "postgres";
import { DynamoNumber, encodeJson } from "./dynamo_codec.ts";
import type { DeadLetter, TableChange } from "./record_mapping.ts";
import type { Change } from "./transform.ts";

/** Opens a pool. Sessions run in UTC, so timestamps without a zone read the same everywhere. */
export function connectDb(url: string, max = 4): postgres.Sql {
  return postgres(url, {
    max,
    prepare: false,
    idle_timeout: 20,
    connect_timeout: 10,
    connection: { TimeZone: "UTC", application_name: "dynamo-supabase-sync" },
    onnotice: () => {},
  });
}

/** The JSON form of a change that sync.merge_changes reads. */
function changeJson(change: Change): Record<string, unknown> {
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

/** What applying a batch did. */
export interface ApplyResult {
  /** Rows (or observations) written or deleted. */
  applied: number;
  deadLettered: number;
}

/**
 * Applies changes (grouped per table, tables in name order so that concurrent batches
 * cannot deadlock) and records dead letters, inside the caller's transaction `tx`
 * (`sql.begin(tx => applyChanges(tx, ...))`), so that a batch applies whole or not at all.
 */
export async function applyChanges(
  tx: postgres.TransactionSql,
  changes: TableChange[],
  deadLetters: DeadLetter[] = [],
): Promise<ApplyResult> {
  const byTable = new Map<string, Change[]>();
  for (const { spec, change } of changes) {
    byTable.set(spec.targetTable, [...(byTable.get(spec.targetTable) ?? []), change]);
  }
  let applied = 0;
  for (const table of [...byTable.keys()].sort()) {
    const json = encodeJson(byTable.get(table)!.map(changeJson));
    const [result] = await tx.unsafe(
      "select applied from sync.merge_changes($1, $2::text::jsonb)",
      [table, json],
    );
    applied += Number(result.applied);
  }
  if (deadLetters.length > 0) await recordDeadLetters(tx, deadLetters);
  return { applied, deadLettered: deadLetters.length };
}

async function recordDeadLetters(tx: postgres.TransactionSql, letters: DeadLetter[]) {
  const json = encodeJson(letters.map((l) => ({
    source_table: l.sourceTable,
    target_table: l.targetTable,
    event_id: l.eventId,
    record: l.record,
    reason: l.reason,
  })));
  await tx.unsafe(
    `insert into sync.dead_letters (source_table, target_table, event_id, record, reason)
     select source_table, target_table, event_id, record, reason
     from jsonb_to_recordset($1::text::jsonb)
       as x(source_table text, target_table text, event_id text, record jsonb, reason text)`,
    [json],
  );
}

/**
 * Whether an error means the database cannot be reached right now (so the request may
 * be retried as it is), rather than that the request itself is wrong.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string; name?: string };
  const codes = [
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "EPIPE",
    "CONNECT_TIMEOUT",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now
    "53300", // too_many_connections
    "08000",
    "08001",
    "08003",
    "08004",
    "08006",
  ];
  return codes.includes(e?.code ?? "") || e?.name === "ConnectionRefused" ||
    /connection refused|connection reset|ECONNREFUSED|terminating connection/i.test(
      e?.message ?? "",
    );
}
