import assert from "node:assert/strict";
import { describedTable, mayWriteStreams, tablesOf } from "./operations.ts";

const json = (body: unknown) => new TextEncoder().encode(JSON.stringify(body)).buffer;

Deno.test("mayWriteStreams: writes and PartiQL may, reads and descriptions may not", () => {
  for (const op of ["PutItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement"]) {
    assert.equal(mayWriteStreams(op), true, op);
  }
  for (
    const op of ["GetItem", "Query", "Scan", "DescribeTable", "ListTables", "TransactGetItems"]
  ) {
    assert.equal(mayWriteStreams(op), false, op);
  }
});

Deno.test("describedTable: the table of a DescribeTable or DescribeStream, else undefined", () => {
  const arn = "arn:aws:dynamodb:ddblocal:000000000000:table/things/stream/2026-12-01T00:00:00.000";
  assert.equal(
    describedTable("DynamoDB_20120810.DescribeTable", json({ TableName: "things" })),
    "things",
  );
  assert.equal(
    describedTable("DynamoDBStreams_20120810.DescribeStream", json({ StreamArn: arn })),
    "things",
  );
  assert.equal(
    describedTable("DynamoDB_20120810.GetItem", json({ TableName: "things" })),
    undefined,
  );
  assert.equal(describedTable("DynamoDB_20120810.DescribeTable", json({})), undefined);
  assert.equal(
    describedTable("DynamoDB_20120810.DescribeTable", new TextEncoder().encode("{").buffer),
    undefined,
  );
  assert.equal(describedTable("DynamoDB_20120810.DescribeTable", undefined), undefined);
});

Deno.test("tablesOf: a TableName, a batch's tables, a transaction's tables once each", () => {
  assert.deepEqual(tablesOf("GetItem", { TableName: "a" }), ["a"]);
  assert.deepEqual(tablesOf("BatchWriteItem", { RequestItems: { a: [], b: [] } }), ["a", "b"]);
  assert.deepEqual(tablesOf("BatchGetItem", {}), []);
  assert.deepEqual(
    tablesOf("TransactWriteItems", {
      TransactItems: [
        { Put: { TableName: "a" } },
        { Delete: { TableName: "b" } },
        { Update: { TableName: "a" } },
      ],
    }),
    ["a", "b"],
  );
  assert.deepEqual(tablesOf("ListTables", {}), []);
});
