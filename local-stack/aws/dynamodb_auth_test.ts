import assert from "node:assert/strict";
import { DynamoDBClient, ListTablesCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { authenticatedDynamo, type DynamoAuthConfig, dynamoAuthRefusal } from "./dynamodb_auth.ts";
import { awsJsonAnswer } from "./json_answer.ts";
import { DYNAMODB_MAX_SKEW_MS, sha256Hex } from "./signature_v4.ts";
import { signedHeaders, withCheckedServer } from "./signature_v4_fixtures.ts";

const KEY = { accessKeyId: "local", secretAccessKey: "local" };

/** The checks in front of a DynamoDB that answers `{}` to all it is handed. */
function withProxy(
  config: Partial<DynamoAuthConfig>,
  test: (endpoint: string, served: () => number) => Promise<void>,
) {
  return withCheckedServer(
    (upstream) =>
      authenticatedDynamo(upstream, {
        secrets: { [KEY.accessKeyId]: KEY.secretAccessKey },
        ...config,
      }),
    () => awsJsonAnswer(200, {}),
    test,
  );
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

Deno.test("a clock more than 5 minutes off is refused with the proxy's time, from which the SDK corrects itself", async () => {
  // Six minutes: within S3's 15, past DynamoDB's 5.
  await withProxy(
    { now: () => Date.now() + DYNAMODB_MAX_SKEW_MS + 60_000 },
    async (endpoint, served) => {
      await assert.rejects(
        client(endpoint).send(new ListTablesCommand({})),
        (e: AwsError) =>
          e.name === "InvalidSignatureException" &&
          /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/
            .test(e.message),
      );
      assert.equal(served(), 0);
      await client(endpoint, { maxAttempts: 2 }).send(new ListTablesCommand({}));
      assert.equal(served(), 1);
    },
  );
});

Deno.test("a body that is not the one signed is refused", async () => {
  await withProxy({}, async (endpoint, served) => {
    const headers = signedHeaders("POST", `${endpoint}/`, sha256Hex('{"TableName":"scratch"}'), {
      service: "dynamodb",
      key: KEY,
      extra: { "x-amz-target": "DynamoDB_20120810.DeleteTable" },
    });
    const send = (body: string) => fetch(endpoint, { method: "POST", headers, body });
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

Deno.test("a scope of another service or day, host left unsigned, or a clock ahead is refused as DynamoDB refuses it", async () => {
  const now = Date.now();
  const typeOf = async (answer: Response) => [answer.status, (await answer.json()).__type];
  const body = '{"TableName":"t"}';
  const extra = { "x-amz-target": "DynamoDB_20120810.DescribeTable" };
  await withProxy({ now: () => now - DYNAMODB_MAX_SKEW_MS - 60_000 }, async (endpoint) => {
    const headers = signedHeaders("POST", `${endpoint}/`, sha256Hex(body), {
      service: "dynamodb",
      key: KEY,
      extra,
    });
    const answer = await fetch(endpoint, { method: "POST", headers, body });
    const { __type, message } = await answer.json();
    assert.equal(__type, "com.amazon.coral.service#InvalidSignatureException");
    assert.match(message, /^Signature not yet current: .* \+ 5 min\.\)$/);
  });
  await withProxy({}, async (endpoint, served) => {
    const signed = signedHeaders("POST", `${endpoint}/`, sha256Hex(body), {
      service: "dynamodb",
      key: KEY,
      extra,
    });
    const sent = (headers: Record<string, string>) =>
      fetch(endpoint, { method: "POST", headers, body });
    const invalid = [400, "com.amazon.coral.service#InvalidSignatureException"];
    const s3 = signedHeaders("POST", `${endpoint}/`, sha256Hex(body), {
      service: "s3",
      key: KEY,
      extra,
    });
    assert.deepEqual(await typeOf(await sent(s3)), invalid);
    const noHost = signed.authorization.replace("SignedHeaders=host;", "SignedHeaders=");
    assert.deepEqual(await typeOf(await sent({ ...signed, authorization: noHost })), invalid);
    const otherDay = signed.authorization.replace(
      /Credential=(\w+)\/\d{8}\//,
      "Credential=$1/20200101/",
    );
    assert.deepEqual(await typeOf(await sent({ ...signed, authorization: otherDay })), invalid);
    assert.equal(served(), 0);
  });
});

Deno.test("a clock 5 minutes off is served; a millisecond more is refused as expired", async () => {
  const at = Date.UTC(2026, 0, 15, 12);
  const body = new TextEncoder().encode("{}");
  const refusal = async (now: number, drop?: string) => {
    const headers = signedHeaders("POST", "http://127.0.0.1:8000/", sha256Hex(body), {
      service: "dynamodb",
      key: KEY,
      extra: { "x-amz-target": "DynamoDB_20120810.ListTables" },
      at,
    });
    if (drop) delete headers[drop];
    const req = new Request("http://127.0.0.1:8000/", { method: "POST", headers, body });
    const answer = dynamoAuthRefusal(req, body, { secrets: { local: "local" }, now: () => now });
    return answer && [answer.status, (await answer.json()).__type];
  };
  assert.equal(await refusal(at + 300_000), null);
  assert.equal(await refusal(at - 300_000), null);
  assert.deepEqual(await refusal(at + 300_001), [
    400,
    "com.amazon.coral.service#InvalidSignatureException",
  ]);
  assert.deepEqual(await refusal(at - 300_001), [
    400,
    "com.amazon.coral.service#InvalidSignatureException",
  ]);
  assert.deepEqual(await refusal(at, "x-amz-date"), [
    400,
    "com.amazon.coral.service#IncompleteSignatureException",
  ]);
});
