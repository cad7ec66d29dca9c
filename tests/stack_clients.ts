/**
 * Clients of the local stack for end-to-end tests: Postgres as the superuser, DynamoDB
 * Local per region, and the Edge Functions by name. All read `.local/stack.env`.
 *
 * @module
 */

import postgres from "postgres";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { readStackEnv, type StackEnv } from "../local-stack/stack_env.ts";

/** The stack's settings. */
export const stack: StackEnv = readStackEnv();

/** A Postgres connection pool; call `end()` when done. */
export function connectDb(): postgres.Sql {
  return postgres(stack.DATABASE_URL, { max: 4, onnotice: () => {} });
}

const awsOptions = (region: string) => ({
  region,
  endpoint: stack.DYNAMODB_ENDPOINT,
  credentials: {
    accessKeyId: stack.AWS_ACCESS_KEY_ID,
    secretAccessKey: stack.AWS_SECRET_ACCESS_KEY,
  },
});

/** A DynamoDB client of DynamoDB Local in `region`. */
export function dynamo(region = stack.AWS_REGION): DynamoDBClient {
  return new DynamoDBClient(awsOptions(region));
}

/** A DynamoDB Streams client of DynamoDB Local in `region`. */
export function dynamoStreams(region = stack.AWS_REGION): DynamoDBStreamsClient {
  return new DynamoDBStreamsClient(awsOptions(region));
}

/** Calls an Edge Function through the stack's gateway. */
export async function callFunction(name: string, init: RequestInit = {}): Promise<Response> {
  return await fetch(`${stack.FUNCTIONS_URL}/${name}`, init);
}

/** The service role key as an Authorization header. */
export function serviceRoleHeaders(): Record<string, string> {
  return {
    authorization: `Bearer ${stack.SUPABASE_SERVICE_ROLE_KEY}`,
    "content-type": "application/json",
  };
}

/** Polls `read` every 250 ms until it returns a value other than undefined. */
export async function eventually<T>(
  what: string,
  read: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}
