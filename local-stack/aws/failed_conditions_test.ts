import assert from "node:assert/strict";
import type { Item } from "./capacity.ts";
import {
  askingForConditionItem,
  clientErrorText,
  failedConditionCharge,
} from "./failed_conditions.ts";

/** An item of exactly `bytes` bytes as AWS counts them (`id` 2 + 1, `d` 1 + the rest). */
const sized = (id: string, bytes: number): Item => ({
  id: { S: id },
  d: { S: "x".repeat(bytes - 3 - id.length) },
});
const FAILED = "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException";
/** DynamoDB Local's answer to a failed condition, with the item it met when there is one. */
const failed = (item?: Item) =>
  JSON.stringify({
    __type: FAILED,
    Message: "The conditional request failed",
    ...(item ? { Item: item } : {}),
  });
const key = { id: { S: "a" } };

Deno.test("a failed condition costs the units of the item it met, one when there was none", () => {
  const existing = sized("a", 2500); // 3 units
  for (const operation of ["UpdateItem", "DeleteItem"]) {
    assert.deepEqual(
      failedConditionCharge(operation, { TableName: "t", Key: key }, failed(existing)),
      new Map([["t", 3]]),
      operation,
    );
    assert.deepEqual(
      failedConditionCharge(operation, { TableName: "t", Key: key }, failed()),
      new Map([["t", 1]]),
      `${operation} of no item`,
    );
  }
  const put = (bytes: number) => ({ TableName: "t", Item: sized("a", bytes) });
  assert.deepEqual(
    failedConditionCharge("PutItem", put(100), failed(existing)),
    new Map([["t", 3]]),
  );
  assert.deepEqual(
    failedConditionCharge("PutItem", put(3500), failed(existing)),
    new Map([["t", 4]]),
    "the new item, when larger",
  );
  assert.deepEqual(failedConditionCharge("PutItem", put(2500), failed()), new Map([["t", 3]]));
});

Deno.test("other refusals cost nothing", () => {
  const invalid = JSON.stringify({
    __type: "com.amazon.coral.validate#ValidationException",
    Message: "One or more parameter values were invalid",
  });
  assert.deepEqual(failedConditionCharge("PutItem", { TableName: "t" }, invalid), new Map());
  assert.deepEqual(failedConditionCharge("PutItem", { TableName: "t" }, "not json"), new Map());
  assert.deepEqual(failedConditionCharge("TransactWriteItems", {}, failed()), new Map());
  assert.deepEqual(failedConditionCharge("UpdateItem", {}, failed()), new Map(), "no table");
});

Deno.test("a single write is forwarded asking for the item its condition meets", () => {
  const update = { TableName: "t", Key: key, ConditionExpression: "attribute_exists(id)" };
  assert.deepEqual(askingForConditionItem("UpdateItem", update), {
    ...update,
    ReturnValuesOnConditionCheckFailure: "ALL_OLD",
  });
  const none = { ...update, ReturnValuesOnConditionCheckFailure: "NONE" };
  assert.equal(
    askingForConditionItem("DeleteItem", none).ReturnValuesOnConditionCheckFailure,
    "ALL_OLD",
  );
  const asked = { ...update, ReturnValuesOnConditionCheckFailure: "ALL_OLD" };
  assert.equal(askingForConditionItem("PutItem", asked), asked);
  const batch = { RequestItems: {} };
  assert.equal(askingForConditionItem("BatchWriteItem", batch), batch);
});

Deno.test("the client gets the item its condition met only if it asked for it", () => {
  const item = sized("a", 50);
  assert.deepEqual(JSON.parse(clientErrorText("UpdateItem", {}, failed(item))), {
    __type: FAILED,
    Message: "The conditional request failed",
  });
  assert.equal(
    clientErrorText("UpdateItem", { ReturnValuesOnConditionCheckFailure: "NONE" }, failed(item)),
    failed(),
  );
  const asked = { ReturnValuesOnConditionCheckFailure: "ALL_OLD" };
  assert.equal(clientErrorText("DeleteItem", asked, failed(item)), failed(item));
  assert.equal(clientErrorText("PutItem", {}, failed()), failed());
  assert.equal(clientErrorText("PutItem", {}, "not json"), "not json");
});
