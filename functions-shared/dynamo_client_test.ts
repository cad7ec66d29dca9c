/**
 * The clients this project makes: the reader's and the writer's keys, never crossed.
 * (The client's retries: dynamo_http_test.ts.)
 */

import assert from "node:assert/strict";
import { NO_WRITER_KEY, writerClients } from "./dynamo_client.ts";

Deno.test("the writer's clients sign with the writer's own key, never the reader's", () => {
  const env: Record<string, string> = {
    AWS_ACCESS_KEY_ID: "READERKEY",
    AWS_SECRET_ACCESS_KEY: "reader-secret",
    AWS_SESSION_TOKEN: "reader-token",
  };
  assert.equal(writerClients((n) => env[n])("us-east-1"), NO_WRITER_KEY, "no key: why");
  env.WRITE_BACK_AWS_ACCESS_KEY_ID = "WRITERKEY";
  env.WRITE_BACK_AWS_SECRET_ACCESS_KEY = "writer-secret";
  const client = writerClients((n) => env[n])("us-east-2");
  assert.ok(typeof client !== "string");
  const credentials = client.config.credentials!;
  assert.equal(credentials.accessKeyId, "WRITERKEY");
  assert.equal(credentials.secretAccessKey, "writer-secret");
  assert.equal(credentials.sessionToken, undefined, "the reader's session token is not borrowed");
  assert.equal(client.region, "us-east-2");
});
