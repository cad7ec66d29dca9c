import assert from "node:assert/strict";
import type { Item } from "./capacity.ts";
import { History } from "./history.ts";
import { applyStale, type Body, writtenKeys } from "./stale_reads.ts";

const keyNames = (table: string) => table === "t" ? ["id"] : undefined;
const same = (name: string) => name;
const item = (id: string, n: number): Item => ({ id: { S: id }, n: { N: String(n) } });
const key = (id: string): Item => ({ id: { S: id } });

/** A history where `a` was made at 1000 (absent before), read at 1500 looking 900 ms back. */
function madeRecently(): History {
  const history = new History(1000, () => 0.9);
  history.record("t", key("a"), null, item("a", 1), 1000);
  return history;
}

Deno.test("a stale GetItem may miss an item made within the window", () => {
  const response: Body = { Item: item("a", 1) };
  const request = { TableName: "t", Key: key("a") };
  assert.equal(
    applyStale("GetItem", request, response, same, keyNames, madeRecently(), 1500),
    true,
  );
  assert.deepEqual(response, {});
});

Deno.test("a stale BatchGetItem may miss an item made within the window", () => {
  const response: Body = { Responses: { t: [item("a", 1), item("b", 2)] } };
  const request = { RequestItems: { t: { Keys: [key("a"), key("b")] } } };
  assert.equal(
    applyStale("BatchGetItem", request, response, same, keyNames, madeRecently(), 1500),
    true,
  );
  assert.deepEqual(response.Responses, { t: [item("b", 2)] });
});

Deno.test("a consistent GetItem or BatchGetItem is answered as it is now", () => {
  const getResponse: Body = { Item: item("a", 1) };
  const get = { TableName: "t", Key: key("a"), ConsistentRead: true };
  assert.equal(
    applyStale("GetItem", get, getResponse, same, keyNames, madeRecently(), 1500),
    false,
  );
  assert.deepEqual(getResponse, { Item: item("a", 1) });
  const batchResponse: Body = { Responses: { t: [item("a", 1)] } };
  const batch = { RequestItems: { t: { Keys: [key("a")], ConsistentRead: true } } };
  assert.equal(
    applyStale("BatchGetItem", batch, batchResponse, same, keyNames, madeRecently(), 1500),
    false,
  );
  assert.deepEqual(batchResponse.Responses, { t: [item("a", 1)] });
});

Deno.test("a BatchWriteItem's puts and deletes are all written keys", () => {
  const request = {
    RequestItems: {
      t: [
        { PutRequest: { Item: item("a", 1) } },
        { DeleteRequest: { Key: key("b") } },
      ],
    },
  };
  assert.deepEqual(writtenKeys("BatchWriteItem", request, keyNames), [
    { table: "t", key: key("a") },
    { table: "t", key: key("b") },
  ]);
});

Deno.test("a transaction's puts, updates and deletes are written keys; a condition check is not", () => {
  const request = {
    TransactItems: [
      { Put: { TableName: "t", Item: item("a", 1) } },
      { Update: { TableName: "t", Key: key("b"), UpdateExpression: "SET n = :n" } },
      { Delete: { TableName: "t", Key: key("c") } },
      {
        ConditionCheck: {
          TableName: "t",
          Key: key("d"),
          ConditionExpression: "attribute_exists(id)",
        },
      },
    ],
  };
  assert.deepEqual(writtenKeys("TransactWriteItems", request, keyNames), [
    { table: "t", key: key("a") },
    { table: "t", key: key("b") },
    { table: "t", key: key("c") },
  ]);
});

Deno.test("writes of a table whose key is unknown, and other operations, name no key", () => {
  assert.deepEqual(writtenKeys("PutItem", { TableName: "u", Item: item("a", 1) }, keyNames), []);
  assert.deepEqual(writtenKeys("GetItem", { TableName: "t", Key: key("a") }, keyNames), []);
});
