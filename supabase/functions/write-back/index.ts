/**
 * `write-back`: writes admins' edits of mirror rows back to their DynamoDB items
 * (docs/interfaces.md, "write-back"). pg_net calls it after an edit commits and pg_cron
 * sweeps every 10 s for retries; see functions-shared/write_back_run.ts. Service-role
 * authenticated (`verify_jwt = false` in supabase/config.toml, like the others).
 *
 * Reads items with the reader's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
 * and writes them with the writer's own (WRITE_BACK_AWS_ACCESS_KEY_ID,
 * WRITE_BACK_AWS_SECRET_ACCESS_KEY: an identity allowed only UpdateItem of the mapped
 * attributes, infrastructure/terraform). Without the writer's key each write-back is
 * retried and then recorded as failed, saying so.
 */

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  awsClientConfig,
  dynamoClients,
  perRegion,
} from "../../../functions-shared/dynamo_client.ts";
import { acceptedServiceKeys } from "../../../functions-shared/service_auth.ts";
import { readSettings, WRITE_BACK_SETTINGS } from "../../../functions-shared/settings.ts";
import { describeDbTarget } from "../../../functions-shared/db_url.ts";
import {
  connectDb,
  dbPool,
  survivePooledConnectionLoss,
} from "../../../functions-shared/sync_db.ts";
import { handleWriteBackRequest } from "../../../functions-shared/write_back_run.ts";

const env = (name: string) => Deno.env.get(name);
const settings = readSettings(env, WRITE_BACK_SETTINGS);
const serviceKeys = acceptedServiceKeys(env);
const sql = connectDb(settings.db, dbPool(settings));
survivePooledConnectionLoss();
console.log(`write-back: database ${describeDbTarget(settings.db)}`);
const reader = dynamoClients(env);
const hasWriterKey = Boolean(
  env("WRITE_BACK_AWS_ACCESS_KEY_ID")?.trim() && env("WRITE_BACK_AWS_SECRET_ACCESS_KEY")?.trim(),
);
// The writer's client: the same configuration with the writer's key in place of the reader's.
const writer = perRegion((region) =>
  new DynamoDBClient(awsClientConfig((name) => {
    if (name === "AWS_ACCESS_KEY_ID") return env("WRITE_BACK_AWS_ACCESS_KEY_ID");
    if (name === "AWS_SECRET_ACCESS_KEY") return env("WRITE_BACK_AWS_SECRET_ACCESS_KEY");
    if (name === "AWS_SESSION_TOKEN") return undefined;
    return env(name);
  }, region))
);
const worker = `write-back-${crypto.randomUUID()}`;

Deno.serve((req) =>
  handleWriteBackRequest(req, {
    sql,
    serviceKeys,
    reader,
    writer: (region) =>
      hasWriterKey
        ? writer(region)
        : "no writer credentials: set the function secrets WRITE_BACK_AWS_ACCESS_KEY_ID and WRITE_BACK_AWS_SECRET_ACCESS_KEY (README, write-back)",
    worker,
    wallBudgetMs: settings.wallBudgetMs,
    log: (line) => console.log(line),
  })
);
