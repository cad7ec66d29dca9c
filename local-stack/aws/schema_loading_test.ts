import assert from "node:assert/strict";
import { DESCRIBE_ATTEMPTS, KeySchemas } from "./key_schema.ts";
import { loadKeySchemas } from "./schema_loading.ts";

const TABLE = {
  KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
  AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
};
const headers = new Headers({
  authorization: "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/dynamodb/aws4_request",
});

Deno.test("loadKeySchemas: a schema read is kept under the request's scope, nothing to answer", async () => {
  const keySchemas = new KeySchemas();
  const described: string[] = [];
  const describe = (_: Headers, table: string) => {
    described.push(table);
    return Promise.resolve(TABLE);
  };
  const refused = await loadKeySchemas({ keySchemas, describe, log: () => {} }, headers, [
    "t",
  ], "BatchWriteItem");
  assert.equal(refused, undefined);
  assert.deepEqual(described, ["t"]);
  assert.deepEqual(keySchemas.get("AKID/eu-west-1/t"), [{ name: "id", type: "S" }]);
});

Deno.test("loadKeySchemas: a schema that cannot be read is an InternalServerError, logged", async () => {
  const lines: string[] = [];
  const describe = () => Promise.reject(new Error("down"));
  const refused = await loadKeySchemas(
    { keySchemas: new KeySchemas(), describe, log: (line) => lines.push(line) },
    headers,
    ["t"],
    "BatchWriteItem",
  );
  assert.equal(refused?.status, 500);
  const body = await refused!.json();
  assert.match(body.__type, /#InternalServerError$/);
  assert.match(body.message, /BatchWriteItem on table t/);
  assert.equal(lines.length, 1);
  assert.match(lines[0], new RegExp(`^BatchWriteItem t: .*${DESCRIBE_ATTEMPTS} times.*refused`));
});
