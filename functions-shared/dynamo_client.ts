/**
 * DynamoDB clients for the Edge Functions, one per region, configured from the
 * function's environment (its secrets): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * optional AWS_SESSION_TOKEN, and DYNAMODB_ENDPOINT for DynamoDB Local. Credentials are
 * given explicitly: the SDK's default chain looks for files an Edge Function lacks.
 *
 * @module
 */

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";

/** Reads an environment variable (Deno's or, in Node, the process's). */
export type EnvReader = (name: string) => string | undefined;

/** Returns a function that gives the (cached) client of a region. */
export function dynamoClients(env: EnvReader): (region: string) => DynamoDBClient {
  const clients = new Map<string, DynamoDBClient>();
  return (region) => {
    let client = clients.get(region);
    if (!client) {
      const accessKeyId = env("AWS_ACCESS_KEY_ID");
      const secretAccessKey = env("AWS_SECRET_ACCESS_KEY");
      client = new DynamoDBClient({
        region,
        endpoint: env("DYNAMODB_ENDPOINT") || undefined,
        maxAttempts: 5,
        ...(accessKeyId && secretAccessKey
          ? {
            credentials: { accessKeyId, secretAccessKey, sessionToken: env("AWS_SESSION_TOKEN") },
          }
          : {}),
      });
      clients.set(region, client);
    }
    return client;
  };
}
