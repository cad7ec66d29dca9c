/**
 * One attempt at an edit (write_back_attempt.ts) through the functions' own DynamoDB
 * client (dynamo_http.ts) against a fake DynamoDB over HTTP whose UpdateItem lands and
 * then holds its answer, as a stalled write on AWS may (local-stack/aws/stalls.ts): the
 * client's attempt timeout, its retry of the same conditional update, and the
 * write-back's own deadline for the whole UpdateItem, as they really meet.
 */

import assert from "node:assert/strict";
import { crc32 } from "./crc32.ts";
import { DYNAMO_MAX_ATTEMPTS } from "./dynamo_client.ts";
import { DynamoClient } from "./dynamo_http.ts";
import { byTargetTable } from "./table_registry.ts";
import { fakeCpuMeter, fakeSql, SEGMENT_NAME_EDIT } from "./testing_fakes.ts";
import { attempt, type EditDeps } from "./write_back_attempt.ts";

const spec = byTargetTable("firespring_segments")!;
const edit = SEGMENT_NAME_EDIT;

/**
 * A DynamoDB of one item, `name` "Old": GetItem reads it; UpdateItem, on condition that
 * the name is still the one its values pin (`:` the value the condition compares), sets
 * it, else answers 400 ConditionalCheckFailedException. The answers of the first `held`
 * UpdateItems are held `holdMs` after they took effect (or until their client goes away).
 */
function stallingDynamo(held: number, holdMs: number) {
  let name = "Old";
  let stalls = held;
  const updates: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const target = req.headers.get("x-amz-target") ?? "";
    const input = JSON.parse(await req.text());
    let status = 200;
    let body: unknown = {};
    if (target.endsWith(".GetItem")) {
      body = { Item: { segment_id: { S: "s-1" }, name: { S: name } } };
    } else if (target.endsWith(".UpdateItem")) {
      const values = Object.values(input.ExpressionAttributeValues ?? {}) as { S?: string }[];
      // The condition pins the name read ("Old"), and SET writes the edit ("New").
      if (values.some((v) => v.S === name) && name === "Old") {
        name = "New";
        updates.push("written");
      } else {
        updates.push("condition failed");
        status = 400;
        body = {
          __type: "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
          message: "The conditional request failed",
        };
      }
      if (stalls-- > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, holdMs);
          req.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
    }
    const text = JSON.stringify(body);
    return new Response(text, {
      status,
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-crc32": String(crc32(text)),
      },
    });
  });
  const client = new DynamoClient({
    region: spec.region,
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
    maxAttempts: DYNAMO_MAX_ATTEMPTS,
    attemptTimeoutMs: 500,
    sleep: () => Promise.resolve(),
  });
  return {
    client,
    updates,
    name: () => name,
    /** No answer is held from now on. */
    calm: () => (stalls = 0),
    close: () => server.shutdown(),
  };
}

function deps(client: DynamoClient, updateTimeoutMs?: number): EditDeps {
  const database = fakeSql((s) =>
    s.text.includes("sync.hold_write_back") ? [{ holds: true }] : undefined
  );
  return {
    sql: database.sql,
    reader: () => client,
    writer: () => client,
    worker: "w-1",
    cpu: fakeCpuMeter(),
    ...(updateTimeoutMs === undefined ? {} : { updateTimeoutMs }),
  };
}

Deno.test("an UpdateItem whose answer is held past the client's attempt timeout is sent again; its failed condition, the item read again, is applied", async () => {
  const dynamo = stallingDynamo(1, 2_000);
  try {
    const outcome = await attempt(deps(dynamo.client), spec, edit, "7");
    assert.deepEqual(outcome, {
      status: "applied",
      detail: `firespring_segments [segment_id="s-1"]: written to ${spec.sourceTable}`,
    });
    assert.deepEqual(dynamo.updates, ["written", "condition failed"], "written once");
    assert.equal(dynamo.name(), "New");
  } finally {
    await dynamo.close();
  }
});

Deno.test("an UpdateItem past the write-back's own deadline is thrown for a retry, naming it; the retry finds the edit written and is applied", async () => {
  // Every answer held: the deadline (100 ms) comes before the client's attempt timeout.
  const dynamo = stallingDynamo(Infinity, 60_000);
  try {
    await assert.rejects(attempt(deps(dynamo.client, 100), spec, edit, "7"), (e: Error) => {
      assert.equal(e.name, "TimeoutError");
      assert.equal(
        e.message,
        `UpdateItem on ${spec.sourceTable}: no answer within 100 ms, its retries included; ` +
          "it may have been written, which the next attempt's read of the item finds",
      );
      return true;
    });
    assert.deepEqual(dynamo.updates, ["written"], "it landed, and was not sent again");
    dynamo.calm();
    assert.deepEqual(await attempt(deps(dynamo.client), spec, edit, "7"), {
      status: "applied",
      detail: 'firespring_segments [segment_id="s-1"]: the item already holds the edit',
    });
    assert.deepEqual(dynamo.updates, ["written"], "nothing written again");
  } finally {
    await dynamo.close();
  }
});

Deno.test("an error answered before the deadline is thrown as it is", async () => {
  const dynamo = stallingDynamo(0, 0);
  const failing = {
    send: () => Promise.reject(Object.assign(new Error("bad"), { name: "ValidationException" })),
  } as unknown as DynamoClient;
  try {
    await assert.rejects(
      attempt({ ...deps(dynamo.client, 100), writer: () => failing }, spec, edit, "7"),
      { name: "ValidationException", message: "bad" },
    );
  } finally {
    await dynamo.close();
  }
});

Deno.test("a failed condition's read of the item again is given up at the same deadline, naming it", async () => {
  let reads = 0;
  // The first read answers; the second (after the failed condition) never does, but for
  // its signal: without one it fails the test after a second.
  const reader = {
    send: (_command: unknown, options: { abortSignal?: AbortSignal } = {}) => {
      if (++reads === 1) {
        return Promise.resolve({ Item: { segment_id: { S: "s-1" }, name: { S: "Old" } } });
      }
      const signal = options.abortSignal;
      return new Promise((_, reject) => {
        if (!signal) return setTimeout(() => reject(new Error("the read had no deadline")), 1_000);
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    },
  } as unknown as DynamoClient;
  const failedCondition = {
    send: () =>
      Promise.reject(
        Object.assign(new Error("The conditional request failed"), {
          name: "ConditionalCheckFailedException",
        }),
      ),
  } as unknown as DynamoClient;
  await assert.rejects(
    attempt({ ...deps(reader, 100), writer: () => failedCondition }, spec, edit, "7"),
    (e: Error) => {
      assert.equal(e.name, "TimeoutError");
      assert.equal(
        e.message,
        `UpdateItem on ${spec.sourceTable}: its condition failed, and the item's read again ` +
          "had no answer within 100 ms; it may have been written, which the next attempt's " +
          "read of the item finds",
      );
      return true;
    },
  );
  assert.equal(reads, 2);
});
