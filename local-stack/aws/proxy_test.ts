/**
 * The proxy in front of a tiny fake DynamoDB (a `Deno.serve` on a free port that keeps
 * items of tables keyed by `id` in a map): pass-through, stale reads, read and write
 * throttling, ConsumedCapacity and injected errors.
 */

import assert from "node:assert/strict";
import type { Item } from "./capacity.ts";
import { crc32 } from "../../functions-shared/crc32.ts";
import { type Faults, NO_FAULTS } from "./faults.ts";
import { createProxy } from "./proxy.ts";
import { FOLLOW_UP_HEADER } from "./errors.ts";

type Body = Record<string, unknown>;

/**
 * A fake DynamoDB: tables keyed by `id`; every read costs 1 unit per item (min 1), every
 * write 1 unit per item; a PutItem or DeleteItem's ConditionExpression
 * `attribute_not_exists(id)` fails when the item exists, `attribute_exists(id)` when it
 * does not, answered with the item when asked (ReturnValuesOnConditionCheckFailure).
 */
function fakeUpstream() {
  const tables = new Map<string, Map<string, Item>>();
  const table = (name: string) => tables.get(name) ?? tables.set(name, new Map()).get(name)!;
  const calls: string[] = [];
  const bodies: Body[] = [];
  // While `open` is unset, its operations wait for it before they are answered (requests
  // in flight at once).
  const gate: { operations: Set<string>; open?: Promise<void> } = { operations: new Set() };
  // DescribeTable: tables it answers ResourceNotFoundException for, and how many more
  // calls it fails with a 500.
  const describe = { missing: new Set<string>(), failures: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const op = (req.headers.get("x-amz-target") ?? "").split(".")[1];
    const body = await req.json() as Body;
    calls.push(op);
    bodies.push(body);
    if (gate.operations.has(op)) await gate.open;
    const t = body.TableName as string;
    const id = (k: unknown) => ((k as Item).id as { S: string }).S;
    const cc = (name: string, units: number) =>
      body.ReturnConsumedCapacity
        ? { ConsumedCapacity: { TableName: name, CapacityUnits: units } }
        : {};
    const current = () => table(t).get(id(body.Item ?? body.Key));
    const conditionFails = () =>
      (body.ConditionExpression === "attribute_not_exists(id)" && current() !== undefined) ||
      (body.ConditionExpression === "attribute_exists(id)" && current() === undefined);
    const conditionFailed = () => {
      const item = body.ReturnValuesOnConditionCheckFailure === "ALL_OLD" ? current() : undefined;
      const failed = JSON.stringify({
        __type: "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
        Message: "The conditional request failed",
        ...(item ? { Item: item } : {}),
      });
      return new Response(failed, {
        status: 400,
        headers: { "x-amz-crc32": String(crc32(failed)) },
      });
    };
    let out: Body = {};
    switch (op) {
      case "DescribeTable":
        if (describe.missing.has(t) || describe.failures > 0) {
          const missing = describe.missing.has(t);
          if (!missing) describe.failures--;
          const text = JSON.stringify({
            __type: missing
              ? "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
              : "com.amazonaws.dynamodb.v20120810#InternalFailure",
            message: missing ? "Cannot do operations on a non-existent table" : "failed",
          });
          return new Response(text, { status: missing ? 400 : 500 });
        }
        out = {
          Table: {
            TableName: t,
            KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
            AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
          },
        };
        break;
      case "PutItem":
        if (conditionFails()) return conditionFailed();
        table(t).set(id(body.Item), body.Item as Item);
        out = cc(t, 1);
        break;
      case "DeleteItem":
        if (conditionFails()) return conditionFailed();
        table(t).delete(id(body.Key));
        out = cc(t, 1);
        break;
      case "BatchWriteItem": {
        const consumed = [];
        for (const [name, writes] of Object.entries(body.RequestItems as Record<string, Body[]>)) {
          for (const w of writes) {
            const put = w.PutRequest as { Item: Item } | undefined;
            if (put) table(name).set(id(put.Item), put.Item);
            else table(name).delete(id((w.DeleteRequest as { Key: Item }).Key));
          }
          consumed.push({ TableName: name, CapacityUnits: writes.length });
        }
        out = {
          UnprocessedItems: {},
          ...(body.ReturnConsumedCapacity ? { ConsumedCapacity: consumed } : {}),
        };
        break;
      }
      case "GetItem": {
        const item = table(t).get(id(body.Key));
        out = { ...(item ? { Item: item } : {}), ...cc(t, 1) };
        break;
      }
      case "BatchGetItem": {
        const responses: Record<string, Item[]> = {};
        for (const [name, r] of Object.entries(body.RequestItems as Record<string, Body>)) {
          responses[name] = (r.Keys as Item[]).map((k) => table(name).get(id(k))).filter((i) =>
            i !== undefined
          ) as Item[];
        }
        out = { Responses: responses };
        break;
      }
      case "Scan": {
        const items = [...table(t).values()];
        out = {
          Items: items,
          Count: items.length,
          ScannedCount: items.length,
          ...cc(t, Math.max(1, items.length)),
        };
        break;
      }
    }
    const text = JSON.stringify(out);
    return new Response(text, {
      headers: { "content-type": "application/x-amz-json-1.0", "x-amz-crc32": String(crc32(text)) },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    server,
    calls,
    bodies,
    tables,
    gate,
    describe,
  };
}

function setup(faults: Partial<Faults>, random: () => number = () => 0.5) {
  const upstream = fakeUpstream();
  let clock = 1_000_000;
  const proxy = createProxy({
    upstream: upstream.url,
    faults: { ...NO_FAULTS, ...faults },
    random,
    now: () => clock,
  });
  const send = async (op: string, body: Body) => {
    const response = await proxy.handle(
      new Request("http://proxy/", {
        method: "POST",
        headers: {
          "x-amz-target": `DynamoDB_20120810.${op}`,
          "content-type": "application/x-amz-json-1.0",
          authorization:
            "AWS4-HMAC-SHA256 Credential=local/20261128/us-east-1/dynamodb/aws4_request",
        },
        body: JSON.stringify(body),
      }),
    );
    const text = await response.text();
    assert.equal(response.headers.get("x-amz-crc32"), String(crc32(text)));
    return { status: response.status, body: JSON.parse(text) as Body };
  };
  return {
    send,
    upstream,
    tick: (ms: number) => (clock += ms),
    close: () => upstream.server.shutdown(),
  };
}

const item = (id: string, n: number): Item => ({ id: { S: id }, n: { N: String(n) } });

Deno.test("without faults every request and answer passes unchanged", async () => {
  const s = setup({});
  try {
    assert.equal((await s.send("PutItem", { TableName: "t", Item: item("a", 1) })).status, 200);
    const got = await s.send("GetItem", { TableName: "t", Key: { id: { S: "a" } } });
    assert.deepEqual(got.body, { Item: item("a", 1) });
    assert.deepEqual(s.upstream.calls, ["PutItem", "GetItem"]);
  } finally {
    await s.close();
  }
});

Deno.test("stale_ms: an eventually consistent read may see the old version, a consistent one never", async () => {
  let r = 0;
  const s = setup({ staleMs: 2000 }, () => r);
  try {
    await s.send("PutItem", { TableName: "t", Item: item("a", 1) });
    s.tick(5000);
    await s.send("PutItem", { TableName: "t", Item: item("a", 2) });
    s.tick(500);
    const key = { id: { S: "a" } };
    r = 0.9; // 1800 ms ago: before the update
    assert.deepEqual(
      (await s.send("GetItem", { TableName: "t", Key: key })).body.Item,
      item("a", 1),
    );
    assert.deepEqual(
      (await s.send("GetItem", { TableName: "t", Key: key, ConsistentRead: true })).body.Item,
      item("a", 2),
    );
    const batch = await s.send("BatchGetItem", { RequestItems: { t: { Keys: [key] } } });
    assert.deepEqual(batch.body.Responses, { t: [item("a", 1)] });
    r = 0.1; // 200 ms ago: after it
    assert.deepEqual(
      (await s.send("GetItem", { TableName: "t", Key: key })).body.Item,
      item("a", 2),
    );
    s.tick(2000); // the window has passed: exact again
    r = 0.9;
    assert.deepEqual(
      (await s.send("GetItem", { TableName: "t", Key: key })).body.Item,
      item("a", 2),
    );
  } finally {
    await s.close();
  }
});

Deno.test("stale_ms: a Scan may miss a new item and still return a deleted one", async () => {
  let r = 0;
  const s = setup({ staleMs: 2000 }, () => r);
  try {
    await s.send("PutItem", { TableName: "t", Item: item("old", 1) });
    s.tick(5000);
    await s.send("DeleteItem", { TableName: "t", Key: { id: { S: "old" } } });
    await s.send("PutItem", { TableName: "t", Item: item("new", 1) });
    r = 0.5;
    const stale = await s.send("Scan", { TableName: "t" });
    assert.deepEqual(stale.body.Items, [item("old", 1)]);
    assert.equal(stale.body.Count, 1);
    const consistent = await s.send("Scan", { TableName: "t", ConsistentRead: true });
    assert.deepEqual(consistent.body.Items, [item("new", 1)]);
  } finally {
    await s.close();
  }
});

Deno.test("throttle_rcu: reads past the capacity get ProvisionedThroughputExceededException", async () => {
  const s = setup({ throttleRcu: 2 });
  try {
    for (const id of ["a", "b", "c"]) {
      await s.send("PutItem", { TableName: "t", Item: item(id, 1) });
    }
    // The bucket starts with 2 units; a Scan of 3 items costs 3 (the fake's price).
    const first = await s.send("Scan", { TableName: "t" });
    assert.equal(first.status, 200);
    assert.equal(first.body.ConsumedCapacity, undefined, "not asked for, not returned");
    const second = await s.send("Scan", { TableName: "t", ReturnConsumedCapacity: "TOTAL" });
    assert.equal(second.status, 400);
    assert.equal(
      second.body.__type,
      "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    );
    assert.match(second.body.message as string, /table t/);
    assert.equal((await s.send("Scan", { TableName: "other" })).status, 200, "per table");
    s.tick(1000); // -1 + 2
    const third = await s.send("Scan", { TableName: "t", ReturnConsumedCapacity: "TOTAL" });
    assert.equal(third.status, 200);
    assert.deepEqual(third.body.ConsumedCapacity, { TableName: "t", CapacityUnits: 3 });
  } finally {
    await s.close();
  }
});

Deno.test("throttle_rcu: reads in flight at once each hold the least a read costs", async () => {
  const s = setup({ throttleRcu: 1 });
  const scans = () => s.upstream.calls.filter((op) => op === "Scan").length;
  try {
    const open = holdAnswers(s.upstream, "Scan");
    // Two in flight hold half a unit each: the bucket's one unit.
    const first = s.send("Scan", { TableName: "t" });
    const second = s.send("Scan", { TableName: "t" });
    await until(() => scans() === 2);
    let answered = false;
    const third = s.send("Scan", { TableName: "t" }).finally(() => answered = true);
    await until(() => answered || scans() === 3);
    open();
    const refused = await third;
    assert.equal(refused.status, 400);
    assert.equal(
      refused.body.__type,
      "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    );
    assert.deepEqual([(await first).status, (await second).status], [200, 200]);
    // Each cost 1 (the fake's price): 1 - 2 = -1, refilled in a second.
    s.tick(1000);
    assert.equal((await s.send("Scan", { TableName: "t" })).status, 400);
    s.tick(1);
    assert.equal((await s.send("Scan", { TableName: "t" })).status, 200);
  } finally {
    await s.close();
  }
});

Deno.test("error_rate: a 500 InternalServerError; a write may have taken effect", async () => {
  // random() sequence: < rate (fail), then < 0.5 (before) / >= 0.5 (after).
  const seq = [0.01, 0.2, 0.01, 0.9];
  const s = setup({ errorRate: 0.5 }, () => seq.shift() ?? 0.99);
  try {
    const before = await s.send("PutItem", { TableName: "t", Item: item("a", 1) });
    assert.equal(before.status, 500);
    assert.equal(before.body.__type, "com.amazonaws.dynamodb.v20120810#InternalServerError");
    assert.equal(s.upstream.tables.get("t")?.has("a") ?? false, false);
    const after = await s.send("PutItem", { TableName: "t", Item: item("b", 1) });
    assert.equal(after.status, 500);
    assert.equal(s.upstream.tables.get("t")?.has("b"), true);
    assert.equal((await s.send("PutItem", { TableName: "t", Item: item("c", 1) })).status, 200);
  } finally {
    await s.close();
  }
});

Deno.test("error_rate: a follow-up of the stand-in's own draws no fault; a client's request does", async () => {
  const upstream = fakeUpstream();
  const proxy = createProxy({ upstream: upstream.url, faults: { ...NO_FAULTS, errorRate: 1 } });
  const describe = (followUp: boolean) =>
    proxy.handle(
      new Request("http://proxy/", {
        method: "POST",
        headers: {
          "x-amz-target": "DynamoDBStreams_20120810.GetShardIterator",
          authorization:
            "AWS4-HMAC-SHA256 Credential=local/20261128/us-east-1/dynamodb/aws4_request",
          ...(followUp ? { [FOLLOW_UP_HEADER]: "1" } : {}),
        },
        body: "{}",
      }),
    );
  try {
    const client = await describe(false);
    assert.equal(client.status, 500);
    await client.body?.cancel();
    const followUp = await describe(true);
    assert.equal(followUp.status, 200);
    await followUp.body?.cancel();
    assert.deepEqual(upstream.calls, ["GetShardIterator"]);
  } finally {
    await upstream.server.shutdown();
  }
});

const THROTTLED = {
  __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
  message: "The level of configured provisioned throughput for the table was exceeded. " +
    "Consider increasing your provisioning level with the UpdateTable API. (table t)",
};

Deno.test("throttle_wcu: writes past the capacity get ProvisionedThroughputExceededException", async () => {
  const s = setup({ throttleWcu: 2 });
  try {
    // The bucket starts with 2 units; each write costs 1 (the fake's price).
    const first = await s.send("PutItem", { TableName: "t", Item: item("a", 1) });
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, {}, "ConsumedCapacity not asked for, not returned");
    assert.equal(s.upstream.bodies.at(-1)!.ReturnConsumedCapacity, "TOTAL", "asked for it");
    assert.equal(
      (await s.send("DeleteItem", { TableName: "t", Key: { id: { S: "z" } } })).status,
      200,
    );
    const refused = await s.send("PutItem", { TableName: "t", Item: item("b", 1) });
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.body, THROTTLED);
    assert.equal(s.upstream.tables.get("t")!.has("b"), false, "not forwarded");
    assert.equal((await s.send("PutItem", { TableName: "u", Item: item("b", 1) })).status, 200);
    s.tick(500); // 0 + 1
    const asked = await s.send("PutItem", {
      TableName: "t",
      Item: item("b", 1),
      ReturnConsumedCapacity: "TOTAL",
    });
    assert.equal(asked.status, 200);
    assert.deepEqual(asked.body.ConsumedCapacity, { TableName: "t", CapacityUnits: 1 });
    // Reads are not counted against write capacity.
    assert.equal(
      (await s.send("GetItem", { TableName: "t", Key: { id: { S: "b" } } })).status,
      200,
    );
  } finally {
    await s.close();
  }
});

Deno.test("throttle_wcu: a write whose condition failed costs the item it met, which the client gets only if it asked", async () => {
  const s = setup({ throttleWcu: 3 });
  const big: Item = { id: { S: "a" }, d: { S: "x".repeat(2500) } }; // 2,503 bytes: 3 units
  const CONDITION_FAILED = {
    __type: "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
    Message: "The conditional request failed",
  };
  try {
    s.upstream.tables.set("t", new Map([["a", big]]));
    const failed = await s.send("DeleteItem", {
      TableName: "t",
      Key: { id: { S: "a" } },
      ConditionExpression: "attribute_not_exists(id)",
    });
    assert.deepEqual([failed.status, failed.body], [400, CONDITION_FAILED], "no Item: not asked");
    assert.equal(s.upstream.bodies.at(-1)!.ReturnValuesOnConditionCheckFailure, "ALL_OLD");
    const next = await s.send("PutItem", { TableName: "t", Item: item("b", 1) });
    assert.deepEqual([next.status, next.body], [400, THROTTLED], "3 units charged, not 1");
    s.tick(1000);
    const asked = await s.send("PutItem", {
      TableName: "t",
      Item: item("a", 2),
      ConditionExpression: "attribute_not_exists(id)",
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    });
    assert.deepEqual([asked.status, asked.body], [400, { ...CONDITION_FAILED, Item: big }]);
    s.tick(1000);
    // A condition on an item that is not there costs one unit: 3 - 1 leaves room.
    const missing = await s.send("DeleteItem", {
      TableName: "t",
      Key: { id: { S: "z" } },
      ConditionExpression: "attribute_exists(id)",
    });
    assert.equal(missing.status, 400);
    assert.equal((await s.send("PutItem", { TableName: "t", Item: item("b", 1) })).status, 200);
  } finally {
    await s.close();
  }
});

Deno.test("throttle_wcu: a BatchWriteItem writes what fits, answers the rest in UnprocessedItems; nothing fits: the exception", async () => {
  const s = setup({ throttleWcu: 3 });
  const requests = ["a", "b", "c", "d", "e"].map((id) => ({ PutRequest: { Item: item(id, 1) } }));
  try {
    const partial = await s.send("BatchWriteItem", { RequestItems: { t: requests } });
    assert.equal(partial.status, 200);
    assert.deepEqual(partial.body, { UnprocessedItems: { t: requests.slice(3) } });
    assert.deepEqual(
      (s.upstream.bodies.at(-1)!.RequestItems as Record<string, unknown>).t,
      requests.slice(0, 3),
      "a smaller batch forwarded",
    );
    assert.deepEqual([...s.upstream.tables.get("t")!.keys()], ["a", "b", "c"]);
    const calls = s.upstream.calls.length;
    const none = await s.send("BatchWriteItem", { RequestItems: { t: requests.slice(3) } });
    assert.deepEqual([none.status, none.body], [400, THROTTLED]);
    assert.equal(s.upstream.calls.length, calls, "not forwarded");
    s.tick(1000);
    const rest = await s.send("BatchWriteItem", {
      RequestItems: { t: requests.slice(3) },
      ReturnConsumedCapacity: "TOTAL",
    });
    assert.equal(rest.status, 200);
    assert.deepEqual(rest.body, {
      UnprocessedItems: {},
      ConsumedCapacity: [{ TableName: "t", CapacityUnits: 2 }],
    });
    assert.equal(s.upstream.tables.get("t")!.size, 5);
  } finally {
    await s.close();
  }
});

Deno.test("throttle_wcu: a batch with a value DynamoDB refuses is forwarded whole, never split", async () => {
  // AWS validates the whole batch before writing any of it: had the proxy held the bad
  // request back, the part it forwarded would be written where AWS writes nothing.
  // DynamoDB Local refuses such a batch whole (attribute_values.ts); the fake takes it.
  const s = setup({ throttleWcu: 3 });
  const requests = ["a", "b", "c", "d"].map((id) => ({ PutRequest: { Item: item(id, 1) } }));
  const bad = { PutRequest: { Item: { ...item("e", 1), tags: { SS: [] } } } };
  try {
    await s.send("BatchWriteItem", { RequestItems: { t: [...requests, bad] } });
    assert.deepEqual(
      (s.upstream.bodies.at(-1)!.RequestItems as Record<string, unknown>).t,
      [...requests, bad],
      "forwarded as it came",
    );
  } finally {
    await s.close();
  }
});

/** Resolves once `done()` holds, looking again after each turn of the event loop. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 0));
}

/** Holds the fake's answers to `operations` until the function returned is called. */
function holdAnswers(upstream: ReturnType<typeof fakeUpstream>, ...operations: string[]) {
  let open = () => {};
  upstream.gate.open = new Promise((resolve) => open = resolve);
  upstream.gate.operations = new Set(operations);
  return open;
}

Deno.test("throttle_wcu: batches in flight at once share the table's capacity", async () => {
  const s = setup({ throttleWcu: 3 });
  const batch = (ids: string[]) => ({
    RequestItems: { t: ids.map((id) => ({ PutRequest: { Item: item(id, 1) } })) },
  });
  const forwarded = () => s.upstream.calls.filter((op) => op === "BatchWriteItem").length;
  try {
    const open = holdAnswers(s.upstream, "BatchWriteItem");
    const first = s.send("BatchWriteItem", batch(["a", "b", "c", "d"]));
    await until(() => forwarded() === 1); // the first is with DynamoDB, not yet answered
    let answered = false;
    const second = s.send("BatchWriteItem", batch(["e", "f"])).finally(() => answered = true);
    await until(() => answered || forwarded() === 2);
    open();
    assert.deepEqual(
      [(await second).status, (await second).body],
      [400, THROTTLED],
      "the first holds the bucket's three units",
    );
    const { status, body } = await first;
    assert.equal(status, 200);
    assert.deepEqual(body.UnprocessedItems, { t: batch(["d"]).RequestItems.t });
    assert.deepEqual([...s.upstream.tables.get("t")!.keys()], ["a", "b", "c"]);
  } finally {
    await s.close();
  }
});

Deno.test("throttle_wcu: a batch on a table whose key schema cannot be read is refused, not let through", async () => {
  const s = setup({ throttleWcu: 1 });
  const requests = ["a", "b", "c"].map((id) => ({ PutRequest: { Item: item(id, 1) } }));
  try {
    s.upstream.describe.failures = 3; // every attempt
    const refused = await s.send("BatchWriteItem", { RequestItems: { t: requests } });
    assert.equal(refused.status, 500);
    assert.equal(refused.body.__type, "com.amazonaws.dynamodb.v20120810#InternalServerError");
    assert.match(
      refused.body.message as string,
      /^Internal server error \(the key schema of table t could not be read \(DescribeTable, 3 times\): .*InternalFailure.*; BatchWriteItem on table t\)$/,
    );
    assert.equal(s.upstream.calls.includes("BatchWriteItem"), false, "not forwarded");
    s.upstream.describe.failures = 2; // then an answer: throttled as ever
    const split = await s.send("BatchWriteItem", { RequestItems: { t: requests } });
    assert.deepEqual([split.status, split.body], [200, {
      UnprocessedItems: { t: requests.slice(1) },
    }]);
    // A table that does not exist: the batch goes on whole, for DynamoDB to refuse.
    s.upstream.describe.missing.add("gone");
    const calls = s.upstream.calls.length;
    await s.send("BatchWriteItem", { RequestItems: { gone: requests } });
    assert.deepEqual(s.upstream.calls.slice(calls), ["DescribeTable", "BatchWriteItem"]);
  } finally {
    await s.close();
  }
});

Deno.test("throttle_wcu: a write refused before it was forwarded gives back the units it held", async () => {
  // One unit a second, one in the bucket: the refused PutItem held it while in flight; a
  // next PutItem at once finds it given back (without the release it would be throttled).
  const s = setup({ throttleWcu: 1, staleMs: 2000 });
  try {
    s.upstream.describe.failures = 3; // the key schema cannot be read: refused, 500
    const refused = await s.send("PutItem", { TableName: "t", Item: item("a", 1) });
    assert.equal(refused.status, 500);
    const next = await s.send("PutItem", { TableName: "t", Item: item("b", 1) });
    assert.equal(next.status, 200, JSON.stringify(next.body));
  } finally {
    await s.close();
  }
});

Deno.test("throttle_wcu with error_rate: a split batch failed after forwarding wrote its admitted part, and was charged for it", async () => {
  // random(): fail (< rate), then after forwarding (>= 0.5); afterwards no failure.
  const seq = [0.01, 0.9];
  const s = setup({ throttleWcu: 2, errorRate: 0.1 }, () => seq.shift() ?? 0.99);
  const requests = ["a", "b", "c"].map((id) => ({ PutRequest: { Item: item(id, 1) } }));
  try {
    const failed = await s.send("BatchWriteItem", { RequestItems: { t: requests } });
    assert.equal(failed.status, 500);
    assert.equal(failed.body.__type, "com.amazonaws.dynamodb.v20120810#InternalServerError");
    assert.deepEqual([...s.upstream.tables.get("t")!.keys()], ["a", "b"]);
    const again = await s.send("BatchWriteItem", { RequestItems: { t: requests } });
    assert.deepEqual([again.status, again.body], [400, THROTTLED]);
  } finally {
    await s.close();
  }
});

Deno.test("throttle_wcu: a transaction writing a spent table is canceled, not forwarded", async () => {
  const s = setup({ throttleWcu: 1 });
  try {
    assert.equal((await s.send("PutItem", { TableName: "t", Item: item("a", 1) })).status, 200);
    const calls = s.upstream.calls.length;
    const canceled = await s.send("TransactWriteItems", {
      TransactItems: [{ Put: { TableName: "t", Item: item("b", 1) } }],
    });
    assert.equal(canceled.status, 400);
    assert.equal(
      canceled.body.__type,
      "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
    );
    assert.equal(
      canceled.body.Message,
      "Transaction cancelled, please refer cancellation reasons for specific reasons " +
        "[ProvisionedThroughputExceeded]",
    );
    assert.equal(s.upstream.calls.length, calls);
  } finally {
    await s.close();
  }
});
