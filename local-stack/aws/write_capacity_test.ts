import assert from "node:assert/strict";
import { type Item, THROUGHPUT_EXCEEDED_MESSAGE } from "./capacity.ts";
import {
  splitBatch,
  transactionThrottled,
  withUnprocessed,
  WriteCapacity,
  writeCharges,
  writeUnits,
} from "./write_capacity.ts";
import type { KeyAttribute } from "./key_schema.ts";

/** An item of exactly `bytes` bytes as AWS counts them (`id` 2 + 1, `d` 1 + the rest). */
const sized = (id: string, bytes: number): Item => ({
  id: { S: id },
  d: { S: "x".repeat(bytes - 3 - id.length) },
});
const put = (id: string, bytes = 100) => ({ PutRequest: { Item: sized(id, bytes) } });
const del = (id: string) => ({ DeleteRequest: { Key: { id: { S: id } } } });
const keySchema = (): KeyAttribute[] => [{ name: "id", type: "S" }];

const THROTTLED = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException";
const THROTTLED_MESSAGE = "The level of configured provisioned throughput for the table was " +
  "exceeded. Consider increasing your provisioning level with the UpdateTable API.";

Deno.test("write units: 1 KB blocks, rounded up, at least one", () => {
  assert.equal(writeUnits(0), 1);
  assert.equal(writeUnits(500), 1);
  assert.equal(writeUnits(1024), 1);
  assert.equal(writeUnits(1025), 2);
  assert.equal(writeUnits(3584), 4);
});

Deno.test("a batch is parted in order: each request admitted while the tokens less those before it stay above zero", () => {
  const requests = [put("a"), put("b", 2500), del("c"), put("d"), put("e")];
  // 4 tokens: a (1) leaves 3, b (3) leaves 0, nothing more.
  const split = splitBatch({ t: requests }, () => 4);
  assert.deepEqual(split.admitted, { t: requests.slice(0, 2) });
  assert.deepEqual(split.unprocessed, { t: requests.slice(2) });
  // A bucket barely above zero admits one request, however large.
  assert.deepEqual(splitBatch({ t: [put("a", 5000), put("b")] }, () => 0.1).admitted, {
    t: [put("a", 5000)],
  });
});

Deno.test("each table of a batch is parted by its own tokens; a table none of whose requests fit is left out", () => {
  const split = splitBatch(
    { full: [put("a"), put("b")], spent: [put("c")], some: [del("d"), del("e")] },
    (table) => ({ full: 10, spent: 0, some: 1 })[table]!,
  );
  assert.deepEqual(split.admitted, { full: [put("a"), put("b")], some: [del("d")] });
  assert.deepEqual(split.unprocessed, { spent: [put("c")], some: [del("e")] });
});

Deno.test("the exception and a transaction's reason share AWS's one message", () => {
  assert.equal(THROUGHPUT_EXCEEDED_MESSAGE, THROTTLED_MESSAGE);
});

Deno.test("a throttled transaction is canceled with a reason per action, as AWS answers it", () => {
  const body = JSON.parse(transactionThrottled(
    [
      { Put: { TableName: "free", Item: sized("a", 10) } },
      { Delete: { TableName: "spent", Key: { id: { S: "b" } } } },
      { ConditionCheck: { TableName: "free", Key: { id: { S: "c" } } } },
    ],
    new Set(["spent"]),
  ));
  assert.deepEqual(body, {
    __type: "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
    CancellationReasons: [
      { Code: "None" },
      { Code: "ProvisionedThroughputExceeded", Message: THROTTLED_MESSAGE },
      { Code: "None" },
    ],
    Message: "Transaction cancelled, please refer cancellation reasons for specific reasons " +
      "[None, ProvisionedThroughputExceeded, None]",
  });
});

