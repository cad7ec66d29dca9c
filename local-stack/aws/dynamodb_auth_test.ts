import assert from "node:assert/strict";
import { DynamoDBClient, ListTablesCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { authenticatedDynamo, type DynamoAuthConfig } from "./dynamodb_auth.ts";
import { awsJsonAnswer } from "./json_answer.ts";
import { amzDate, canonicalRequest, MAX_SKEW_MS, sha256Hex, signatureOf } from "./signature_v4.ts";

const KEY = { accessKeyId: "local", secretAccessKey: "local" };

/**
 * The checks in front of a DynamoDB that answers every request it is handed with an
 * empty JSON object (and counts them); `test` gets its address.
 */
async function withProxy(
  config: Partial<DynamoAuthConfig>,
  test: (endpoint: string, served: () => number) => Promise<void>,
) {
  let served = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    authenticatedDynamo(async (req) => {
      await req.arrayBuffer();
      served++;
      return awsJsonAnswer(200, {});
    }, { secrets: { [KEY.accessKeyId]: KEY.secretAccessKey }, ...config }),
  );
  try {
    await test(`http://127.0.0.1:${server.addr.port}`, () => served);
  } finally {
    await server.shutdown();
  }
}

function client(
  endpoint: string,
  options: Partial<ConstructorParameters<typeof DynamoDBClient>[0]> = {},
) {
  return new DynamoDBClient({
    region: "us-west-2",
    endpoint,
    credentials: KEY,
    maxAttempts: 1,
    ...options,
  });
}

type AwsError = Error & { $metadata: { httpStatusCode: number } };

Deno.test("the SDK's signed requests are served, in any region", async () => {
  await withProxy({}, async (endpoint, served) => {
    await client(endpoint).send(new ListTablesCommand({}));
    await client(endpoint, { region: "us-east-1" }).send(
      new PutItemCommand({ TableName: "t", Item: { id: { S: "ü €" } } }),
    );
    assert.equal(served(), 2);
  });
});

Deno.test("a wrong secret, an unknown key or no signature is refused as DynamoDB refuses it", async () => {
  await withProxy({}, async (endpoint, served) => {
    await assert.rejects(
      client(endpoint, { credentials: { ...KEY, secretAccessKey: "wrong" } })
        .send(new ListTablesCommand({})),
      (e: AwsError) =>
        e.name === "InvalidSignatureException" && e.$metadata.httpStatusCode === 400 &&
        /signature we calculated does not match/.test(e.message),
    );
    await assert.rejects(
      client(endpoint, { credentials: { ...KEY, accessKeyId: "AKIAUNKNOWN" } })
        .send(new ListTablesCommand({})),
      (e: AwsError) =>
        e.name === "UnrecognizedClientException" &&
        e.message === "The security token included in the request is invalid.",
    );
    const unsigned = await fetch(endpoint, {
      method: "POST",
      headers: { "x-amz-target": "DynamoDB_20120810.ListTables" },
      body: "{}",
    });
    assert.equal(unsigned.status, 400);
    assert.match(await unsigned.text(), /MissingAuthenticationTokenException/);
    assert.equal(served(), 0);
  });
});

Deno.test("a clock more than 15 minutes off is refused with the proxy's time, from which the SDK corrects itself", async () => {
  await withProxy({ now: () => Date.now() + MAX_SKEW_MS + 60_000 }, async (endpoint, served) => {
    await assert.rejects(
      client(endpoint).send(new ListTablesCommand({})),
      (e: AwsError) =>
        e.name === "InvalidSignatureException" &&
        /^Signature expired: \d{8}T\d{6}Z is now earlier than/.test(e.message),
    );
    assert.equal(served(), 0);
    await client(endpoint, { maxAttempts: 2 }).send(new ListTablesCommand({}));
    assert.equal(served(), 1);
  });
});

Deno.test("a body that is not the one signed is refused", async () => {
  await withProxy({}, async (endpoint, served) => {
    const date = amzDate(Date.now());
    const headers: Record<string, string> = {
      host: new URL(endpoint).host,
      "x-amz-date": date,
      "x-amz-target": "DynamoDB_20120810.DeleteTable",
    };
    const signedHeaders = Object.keys(headers).sort();
    const signature = signatureOf(
      canonicalRequest({
        method: "POST",
        path: "/",
        query: "",
        header: (name) => headers[name] ?? null,
        signedHeaders,
        payloadHash: sha256Hex('{"TableName":"scratch"}'),
      }),
      date,
      { day: date.slice(0, 8), region: "us-east-1", service: "dynamodb" },
      KEY.secretAccessKey,
    );
    const send = (body: string) =>
      fetch(endpoint, {
        method: "POST",
        headers: {
          ...headers,
          authorization: `AWS4-HMAC-SHA256 Credential=local/${
            date.slice(0, 8)
          }/us-east-1/dynamodb/aws4_request, SignedHeaders=${
            signedHeaders.join(";")
          }, Signature=${signature}`,
        },
        body,
      });
    const tampered = await send('{"TableName":"production"}');
    assert.equal(tampered.status, 400);
    assert.match(await tampered.text(), /InvalidSignatureException/);
    assert.equal(served(), 0);
    const intact = await send('{"TableName":"scratch"}');
    await intact.body?.cancel();
    assert.equal(intact.status, 200);
    assert.equal(served(), 1);
  });
});
