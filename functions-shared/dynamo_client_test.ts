/**
 * The clients this project makes: the reader's and the writer's keys, never crossed.
 * (The client's retries: dynamo_http_test.ts.)
 */

import assert from "node:assert/strict";
import { dynamoClients, NO_WRITER_KEY, writerClients } from "./dynamo_client.ts";
import { GetItemCommand } from "./dynamo_commands.ts";

Deno.test("the writer's clients sign with the writer's own key, never the reader's", async () => {
  const signedBy: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    signedBy.push(
      `${
        /Credential=([^/]+)\/\d{8}\/([^/]+)\//.exec(req.headers.get("authorization") ?? "")?.slice(
          1,
        )
      } ` +
        `token:${req.headers.get("x-amz-security-token") ?? "none"}`,
    );
    return Response.json({});
  });
  try {
    const env: Record<string, string> = {
      AWS_ACCESS_KEY_ID: "READERKEY",
      AWS_SECRET_ACCESS_KEY: "reader-secret",
      AWS_SESSION_TOKEN: "reader-token",
      DYNAMODB_ENDPOINT: `http://127.0.0.1:${server.addr.port}`,
    };
    assert.equal(writerClients((n) => env[n])("us-east-1"), NO_WRITER_KEY, "no key: why");
    env.WRITE_BACK_AWS_ACCESS_KEY_ID = " WRITERKEY\n";
    env.WRITE_BACK_AWS_SECRET_ACCESS_KEY = "writer-secret";
    const writer = writerClients((n) => env[n])("us-east-2");
    assert.ok(typeof writer !== "string");
    const get = new GetItemCommand({ TableName: "t", Key: { id: { S: "a" } } });
    await writer.send(get);
    await dynamoClients((n) => env[n])("us-east-1").send(get);
    assert.deepEqual(signedBy, [
      "WRITERKEY,us-east-2 token:none",
      "READERKEY,us-east-1 token:reader-token",
    ], "the reader's session token is not borrowed; keys are trimmed");
  } finally {
    await server.shutdown();
  }
});
