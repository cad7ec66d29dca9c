import assert from "node:assert/strict";
import { canonicalNumber, keyIdentity, keyProblem, keySchemaOf } from "./key_schema.ts";

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
  assert.equal(
    keyIdentity({ pk: { S: "a" }, sk: { N: "1.50" } }, schema),
    keyIdentity({ sk: { N: "15e-1" }, pk: { S: "a" }, v: { S: "x" } }, schema),
  );
});
