/**
 * What the validator tests share (tests/validator_test.ts, validator_repair_test.ts,
 * validator_repair_stream_test.ts, validator_eventual_test.ts, write_back_test.ts,
 * export_backfill_cli_test.ts): attribute builders, a validation through the
 * data-checksum-validator, and loading items until the stream has delivered them.
 *
 * @module
 */

import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { batchWrite } from "../demo/load_dynamo.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { validateThroughFunction } from "../scripts/validation_client.ts";
import { connectDb, dynamo, eventually, stack, staleReadMs } from "./stack_clients.ts";

/** A string attribute. */
export const S = (s: string): AttributeValue => ({ S: s });
/** A number attribute. */
export const N = (n: number | string): AttributeValue => ({ N: String(n) });

/**
 * Validates a table through the data-checksum-validator; its result, as the 200 answer
 * gives it, or as its run's record gives it once the run ends when the function answers
 * 202 (a run that went on past the request's 25 s); a 503 (the pooler refusing logins
 * for a while after the second stack's Postgres restarted) is asked again after its
 * Retry-After (scripts/validation_client.ts).
 */
export async function validate(table: string, repair = false) {
  const sql = connectDb();
  try {
    return await validateThroughFunction(
      {
        functionsUrl: stack.FUNCTIONS_URL,
        serviceRoleKey: stack.SUPABASE_SERVICE_ROLE_KEY,
        sql,
        waitMs: 180_000,
      },
      byTargetTable(table)!,
      repair,
    );
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
