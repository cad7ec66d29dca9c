/**
 * The merge's own cost per item in the backfill benchmark (tests/bench_backfill.ts): what
 * a collapsed table costs in Postgres against a plain one, apart from reading DynamoDB.
 *
 * @module
 */

import { type AttributeValue, ScanCommand } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { toWire } from "../functions-shared/change_wire.ts";
import { encodeJson } from "../functions-shared/dynamo_encoder.ts";
import { mapScannedItem } from "../functions-shared/record_mapping.ts";
import { withBackoff } from "../functions-shared/scan_pacing.ts";
import type { TableSpec } from "../functions-shared/table_registry.ts";
import { localDynamo } from "../local-stack/aws/source_tables.ts";
import { stack } from "./stack_clients.ts";

type Item = Record<string, AttributeValue>;

/**
 * Postgres's time per item of `sync.merge_changes` for pages of a table read again (the
 * rows are there: the merge updates them, as a backfill over a synced table does), each
 * in a transaction that is rolled back (three pages of segment 0 of `segments`, of
 * `pageSize` items). Measures the merge alone: what a collapsed
 * table costs in Postgres against a plain one.
 */
export async function mergeMsPerItem(
  sql: postgres.Sql,
  spec: TableSpec,
  segments: number,
  pageSize: number,
): Promise<number> {
  const client = localDynamo(stack, spec.region);
  let ms = 0;
  let items = 0;
  let start: Item | undefined;
  for (let page = 0; page < 3; page++) {
    const read = await withBackoff(() =>
      client.send(
        new ScanCommand({
          TableName: spec.sourceTable,
          Segment: 0,
          TotalSegments: segments,
          ExclusiveStartKey: start,
          Limit: pageSize,
          ConsistentRead: true,
        }),
      ), () => {});
    const readAt = new Date();
    const changes = (read.Items ?? []).flatMap((item) => {
      const mapped = mapScannedItem(spec, item, readAt);
      return mapped.ok ? [toWire(mapped.value.change)] : [];
    });
    const json = encodeJson(changes);
    const rolledBack = new Error("rolled back");
    await sql.begin(async (tx) => {
      const t = performance.now();
      await tx.unsafe("select applied from sync.merge_changes($1, $2::text::jsonb)", [
        spec.targetTable,
        json,
      ]);
      ms += performance.now() - t;
      throw rolledBack; // the merge's effects are not kept
    }).catch((error) => {
      if (error !== rolledBack) throw error;
    });
    items += changes.length;
    start = read.LastEvaluatedKey;
    if (!start) break;
  }
  return items > 0 ? ms / items : 0;
}
