import assert from "node:assert/strict";
import { authorizedDynamo } from "./dynamodb_iam.ts";
import { readerIdentity } from "./iam_policies.ts";
import { SIGNED_BY_HEADER } from "./scope.ts";

const spec = { sourceTable: "things", region: "us-east-1" } as Parameters<
  typeof readerIdentity
>[0][number];

function request(keyId: string, operation: string, body: unknown): Request {
  return new Request("http://proxy/", {
    method: "POST",
    headers: {
      authorization:
        `AWS4-HMAC-SHA256 Credential=${keyId}/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc`,
      "x-amz-target": `DynamoDB_20120810.${operation}`,
    },
    body: JSON.stringify(body),
  });
}

Deno.test("a key with a policy is held to it, then served from the stack's database", async () => {
  const seen: { authorization: string | null; body: string }[] = [];
  const handler = authorizedDynamo(async (req) => {
    seen.push({ authorization: req.headers.get("authorization"), body: await req.text() });
    return new Response("{}");
  }, { identities: { reader: readerIdentity([spec]) }, databaseKeyId: "stack" });

  const refused = await handler(request("reader", "PutItem", { TableName: "things", Item: {} }));
  assert.equal(refused.status, 400);
  assert.deepEqual(await refused.json(), {
    __type: "com.amazon.coral.service#AccessDeniedException",
    message: "User: arn:aws:iam::000000000000:user/supabase-reader is not authorized to perform: " +
      "dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/things " +
      "because no identity-based policy allows the dynamodb:PutItem action",
  });
  assert.equal(seen.length, 0, "nothing refused reaches DynamoDB");

  const allowed = await handler(request("reader", "Scan", { TableName: "things" }));
  assert.equal(allowed.status, 200);
  assert.match(seen[0].authorization!, /^AWS4-HMAC-SHA256 Credential=stack\/20261201\/us-east-1\//);
  assert.equal(seen[0].body, JSON.stringify({ TableName: "things" }), "the body as sent");

  const admin = await handler(request("stack", "PutItem", { TableName: "things", Item: {} }));
  assert.equal(admin.status, 200, "the stack's own key has no policy");
  assert.match(seen[1].authorization!, /Credential=stack\//);

  // A body that is not one JSON object is refused as DynamoDB refuses it, never passed
  // on: DynamoDB Local runs the object before trailing bytes (a refused write written).
  for (
    const body of [
      "{not json",
      '{"TableName": "things", "Item": {}} trailing',
      '{"TableName": "things"}{"x": 1}',
      "[]",
    ]
  ) {
    const garbled = await handler(
      new Request("http://proxy/", {
        method: "POST",
        headers: request("reader", "PutItem", {}).headers,
        body,
      }),
    );
    assert.equal(garbled.status, 400, body);
    assert.equal((await garbled.json()).__type, "com.amazon.coral.service#SerializationException");
  }
  assert.equal(seen.length, 2, "none reached DynamoDB Local");
});

Deno.test("a request handed on says which key signed it; a client's own claim of it is dropped", async () => {
  const signers: (string | null)[] = [];
  const handler = authorizedDynamo((req) => {
    signers.push(req.headers.get(SIGNED_BY_HEADER));
    return Promise.resolve(new Response("{}"));
  }, { identities: { reader: readerIdentity([spec]) }, databaseKeyId: "stack" });
  await handler(request("reader", "Scan", { TableName: "things" }));
  const claimed = request("stack", "Scan", { TableName: "things" });
  claimed.headers.set(SIGNED_BY_HEADER, "reader");
  await handler(claimed);
  const readerClaimsStack = request("reader", "Scan", { TableName: "things" });
  readerClaimsStack.headers.set(SIGNED_BY_HEADER, "stack");
  await handler(readerClaimsStack);
  assert.deepEqual(signers, ["reader", null, "reader"]);
});
