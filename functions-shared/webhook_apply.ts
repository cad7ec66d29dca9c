/**
 * Applies one accepted webhook batch exactly once: the delivery's `webhook-id`, the
 * changes through `sync.merge_changes`, the dead letters and the stream records noted
 * for the lost-record check, all in one transaction.
 *
 * Two ways, one result:
 * - **One round trip** when the batch has no dead letters: `sync.try_apply_webhook_batch`
 *   does it all in one statement (its own transaction), its values in the statement's
 *   text (sql_text.ts). This is the common case, and
 *   at the deployed mapping's batch size of 10 the fixed cost per request is what
 *   counts: the savepoint path below takes seven round trips.
 * - **Savepoints** otherwise, or when Postgres refuses a change for its data (the
 *   one-statement call then rolled back whole): `applyChanges` isolates the refused
 *   change, dead-letters it, and applies the rest (docs/sync-semantics.md, "Bad input").
 *
 * @module
 */

import type postgres from "postgres";
import { toWire } from "./change_wire.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import type { DeadLetter, TableChange } from "./record_mapping.ts";
import { type NotedRecords, noteStreamRecords } from "./stream_progress.ts";
import { dollarQuoted } from "./sql_text.ts";
import { unpipelined } from "./unpipelined.ts";
import { applyChanges } from "./sync_db.ts";
import { isDataError } from "./db_errors.ts";

/** What applying a batch did; `replayed` when its `webhook-id` was accepted before. */
export type BatchOutcome =
  | { replayed: true }
  | {
    replayed: false;
    applied: number;
    deadLettered: number;
    /** The changes Postgres refused, dead-lettered with the batch's own letters. */
    refused: DeadLetter[];
  };

/** One accepted batch, mapped. */
export interface WebhookBatch {
  webhookId: string;
  changes: TableChange[];
  deadLetters: DeadLetter[];
  /** The stream records to note (stream_progress.ts). */
  records: NotedRecords;
}

/** Thrown inside the transaction when its `webhook-id` was already recorded: rolls back. */
class ReplayedDelivery extends Error {
  constructor(readonly webhookId: string) {
    super(`webhook-id ${webhookId} was already accepted`);
    this.name = "ReplayedDelivery";
  }
}

/** `{target table: [wire change, ...]}`, as `sync.try_apply_webhook_batch` reads it. */
export function changesByTable(changes: TableChange[]): Record<string, unknown[]> {
  const byTable: Record<string, unknown[]> = {};
  for (const { spec, change } of changes) {
    (byTable[spec.targetTable] ??= []).push(toWire(change));
  }
  return byTable;
}

/** The batch in one statement; undefined when Postgres refused a change for its data. */
async function applyAtOnce(
  sql: postgres.Sql,
  batch: WebhookBatch,
): Promise<BatchOutcome | undefined> {
  try {
    // The values in the statement's text: one round trip through a transaction pooler,
    // not two (sql_text.ts). Without parameters, it must not have another statement
    // pipelined behind it (unpipelined.ts).
    const text =
      `select replayed, applied, failed_state, failed_message from sync.try_apply_webhook_batch(${
        dollarQuoted(batch.webhookId)
      }, ${dollarQuoted(encodeJson(changesByTable(batch.changes)))}::jsonb, ${
        dollarQuoted(JSON.stringify(batch.records))
      }::jsonb)`;
    const rows = await unpipelined(sql, text);
    if (rows.length !== 1) {
      throw new Error(`sync.try_apply_webhook_batch answered ${rows.length} rows, not one`);
    }
    const [row] = rows;
    // The statement never fails (the batch in its text would be logged): what it met
    // comes back as its SQLSTATE and message, thrown here as Postgres's error would be.
    if (row.failed_state) {
      throw Object.assign(new Error(row.failed_message), { code: row.failed_state });
    }
    if (row.replayed) return { replayed: true };
    return { replayed: false, applied: Number(row.applied), deadLettered: 0, refused: [] };
  } catch (error) {
    if (isDataError(error)) return undefined;
    throw error;
  }
}

/** The batch in savepoints: refused changes are isolated and dead-lettered. */
async function applyInSavepoints(sql: postgres.Sql, batch: WebhookBatch): Promise<BatchOutcome> {
  try {
    return await sql.begin(async (tx) => {
      // The delivery recorded, and the transaction's lock waits bounded, as the one
      // statement does (a lock held past 20 s: 55P03, answered 503).
      const [row] = await tx.unsafe(
        "select sync.begin_webhook_delivery($1) as recorded",
        [batch.webhookId],
      );
      if (row?.recorded !== true) throw new ReplayedDelivery(batch.webhookId);
      const result = await applyChanges(tx, batch.changes, batch.deadLetters);
      await noteStreamRecords(tx, batch.records);
      return {
        replayed: false as const,
        applied: result.applied,
        deadLettered: result.deadLettered,
        refused: result.refused.map((r) => r.deadLetter),
      };
    });
  } catch (error) {
    if (error instanceof ReplayedDelivery) return { replayed: true };
    throw error;
  }
}

/**
 * Applies `batch` once, whole or not at all. Errors other than refused data (the
 * database unavailable, a bug) are thrown, with nothing applied.
 */
export async function applyWebhookBatch(
  sql: postgres.Sql,
  batch: WebhookBatch,
): Promise<BatchOutcome> {
  if (batch.deadLetters.length === 0) {
    const outcome = await applyAtOnce(sql, batch);
    if (outcome) return outcome;
  }
  return await applyInSavepoints(sql, batch);
}
