/**
 * `data-checksum-validator`: compares a DynamoDB table with its Postgres target, key by
 * key, and with `repair` re-applies the source state of the keys that differ
 * (interfaces.md). See functions-shared/checksum_validator.ts.
 */

import { dynamoClients } from "../../../functions-shared/dynamo_client.ts";
import { connectDb } from "../../../functions-shared/sync_db.ts";
import { handleValidatorRequest } from "../../../functions-shared/validator_endpoint.ts";

declare const EdgeRuntime: { waitUntil(promise: Promise<unknown>): void };

const env = (name: string) => Deno.env.get(name);
const sql = connectDb(env("SUPABASE_DB_URL")!, 10);
const dynamo = dynamoClients(env);
const selfUrl = `${env("SUPABASE_URL")}/functions/v1/data-checksum-validator`;

/** Another request to this function, for a run that goes on. */
async function callSelf(body: unknown): Promise<void> {
  const response = await fetch(selfUrl, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env("SUPABASE_SERVICE_ROLE_KEY")}`,
      "content-type": "application/json",
    },
    body: JSON.stringify(body),
  }).catch((error) => console.error(`could not continue the validation: ${error.message}`));
  await response?.body?.cancel();
}

Deno.serve((req) =>
  handleValidatorRequest(req, {
    sql,
    dynamo,
    serviceRoleKey: env("SUPABASE_SERVICE_ROLE_KEY"),
    waitUntil: (work) => EdgeRuntime.waitUntil(work),
    callSelf,
    budget: {
      cpuMs: Number(env("VALIDATOR_CPU_BUDGET_MS") ?? 1_200),
      wallMs: Number(env("VALIDATOR_WALL_BUDGET_MS") ?? 100_000),
    },
    settleMs: Number(env("VALIDATOR_SETTLE_MS") ?? 1_000),
    log: (line) => console.log(line),
  })
);
