import assert from "node:assert/strict";
import { CapacityThrottle, type Item, MIN_READ_UNITS } from "./capacity.ts";
import type { KeyAttribute } from "./key_schema.ts";
import { type CapacityLimits, OperationCapacity } from "./operation_capacity.ts";
import { WriteCapacity } from "./write_capacity.ts";

const now = () => 0;
const keySchema = (): KeyAttribute[] => [{ name: "id", type: "S" }];
const item = (id: string): Item => ({ id: { S: id } });
const put = (id: string) => ({ PutRequest: { Item: item(id) } });
const NO_LIMITS: CapacityLimits = { reads: undefined, writes: undefined, now };

Deno.test("without throttling an operation goes on as it came and nothing is counted", () => {
  const body = { TableName: "t", Key: item("a") };
  const capacity = new OperationCapacity(NO_LIMITS, "GetItem", body);
  assert.equal(capacity.admit("s", ["t"], keySchema), undefined);
  assert.equal(capacity.counted, false);
  assert.equal(capacity.request(), body);
  assert.equal(capacity.answered({ Item: item("a") }), false);
});

Deno.test("a read holds the least a read costs, asks for ConsumedCapacity, settles with it and keeps it from the client", () => {
  const reads = new CapacityThrottle(10);
  const capacity = new OperationCapacity({ reads, writes: undefined, now }, "GetItem", {
    TableName: "t",
    Key: item("a"),
  });
  assert.equal(capacity.admit("s", ["t"], keySchema), undefined);
  assert.equal(reads.bucket("s/t", 0).tokens(0), 10 - MIN_READ_UNITS);
  assert.equal(capacity.request().ReturnConsumedCapacity, "TOTAL");
  const json = { Item: item("a"), ConsumedCapacity: { TableName: "t", CapacityUnits: 3 } };
  assert.equal(capacity.answered(json), false);
  assert.equal("ConsumedCapacity" in json, false);
  assert.equal(reads.bucket("s/t", 0).tokens(0), 7);
  capacity.release(); // settled: nothing given back
  assert.equal(reads.bucket("s/t", 0).tokens(0), 7);
});

Deno.test("a read on a spent table is refused with the exception, logged", () => {
  const reads = new CapacityThrottle(1);
  reads.bucket("s/t", 0).charge(1, 0);
  const capacity = new OperationCapacity({ reads, writes: undefined, now }, "Query", {
    TableName: "t",
  });
  const refused = capacity.admit("s", ["t"], keySchema);
  assert.match(refused!.answer, /ProvisionedThroughputExceededException/);
  assert.equal(refused!.log, "Query t: read capacity spent, throttled");
});

Deno.test("a released read gives back what it held; ConsumedCapacity asked for stays", () => {
  const reads = new CapacityThrottle(10);
  const body = { TableName: "t", ReturnConsumedCapacity: "TOTAL" };
  const capacity = new OperationCapacity({ reads, writes: undefined, now }, "Scan", body);
  capacity.admit("s", ["t"], keySchema);
  assert.equal(capacity.request(), body);
  capacity.release();
  assert.equal(reads.bucket("s/t", 0).tokens(0), 10);
  const json = { ConsumedCapacity: { TableName: "t", CapacityUnits: 1 } };
  capacity.answered(json);
  assert.equal("ConsumedCapacity" in json, true);
});

Deno.test("a batch past the write capacity sends what fits; the rest goes into UnprocessedItems", () => {
  const writes = new WriteCapacity(2, now);
  const body = { RequestItems: { t: [put("a"), put("b"), put("c")] } };
  const capacity = new OperationCapacity({ reads: undefined, writes, now }, "BatchWriteItem", body);
  assert.equal(capacity.admit("s", ["t"], keySchema), undefined);
  assert.deepEqual(capacity.sent, { RequestItems: { t: [put("a"), put("b")] } });
  assert.deepEqual(capacity.held, { t: [put("c")] });
  assert.deepEqual(capacity.request(), { ...capacity.sent, ReturnConsumedCapacity: "TOTAL" });
  const json: Record<string, unknown> = {
    ConsumedCapacity: [{ TableName: "t", CapacityUnits: 2 }],
  };
  assert.equal(capacity.answered(json), true);
  assert.deepEqual(json, { UnprocessedItems: { t: [put("c")] } });
});

Deno.test("a write refused for spent capacity is logged with its tables", () => {
  const writes = new WriteCapacity(1, now);
  writes.admit("PutItem", { TableName: "t", Item: item("a") }, "s", keySchema);
  const capacity = new OperationCapacity({ reads: undefined, writes, now }, "PutItem", {
    TableName: "t",
    Item: item("b"),
  });
  const refused = capacity.admit("s", ["t"], keySchema);
  assert.match(refused!.answer, /ProvisionedThroughputExceededException/);
  assert.equal(refused!.log, "PutItem t: write capacity spent, throttled");
});

Deno.test("a write asks for the item its failed condition meets, and is charged it", () => {
  const writes = new WriteCapacity(10, now);
  const body = { TableName: "t", Item: item("a"), ConditionExpression: "attribute_not_exists(id)" };
  const capacity = new OperationCapacity({ reads: undefined, writes, now }, "PutItem", body);
  capacity.admit("s", ["t"], keySchema);
  assert.equal(capacity.request().ReturnValuesOnConditionCheckFailure, "ALL_OLD");
  capacity.refused(JSON.stringify({
    __type: "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
    Item: { ...item("a"), d: { S: "x".repeat(2000) } },
  }));
  assert.equal(writes.tokens("s", "t"), 8);
});

Deno.test("nothing of the sync calls BatchGetItem, TransactGetItems or PartiQL, which the proxy emulates less strictly", () => {
  // AWS answers a throttled BatchGetItem in part (UnprocessedKeys); the proxy does not
  // (README, "The local stack"), so a caller of it here could drop the keys AWS leaves.
  // TransactGetItems and PartiQL's operations (an eventually consistent SELECT, writes)
  // the proxy neither throttles nor serves stale, nor times their stream records: a
  // caller of them would pass here what AWS may refuse or answer stale.
  const root = new URL("../../", import.meta.url);
  const found: string[] = [];
  const walk = (dir: URL) => {
    for (const entry of Deno.readDirSync(dir)) {
      const url = new URL(entry.isDirectory ? `${entry.name}/` : entry.name, dir);
      if (entry.isDirectory) walk(url);
      else if (/\.ts$/.test(entry.name) && !/_test\.ts$/.test(entry.name)) {
        const text = Deno.readTextFileSync(url);
        if (/BatchGetItem|TransactGetItems|ExecuteStatement|ExecuteTransaction/.test(text)) {
          found.push(url.pathname);
        }
      }
    }
  };
  for (const dir of ["functions-shared/", "lambda/", "scripts/", "supabase/functions/"]) {
    walk(new URL(dir, root));
  }
  assert.deepEqual(found, []);
});
