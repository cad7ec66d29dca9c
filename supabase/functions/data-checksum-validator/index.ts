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

Deno.serve((req) =>
  handleValidatorRequest(req, {
    sql,
    dynamo,
    serviceRoleKey: env("SUPABASE_SERVICE_ROLE_KEY"),
    waitUntil: (work) => EdgeRuntime.waitUntil(work),
    settleMs: Number(env("VALIDATOR_SETTLE_MS") ?? 1_000),
    log: (line) => console.log(line),
  })
);
