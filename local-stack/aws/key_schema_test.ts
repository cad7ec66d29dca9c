import assert from "node:assert/strict";
import { keyOf, keyText } from "./history.ts";
import {
  canonicalNumber,
  DESCRIBE_ATTEMPTS,
  keyProblem,
  keySchemaOf,
  KeySchemas,
  SchemaUnknown,
} from "./key_schema.ts";
import { UpstreamError } from "./upstream.ts";

const TABLE = {
  KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
  AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
};
const notFound = () =>
  new UpstreamError("DescribeTable", 400, {
    __type: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
    message: "Cannot do operations on a non-existent table",
  });
const failed = () =>
  new UpstreamError("DescribeTable", 500, {
    __type: "com.amazonaws.dynamodb.v20120810#InternalFailure",
    message: "The request processing has failed",
  });

/** A DescribeTable that answers each call with `answers`' next (an error is thrown). */
function describing(...answers: unknown[]) {
  const calls: string[] = [];
  const describe = (table: string) => {
    calls.push(table);
    const next = answers.length > 1 ? answers.shift() : answers[0];
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
  };
  return { describe, calls };
}

Deno.test("a table's key schema: names from KeySchema, partition key first, types from AttributeDefinitions", () => {
  assert.deepEqual(
    keySchemaOf({
      KeySchema: [{ AttributeName: "sk", KeyType: "RANGE" }, {
        AttributeName: "pk",
        KeyType: "HASH",
      }],
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "gsi", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "N" },
      ],
    }),
    [{ name: "pk", type: "S" }, { name: "sk", type: "N" }],
  );
  assert.equal(keySchemaOf(undefined), undefined);
  assert.equal(keySchemaOf({ KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] }), undefined);
  assert.equal(
    keySchemaOf({
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "other", AttributeType: "S" }],
    }),
    undefined,
    "a key attribute with no definition",
  );
});

Deno.test("numbers as DynamoDB takes them: one canonical text per number, none past its limits", () => {
  assert.equal(canonicalNumber("1"), canonicalNumber("1.0"));
  assert.equal(canonicalNumber("1000"), canonicalNumber("1E+3"));
  assert.equal(canonicalNumber("00012.500"), canonicalNumber("12.5"));
  assert.equal(canonicalNumber(".5"), canonicalNumber("5e-1"));
  assert.equal(canonicalNumber("-0"), "0");
  assert.notEqual(canonicalNumber("-1"), canonicalNumber("1"));
  assert.notEqual(canonicalNumber("10"), canonicalNumber("1"));
  for (const bad of [" 1", "1 ", "0x1", "Infinity", "", ".", "e5", "1e126", "1e-131"]) {
    assert.equal(canonicalNumber(bad), undefined, bad);
  }
  assert.equal(canonicalNumber("1".repeat(39)), undefined, "39 significant digits");
  assert.ok(canonicalNumber("1".repeat(38) + "00000"), "38, and zeros");
  assert.ok(canonicalNumber("9.9999999999999999999999999999999999999e125"));
  assert.ok(canonicalNumber("1e-130"));
});

Deno.test("a key's problems, and its identity", () => {
  const schema = [{ name: "pk", type: "S" as const }, { name: "sk", type: "N" as const }];
  assert.equal(keyProblem({ pk: { S: "a" }, sk: { N: "1" } }, schema, true), undefined);
  assert.equal(
    keyProblem({ pk: { S: "a" }, sk: { N: "1" }, v: { S: "x" } }, schema, true),
    "a key holds exactly pk and sk",
  );
  assert.equal(
    keyProblem({ pk: { S: "a" }, sk: { N: "1" }, v: { S: "x" } }, schema, false),
    undefined,
  );
  assert.equal(keyProblem({ pk: { S: "a" } }, schema, false), "sk is missing");
  assert.equal(
    keyProblem({ pk: { N: "1" }, sk: { N: "1" } }, schema, false),
    "pk is not of type S",
  );
  assert.equal(keyProblem({ pk: { S: "" }, sk: { N: "1" } }, schema, false), "pk is empty");
  assert.equal(
    keyProblem({ pk: { S: "a" }, sk: { N: "one" } }, schema, false),
    "sk is not a number",
  );
  assert.equal(
    keyProblem({ pk: { S: "a" }, sk: { S: "s".repeat(1025) } }, [schema[0], {
      name: "sk",
      type: "S",
    }], false),
    "sk is too long",
    "a sort key over 1024 bytes",
  );
  assert.equal(
    keyProblem({ b: { B: "not base64!" } }, [{ name: "b", type: "B" }], false),
    "b is not base64",
  );
  const keyNames = schema.map((k) => k.name);
  assert.equal(
    keyText(keyOf({ pk: { S: "a" }, sk: { N: "1.50" } }, keyNames)),
    keyText(keyOf({ sk: { N: "15e-1" }, pk: { S: "a" }, v: { S: "x" } }, keyNames)),
  );
});

Deno.test("key schemas are read once a table, per scope", async () => {
  const schemas = new KeySchemas();
  const { describe, calls } = describing(TABLE);
  await schemas.load("s", ["t"], describe);
  await schemas.load("s", ["t"], describe);
  assert.deepEqual(schemas.get("s/t"), [{ name: "id", type: "S" }]);
  assert.equal(schemas.get("other/t"), undefined);
  assert.deepEqual(calls, ["t"]);
});

Deno.test("a table DynamoDB does not know has no schema, and is no error", async () => {
  const schemas = new KeySchemas();
  const { describe, calls } = describing(failed(), notFound());
  await schemas.load("s", ["gone"], describe);
  assert.equal(schemas.get("s/gone"), undefined);
  assert.deepEqual(calls, ["gone", "gone"], "a failure, then the answer that it is not there");
});

Deno.test("a DescribeTable that fails is asked again, then the schema is unknown: an error naming the table", async () => {
  const flaky = describing(failed(), failed(), TABLE);
  const schemas = new KeySchemas();
  await schemas.load("s", ["t"], flaky.describe);
  assert.deepEqual(schemas.get("s/t"), [{ name: "id", type: "S" }]);
  assert.equal(flaky.calls.length, 3);

  const broken = describing(failed());
  await assert.rejects(schemas.load("s", ["t", "u"], broken.describe), (error: Error) => {
    assert.ok(error instanceof SchemaUnknown);
    assert.equal(error.table, "u");
    assert.equal(
      error.message,
      `the key schema of table u could not be read (DescribeTable, ${DESCRIBE_ATTEMPTS} times): ` +
        'DescribeTable: {"__type":"com.amazonaws.dynamodb.v20120810#InternalFailure",' +
        '"message":"The request processing has failed"}',
    );
    return true;
  });
  assert.deepEqual(broken.calls, Array(DESCRIBE_ATTEMPTS).fill("u"));
  assert.equal(schemas.get("s/u"), undefined);

  await assert.rejects(
    new KeySchemas().load("s", ["t"], describing({ KeySchema: [] }).describe),
    { name: "SchemaUnknown", message: /DescribeTable answered no key schema/ },
  );
});