Deno.test("a write is charged what DynamoDB Local reports; a transaction at least two units an action", () => {
  assert.deepEqual(
    writeCharges("PutItem", {}, { ConsumedCapacity: { TableName: "t", CapacityUnits: 4 } }),
    new Map([["t", 4]]),
  );
  assert.deepEqual(
    writeCharges("BatchWriteItem", {}, {
      ConsumedCapacity: [{ TableName: "t", CapacityUnits: 5 }, {
        TableName: "u",
        CapacityUnits: 1,
      }],
    }),
    new Map([["t", 5], ["u", 1]]),
  );
  const transaction = {
    TransactItems: [
      { Put: { TableName: "t", Item: sized("a", 10) } },
      { ConditionCheck: { TableName: "t", Key: { id: { S: "b" } } } },
      { ConditionCheck: { TableName: "u", Key: { id: { S: "c" } } } },
      { Put: { TableName: "v", Item: sized("d", 3000) } },
    ],
  };
  // DynamoDB Local: 4 for a Put of up to 1 KB, nothing for a ConditionCheck.
  assert.deepEqual(
    writeCharges("TransactWriteItems", transaction, {
      ConsumedCapacity: [{ TableName: "t", CapacityUnits: 4 }, {
        TableName: "v",
        CapacityUnits: 12,
      }],
    }),
    new Map([["t", 4], ["u", 2], ["v", 12]]),
  );
  assert.deepEqual(
    writeCharges("TransactWriteItems", transaction, {}),
    new Map([["t", 4], ["u", 2], ["v", 2]]),
  );
});

Deno.test("the requests held back follow what DynamoDB Local left unprocessed, table by table", () => {
  assert.deepEqual(withUnprocessed({}, { t: [put("b")] }), { t: [put("b")] });
  assert.deepEqual(withUnprocessed(undefined, {}), {});
  assert.deepEqual(
    withUnprocessed({ t: [put("a")], u: [del("x")] }, { t: [put("b")], v: [put("c")] }),
    { t: [put("a"), put("b")], u: [del("x")], v: [put("c")] },
  );
});

/** Admits a write that must be admitted; fails the test if it was refused. */
function admitted(writes: WriteCapacity, operation: string, request: Record<string, unknown>) {
  const admission = writes.admit(operation, request, "s", keySchema);
  assert.ok(!("refused" in admission), `${operation} refused`);
  return admission;
}

/** The body of the refusal of a write that must be refused. */
function refusal(writes: WriteCapacity, operation: string, request: Record<string, unknown>) {
  const admission = writes.admit(operation, request, "s", keySchema);
  assert.ok("refused" in admission, `${operation} admitted`);
  return JSON.parse(admission.refused);
}

Deno.test("a single write is admitted while its table's bucket is above zero, then refused with AWS's error", () => {
  let clock = 1_000_000;
  const writes = new WriteCapacity(2, () => clock);
  const request = { TableName: "t", Item: sized("a", 3000) };
  const put = admitted(writes, "PutItem", request);
  assert.deepEqual([put.forward, put.held], [request, {}]);
  assert.equal(put.reservation.held("t"), 3, "its item's units, held at once");
  put.reservation.settle(new Map([["t", 3]]));
  assert.equal(writes.tokens("s", "t"), -1);
  assert.deepEqual(refusal(writes, "UpdateItem", { TableName: "t" }), {
    __type: THROTTLED,
    message: `${THROTTLED_MESSAGE} (table t)`,
  });
  assert.ok(!("refused" in writes.admit("PutItem", { TableName: "t" }, "other scope", keySchema)));
  admitted(writes, "PutItem", { TableName: "u" }); // per table
  clock += 500; // -1 + 1: exactly zero, still refused
  refusal(writes, "DeleteItem", { TableName: "t" });
  clock += 1;
  assert.equal(admitted(writes, "DeleteItem", { TableName: "t" }).reservation.held("t"), 1);
});

