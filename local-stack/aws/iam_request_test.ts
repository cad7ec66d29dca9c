import assert from "node:assert/strict";
import { accessRequest, expressionAttributes } from "./iam_request.ts";

Deno.test("an expression's top-level attributes: paths' first elements, placeholders resolved", () => {
  const names = { "#a0": "name", "#a1": "_version", "#a3": "id" };
  assert.deepEqual(
    expressionAttributes("attribute_exists(#a3) AND #a0 = :v1 AND #a1 = :v3", names),
    ["id", "name", "_version"],
  );
  assert.deepEqual(
    expressionAttributes(
      "SET #a0 = list_append(#a0, :v), data.inner[2].x = :w REMOVE old[1]",
      names,
    ),
    ["name", "data", "old"],
  );
  assert.deepEqual(
    expressionAttributes(
      "size(tags) > :n OR NOT attribute_type(#x.y, :t) AND a BETWEEN :p AND :q",
      {
        "#x": "meta",
      },
    ),
    ["tags", "meta", "a"],
  );
  assert.deepEqual(expressionAttributes("ADD counter :one DELETE colours :red"), [
    "counter",
    "colours",
  ]);
  assert.deepEqual(
    expressionAttributes("#missing = :v"),
    ["#missing"],
    "an unknown placeholder is named as sent",
  );
  assert.deepEqual(expressionAttributes(""), []);
});

Deno.test("what a request asks of IAM: its action, its tables or stream, an update's names", () => {
  assert.deepEqual(accessRequest("DynamoDB_20120810.Scan", { TableName: "t1" }, "us-east-1"), {
    action: "dynamodb:Scan",
    resources: [{ kind: "table", table: "t1", region: "us-east-1" }],
  });
  assert.deepEqual(
    accessRequest(
      "DynamoDB_20120810.GetItem",
      { TableName: "arn:aws:dynamodb:us-east-2:111122223333:table/t2" },
      "us-east-2",
    ).resources,
    [{ kind: "table", table: "t2", region: "us-east-2" }],
    "a table named by its ARN",
  );
  assert.deepEqual(
    accessRequest(
      "DynamoDB_20120810.BatchWriteItem",
      { RequestItems: { a: [], b: [] } },
      "us-east-1",
    ).resources.map((r) => r.table),
    ["a", "b"],
  );
  const stream = "arn:aws:dynamodb:ddblocal:000000000000:table/t3/stream/2026-12-01T00:00:00.000";
  assert.deepEqual(
    accessRequest(
      "DynamoDBStreams_20120810.GetRecords",
      { ShardIterator: `${stream}|001|QUJD` },
      "us-east-1",
    ),
    {
      action: "dynamodb:GetRecords",
      resources: [{ kind: "stream", table: "t3", region: "us-east-1" }],
    },
    "GetRecords acts on the stream its iterator belongs to",
  );
  assert.deepEqual(
    accessRequest("DynamoDBStreams_20120810.ListStreams", { TableName: "t3" }, "us-east-1"),
    { action: "dynamodb:ListStreams", resources: [] },
    "ListStreams acts on no stream of its own (its resource is *)",
  );
  assert.deepEqual(
    accessRequest("DynamoDB_20120810.UpdateItem", {
      TableName: "t1",
      Key: { pk: { S: "k" } },
      UpdateExpression: "SET #a = :a",
      ConditionExpression: "attribute_exists(pk) AND #b = :b",
      ExpressionAttributeNames: { "#a": "title", "#b": "status" },
      AttributeUpdates: { legacy: {} },
      Expected: { older: {} },
      ReturnValues: "ALL_NEW",
    }, "us-east-1"),
    {
      action: "dynamodb:UpdateItem",
      resources: [{ kind: "table", table: "t1", region: "us-east-1" }],
      attributes: { t1: ["pk", "legacy", "older", "title", "status"] },
      returnValues: "ALL_NEW",
    },
  );
});
