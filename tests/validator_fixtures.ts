/**
 * What the validator tests share (tests/validator_test.ts, validator_repair_test.ts,
 * validator_repair_stream_test.ts, validator_eventual_test.ts, write_back_test.ts,
 * export_backfill_cli_test.ts): attribute builders, a validation through the
 * data-checksum-validator, and loading items until the stream has delivered them.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { batchWrite } from "../demo/load_dynamo.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { recordedResult } from "../functions-shared/validator_result.ts";
import {
  callFunction,
  connectDb,
  dynamo,
  eventually,
  serviceRoleHeaders,
  staleReadMs,
} from "./stack_clients.ts";

/** A string attribute. */
export const S = (s: string): AttributeValue => ({ S: s });
/** A number attribute. */
export const N = (n: number | string): AttributeValue => ({ N: String(n) });

/**
 * Validates a table through the data-checksum-validator; its result, as the 200 answer
 * gives it. A run that goes on past the request's 25 s (handed on to a request that
 * found the database refusing logins, on a loaded machine, and then resumed by pg_cron's
 * heartbeat) answers 202 with its id, as documented: its result is then its record's,
 * once it ends, read as the endpoint reads it (functions-shared/validator_result.ts).
 */
export async function validate(table: string, repair = false) {
  const response = await callFunction("data-checksum-validator", {
    method: "POST",
    headers: serviceRoleHeaders(),
    body: JSON.stringify({ table, repair }),
  });
  const answer = await response.json();
  if (response.status !== 202) {
    assert.equal(response.status, 200, JSON.stringify(answer));
    return answer;
  }
  const sql = connectDb();
  try {
    const spec = byTargetTable(table)!;
    const recorded = await eventually(
      `validation run ${answer.runId} of ${table} to end`,
      async () => {
        const result = await recordedResult({ sql }, spec, Number(answer.runId));
        return result === "running" ? undefined : result;
      },
      180_000,
    );
    if ("failed" in recorded) throw new Error(`validation of ${table} failed: ${recorded.failed}`);
    return recorded;
  } finally {
    await sql.end();
  }
}

/**
 * Loads items and waits until the stream has delivered all of them, and until the
 * DynamoDB proxy's stale window (`stale_ms`) has passed since the load: as on AWS, an
 * eventually consistent read (the validator's Scan) may not yet see an item made within
 * it, and a validation that missed an item the target lacks too would find nothing to
 * repair (docs/sync-semantics.md, "Verification").
 */
export async function load(
  target: string,
  items: Record<string, AttributeValue>[],
  prefix: string,
) {
  const spec = byTargetTable(target)!;
  await batchWrite(dynamo(spec.region), spec.sourceTable, items);
  const settled = Date.now() + staleReadMs();
  const sql = connectDb();
  try {
    await eventually("the stream to deliver", async () => {
      const [r] = await sql.unsafe(
        `select count(*)::int as n from public.${target} where ${spec.targetKey[0]} like $1`,
        [`${prefix}%`],
      );
      return r.n === items.length ? true : undefined;
    }, 60_000);
  } finally {
    await sql.end();
  }
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, settled - Date.now())));
}