Deno.test("writes in flight at once share the bucket: each holds its expected units until answered", () => {
  const writes = new WriteCapacity(1, () => 0);
  const first = admitted(writes, "PutItem", { TableName: "t", Item: sized("a", 10) });
  refusal(writes, "PutItem", { TableName: "t", Item: sized("b", 10) });
  first.reservation.release(); // refused by DynamoDB Local: it cost nothing
  admitted(writes, "UpdateItem", { TableName: "t" });
  refusal(writes, "DeleteItem", { TableName: "t" });

  const batches = new WriteCapacity(3, () => 0);
  const five = { RequestItems: { t: [put("a"), put("b"), put("c"), put("d"), put("e")] } };
  const one = admitted(batches, "BatchWriteItem", five);
  assert.deepEqual(one.held, { t: [put("d"), put("e")] });
  assert.deepEqual(refusal(batches, "BatchWriteItem", five), {
    __type: THROTTLED,
    message: `${THROTTLED_MESSAGE} (table t)`,
  });
  one.reservation.settle(new Map([["t", 2]])); // cost less than expected: 1 back
  assert.deepEqual(admitted(batches, "BatchWriteItem", five).forward, {
    RequestItems: { t: [put("a")] },
  });

  const transactions = new WriteCapacity(4, () => 0);
  const actions = { TransactItems: [{ Put: { TableName: "t", Item: sized("a", 1500) } }] };
  assert.equal(admitted(transactions, "TransactWriteItems", actions).reservation.held("t"), 4);
  assert.equal(
    refusal(transactions, "TransactWriteItems", actions).__type,
    "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
  );
});

Deno.test("a transaction on a spent table is canceled whole", () => {
  const writes = new WriteCapacity(1, () => 0);
  admitted(writes, "PutItem", { TableName: "spent" });
  const request = {
    TransactItems: [
      { Put: { TableName: "free", Item: sized("a", 10) } },
      { Put: { TableName: "spent", Item: sized("b", 10) } },
    ],
  };
  const body = refusal(writes, "TransactWriteItems", request);
  assert.equal(body.__type, "com.amazonaws.dynamodb.v20120810#TransactionCanceledException");
  assert.deepEqual(body.CancellationReasons.map((r: { Code: string }) => r.Code), [
    "None",
    "ProvisionedThroughputExceeded",
  ]);
  admitted(writes, "TransactWriteItems", { TransactItems: request.TransactItems.slice(0, 1) });
});

Deno.test("a batch: forwarded whole when it fits, smaller with the rest held back, refused when nothing fits", () => {
  let clock = 0;
  const writes = new WriteCapacity(3, () => clock);
  const batch = { RequestItems: { t: [put("a"), put("b")] }, ReturnConsumedCapacity: "TOTAL" };
  const whole = admitted(writes, "BatchWriteItem", batch);
  assert.deepEqual([whole.forward, whole.held], [batch, {}]);
  whole.reservation.release();
  const five = { RequestItems: { t: [put("a"), put("b"), put("c"), put("d"), put("e")] } };
  const split = admitted(writes, "BatchWriteItem", five);
  assert.deepEqual([split.forward, split.held], [
    { RequestItems: { t: [put("a"), put("b"), put("c")] } },
    { t: [put("d"), put("e")] },
  ]);
  split.reservation.settle(new Map([["t", 3]]));
  assert.deepEqual(refusal(writes, "BatchWriteItem", five), {
    __type: THROTTLED,
    message: `${THROTTLED_MESSAGE} (table t)`,
  });
  // One DynamoDB refuses whole goes on as it came, to be refused as AWS refuses it.
  const invalid = { RequestItems: { t: [put("a"), put("a")] } };
  const refusedWhole = admitted(writes, "BatchWriteItem", invalid);
  assert.deepEqual([refusedWhole.forward, refusedWhole.held], [invalid, {}]);
  assert.equal(refusedWhole.reservation.held("t"), 0, "holding nothing");
  clock += 1000;
  assert.deepEqual(admitted(writes, "BatchWriteItem", five).held, { t: [put("d"), put("e")] });
});

Deno.test("a table keeps one second of unused write units, at most 300 with AWS's burst", () => {
  let clock = 0;
  const writes = new WriteCapacity(5, () => clock);
  const burst = new WriteCapacity(5, () => clock, 300);
  assert.equal(writes.tokens("s", "t"), 5, "one second's to start");
  assert.equal(burst.tokens("s", "t"), 5, "one second's to start");
  clock += 3_600_000;
  assert.equal(writes.tokens("s", "t"), 5);
  assert.equal(burst.tokens("s", "t"), 1500);
});
