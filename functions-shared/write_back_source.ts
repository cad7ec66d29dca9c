/**
 * What the write-back reads of the source (write_back_run.ts): an item, read
 * consistently; whether a collapsed key has a newer observation than the one edited; the
 * source's values of the edited columns; and the row restored from the source through the
 * one merge (validator_repair.ts's repairKeys), after a conflict or a failure.
 *
 * @module
 */

import { GetItemCommand, QueryCommand } from "./dynamo_commands.ts";
import type { DynamoClient } from "./dynamo_http.ts";
import type postgres from "postgres";
import type { CpuMeter } from "./cpu_meter.ts";
import type { ValidatorDeps } from "./validator_deps.ts";
import { type AttributeMap, fromDynamo } from "./dynamo_decoder.ts";
import type { TableSpec } from "./table_registry.ts";
import { itemToChange } from "./transform.ts";
import { repairKeys } from "./validator_repair.ts";
import { PartitionTooLarge } from "./point_reads.ts";
import type { WriteBackEdit } from "./write_back_update.ts";
import { unpipelined } from "./unpipelined.ts";

/** What the reads need of the function's dependencies. */
export interface SourceDeps {
  sql: postgres.Sql;
  /** The reader's client of a region (GetItem and Query, consistent). */
  reader: (region: string) => DynamoClient;
  /** The isolate's CPU meter: a restore's mapping is a measured step of it. */
  cpu?: CpuMeter;
}

/**
 * A collapsed table's row shows its key's observation with the largest range key. An
 * edit written to the observation the row showed when edited is lost once a newer one
 * exists (its stream record not yet merged): the row will show that one. Returns the
 * newest range key above the edited observation's, if any (a consistent Query of the
 * key, newest first). An observation written between this and the UpdateItem is not
 * seen: no condition of one item can speak of another.
 */
export async function newerObservation(
  deps: SourceDeps,
  spec: TableSpec,
  key: AttributeMap,
): Promise<string | undefined> {
  if (!spec.collapse) return undefined;
  const [hash, range] = spec.sourceKey;
  const { Items } = await deps.reader(spec.region).send(
    new QueryCommand({
      TableName: spec.sourceTable,
      KeyConditionExpression: "#h = :h AND #r > :r",
      ExpressionAttributeNames: { "#h": hash.name, "#r": range.name },
      ExpressionAttributeValues: { ":h": key[hash.name], ":r": key[range.name] },
      ProjectionExpression: "#r",
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
    }),
  );
  const found = Items?.[0]?.[range.name];
  return found ? String(found.N ?? found.S) : undefined;
}

/**
 * The item of `key`, read consistently; undefined when there is none. Given up, its
 * retries included, when `abortSignal` aborts.
 */
export async function readItem(
  deps: SourceDeps,
  spec: TableSpec,
  key: AttributeMap,
  abortSignal?: AbortSignal,
): Promise<AttributeMap | undefined> {
  const { Item } = await deps.reader(spec.region).send(
    new GetItemCommand({ TableName: spec.sourceTable, Key: key, ConsistentRead: true }),
    { abortSignal },
  );
  return Item;
}

/**
 * The source's values of the edited columns, as the row would show them, from `raw` (the
 * item read); null when the item maps to no row.
 */
export function sourceValues(spec: TableSpec, edit: WriteBackEdit, raw: AttributeMap): unknown {
  try {
    const row = itemToChange(spec, fromDynamo(raw), {
      seq: null,
      changedAt: new Date(0).toISOString(),
      source: "direct",
    }).row;
    return Object.fromEntries(edit.columns.map((c) => [c, row[c] ?? null]));
  } catch {
    return null;
  }
}

/** What {@link restore} did: `done` unless it failed (and may pass: it is tried again). */
export interface Restored {
  done: boolean;
  /** What to add to the edit's detail. */
  text: string;
  /** Why it failed, when it did. */
  cause?: string;
}

/**
 * Puts the row back to the source's state: the key read consistently after now and
 * applied through the one merge as a repair (validator_repair.ts). Not `done` when that
 * failed (the read throttled, the merge refused by the pooler): the row still shows the
 * edit, and the caller leaves the restore due for the next run
 * (`sync.leave_write_back_restore`).
 */
export async function restore(
  deps: SourceDeps,
  spec: TableSpec,
  edit: WriteBackEdit,
): Promise<Restored> {
  try {
    // No parameters, on the shared pool: nothing may be pipelined behind it (unpipelined.ts).
    const [{ seen_at }] = await unpipelined<{ seen_at: string }[]>(
      deps.sql,
      `select to_char(clock_timestamp() at time zone 'UTC',
                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as seen_at`,
    );
    const validatorDeps: ValidatorDeps = { sql: deps.sql, dynamo: deps.reader, cpu: deps.cpu };
    const unmappable = await repairKeys(validatorDeps, spec, [{
      kind: "different",
      key: edit.rowKey,
    }], seen_at);
    if (unmappable.length > 0) {
      return {
        done: true,
        text: `; the row was left as edited: the source item cannot be mapped (${
          unmappable[0].reason
        })`,
      };
    }
    return { done: true, text: "; the row shows the source's state again" };
  } catch (error) {
    if (error instanceof PartitionTooLarge) {
      // Not read whole in a request, ever: a backfill of the table restores the row.
      const reason = `${spec.targetTable}: restoring a write-back's row: ${error.message}`;
      const [{ job }] = await deps.sql<{ job: string }[]>`
        select sync.heal_table(${spec.targetTable}, ${reason}) as job`;
      return {
        done: true,
        text: `; the row still shows the edit: its key's partition is too large to read whole, ` +
          `so backfill job ${job} restores it (the table is marked stale)`,
      };
    }
    const cause = causeOf(error);
    return {
      done: false,
      text: `; the row still shows the edit: restoring it from the source failed (${cause}), ` +
        "tried again in a minute",
      cause,
    };
  }
}

/** The cause of an error, without anything secret (AWS errors carry no key). */
export function causeOf(error: unknown): string {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : "";
  return `${e.name ?? "Error"}: ${e.message ?? String(error)}${status}`;
}
