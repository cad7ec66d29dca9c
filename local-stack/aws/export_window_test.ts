/**
 * AWS's export window wired end to end, as main.ts wires it: writes pass the proxy
 * (proxy.ts, with stream times as the stack runs it, so every write's images are read and
 * kept in its recent writes), and the exports (exports.ts) take their items' versions from
 * `proxy.recentWrites`. Both stand in front of one fake DynamoDB Local: a `Deno.serve` on
 * a free port holding one table keyed by a number `id`, stored canonical as DynamoDB
 * stores numbers. It fails if the exports are not given the proxy's writes, or if a key
 * written as `2e1` is not the one the table's Scan names 20.
 */

import assert from "node:assert/strict";
import { readBack } from "./testdata/export_read_back.ts";
import type { Item } from "./capacity.ts";
import { TableExports } from "./exports.ts";
import { NO_FAULTS } from "./faults.ts";
import { seededRandom } from "./history.ts";
import { createProxy } from "./proxy.ts";
import { StreamTimes } from "./stream_times.ts";
import { callUpstream } from "./upstream.ts";

type Body = Record<string, unknown>;
const TABLE_ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/things";
const AUTH = "AWS4-HMAC-SHA256 Credential=local/20261128/us-east-1/dynamodb/aws4_request";

/** The exports' time: 45 s past a whole minute, so the window starts 105 s before it. */
const T = 1_800_000_000_000 + 45_000;

/**
 * A fake DynamoDB Local of one table, `things`, keyed by the number `id`: DescribeTable,
 * PutItem, BatchGetItem and Scan. Numbers are stored as DynamoDB answers them (`2e1` and
 * `20.0` are 20; `String(Number(...))` is enough for the test's numbers).
 */
function fakeDynamo() {
  const items = new Map<string, Item>();
  const idOf = (key: Item) => String(Number((key.id as { N: string }).N));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const operation = (req.headers.get("x-amz-target") ?? "").split(".")[1];
    const body = await req.json() as Body;
    if (operation === "DescribeTable") {
      const KeySchema = [{ AttributeName: "id", KeyType: "HASH" }];
      const AttributeDefinitions = [{ AttributeName: "id", AttributeType: "N" }];
      const table = { TableName: "things", TableArn: TABLE_ARN, TableId: "t-1" };
      return Response.json({ Table: { ...table, KeySchema, AttributeDefinitions } });
    }
    if (operation === "PutItem") {
      const item = body.Item as Item;
      items.set(idOf(item), { ...item, id: { N: idOf(item) } });
      return Response.json({});
    }
    if (operation === "BatchGetItem") {
      const { Keys } = (body.RequestItems as Record<string, { Keys: Item[] }>).things;
      return Response.json({
        Responses: { things: Keys.flatMap((k) => items.get(idOf(k)) ?? []) },
      });
    }
    if (operation === "Scan") return Response.json({ Items: [...items.values()] });
    return Response.json({ __type: "UnknownOperationException" }, { status: 400 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, server };
}

/** The proxy and the exports as main.ts wires them, on a clock and a timer the test drives. */
function stack() {
  const dynamo = fakeDynamo();
  let clock = T - 600_000;
  const now = () => clock;
  const proxy = createProxy({
    upstream: dynamo.url,
    faults: NO_FAULTS,
    now,
    streamTimes: new StreamTimes(),
  });
  const timers: (() => void)[] = [];
  const objects = new Map<string, Uint8Array<ArrayBuffer>>();
  const exports = new TableExports({
    upstream: (headers, operation, body) => callUpstream(dynamo.url, headers, operation, body),
    storage: {
      bucketExists: (bucket) => Promise.resolve(bucket === "exports"),
      put: (bucket, key, bytes) => {
        objects.set(`${bucket}/${key}`, new Uint8Array(bytes));
        return Promise.resolve();
      },
    },
    now,
    versions: proxy.recentWrites,
    random: seededRandom(11),
    timer: (_ms, run) => timers.push(run),
  });
  /** A request through the exports and the proxy, as main.ts serves it; its answer's JSON. */
  const call = async (operation: string, body: Body): Promise<Body> => {
    const request = new Request("http://dynamodb/", {
      method: "POST",
      headers: {
        "x-amz-target": `DynamoDB_20120810.${operation}`,
        "content-type": "application/x-amz-json-1.0",
        authorization: AUTH,
      },
      body: JSON.stringify(body),
    });
    const response = await exports.handle(request, proxy.handle);
    const json = await response.json() as Body;
    assert.equal(response.status, 200, `${operation}: ${JSON.stringify(json)}`);
    return json;
  };
  const at = (moment: number) => clock = moment;
  return { call, objects, timers, at, close: () => dynamo.server.shutdown() };
}

/**
 * How many exports are asked for at T. Their moments span the 107 s from the window's
 * start (T - 105 s) to their read (T + 2 s): a change 90 s before T is older in 15 s of it.
 */
const EXPORTS = 60;

const put = (id: string, v: number) => ({
  TableName: "things",
  Item: { id: { N: id }, v: { N: String(v) } },
});

Deno.test("writes through the proxy reach the exports: a key written within the window comes out with its older images too", async () => {
  const { call, objects, timers, at, close } = stack();
  try {
    await call("UpdateContinuousBackups", {
      TableName: "things",
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    at(T - 300_000);
    for (const id of ["10", "20", "30", "40"]) await call("PutItem", put(id, 0));
    at(T - 180_000); // before the window: exported as last written, always
    await call("PutItem", put("30", 1));
    at(T - 90_000); // inside the window only because it starts a minute before T's minute
    await call("PutItem", put("40", 1));
    at(T - 30_000);
    await call("PutItem", put("10", 1));
    await call("PutItem", put("2e1", 1)); // 20, as DynamoDB names it
    at(T - 10_000);
    await call("PutItem", put("10", 2));
    await call("PutItem", put("20.0", 2));

    at(T);
    const arns: unknown[] = [];
    for (let i = 0; i < EXPORTS; i++) {
      const started = await call("ExportTableToPointInTime", {
        TableArn: TABLE_ARN,
        S3Bucket: "exports",
      });
      arns.push((started.ExportDescription as Body).ExportArn);
    }
    at(T + 2_000); // the exports' 2 s: their timers run, their items are read now
    assert.equal(timers.length, EXPORTS);
    for (const run of timers) run();
    const seen = new Map<string, Set<string | undefined>>();
    for (const ExportArn of arns) {
      const d = (await call("DescribeExport", { ExportArn })).ExportDescription as Body;
      assert.equal(d.ExportStatus, "COMPLETED");
      assert.equal(d.ExportTime, T / 1000);
      const items = await readBack(objects, d);
      for (const id of ["10", "20", "30", "40"]) {
        const item = items.find((i) => (i.id as Body).N === id);
        const images = seen.get(id) ?? seen.set(id, new Set()).get(id)!;
        images.add(item && String((item.v as Body).N));
      }
    }
    // Each of a key's images is as at a moment of its own (the newest, 2, drawn in 12 s
    // of the 107, may be missed): the older ones are there, and nothing never written.
    for (const id of ["10", "20"]) {
      const images = [...seen.get(id)!];
      assert.ok(images.includes("0") && images.includes("1"), `${id}: ${images}`);
      assert.ok(images.every((v) => v === "0" || v === "1" || v === "2"), `${id}: ${images}`);
    }
    assert.deepEqual(seen.get("30"), new Set(["1"]), "last written 3 minutes before: exact");
    assert.deepEqual(seen.get("40"), new Set(["0", "1"]), "changed 90 s before T at :45");
  } finally {
    await close();
  }
});
