/**
 * The SDK client's retries against a fake DynamoDB (a `Deno.serve` that answers errors
 * as AWS does): which errors are retried, and how many attempts in all.
 */

import assert from "node:assert/strict";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import {
  DYNAMO_MAX_ATTEMPTS,
  dynamoClients,
  NO_WRITER_KEY,
  writerClients,
} from "./dynamo_client.ts";

function fakeDynamo(answers: { status: number; type?: string }[]) {
  let calls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    const answer = answers[Math.min(calls++, answers.length - 1)];
    const body = answer.type
      ? { __type: `com.amazonaws.dynamodb.v20120810#${answer.type}`, message: `${answer.type}!` }
      : {};
    return new Response(JSON.stringify(body), {
      status: answer.status,
      headers: { "content-type": "application/x-amz-json-1.0" },
    });
  });
  const env: Record<string, string> = {
    DYNAMODB_ENDPOINT: `http://127.0.0.1:${server.addr.port}`,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
  };
  return { client: dynamoClients((n) => env[n])("us-east-1"), calls: () => calls, server };
}

const get = new GetItemCommand({ TableName: "t", Key: { id: { S: "a" } } });

Deno.test("an InternalServerError is retried until the attempts are spent, then thrown", async () => {
  const fake = fakeDynamo([{ status: 500, type: "InternalServerError" }]);
  try {
    await assert.rejects(fake.client.send(get), (e: Error) => e.name === "InternalServerError");
    assert.equal(fake.calls(), DYNAMO_MAX_ATTEMPTS);
  } finally {
    await fake.server.shutdown();
  }
});

Deno.test("a throttled request is retried and then succeeds", async () => {
  const fake = fakeDynamo([
    { status: 400, type: "ProvisionedThroughputExceededException" },
    { status: 200 },
  ]);
  try {
    const result = await fake.client.send(get);
    assert.equal(result.Item, undefined);
    assert.equal(fake.calls(), 2);
  } finally {
    await fake.server.shutdown();
  }
});

Deno.test("a validation error is not retried", async () => {
  const fake = fakeDynamo([{ status: 400, type: "ValidationException" }]);
  try {
    await assert.rejects(fake.client.send(get), (e: Error) => e.name === "ValidationException");
    assert.equal(fake.calls(), 1);
  } finally {
    await fake.server.shutdown();
  }
});

Deno.test("the writer's clients sign with the writer's own key, never the reader's", async () => {
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
  const credentials = await client.config.credentials();
  assert.equal(credentials.accessKeyId, "WRITERKEY");
  assert.equal(credentials.secretAccessKey, "writer-secret");
  assert.equal(credentials.sessionToken, undefined, "the reader's session token is not borrowed");
  assert.equal(await client.config.region(), "us-east-2");
});
