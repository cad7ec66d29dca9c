import assert from "node:assert/strict";
import { AskedStalls, decideStall, hold, stalledDynamo, STALLS_PATH } from "./stalls.ts";

const TABLE = "DynamoDB_20120810.";
const STREAMS = "DynamoDBStreams_20120810.";

function post(
  operation: string,
  target = TABLE,
  signal?: AbortSignal,
  body: unknown = {},
): Request {
  return new Request("http://127.0.0.1/", {
    method: "POST",
    headers: { "x-amz-target": `${target}${operation}` },
    body: JSON.stringify(body),
    signal,
  });
}

Deno.test("a read stalls before it is forwarded, a write after it is answered, Streams never", () => {
  const always = () => 0;
  const on = { stallRate: 0.5 };
  for (const op of ["Scan", "Query", "GetItem", "BatchGetItem", "DescribeTable", "ListTables"]) {
    assert.equal(decideStall(`${TABLE}${op}`, on, always), "before forwarding", op);
  }
  for (const op of ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "ExecuteStatement"]) {
    assert.equal(decideStall(`${TABLE}${op}`, on, always), "after answering", op);
  }
  for (const op of ["GetRecords", "GetShardIterator", "DescribeStream"]) {
    assert.equal(decideStall(`${STREAMS}${op}`, on, always), "none", op);
  }
  assert.equal(decideStall(`${TABLE}Scan`, on, () => 0.5), "none", "drawn past the share");
  assert.equal(decideStall(`${TABLE}Scan`, { stallRate: 0 }, always), "none", "off");
});

Deno.test("without stall_rate the handler is the same one", () => {
  const handler = () => Promise.resolve(new Response("x"));
  assert.equal(stalledDynamo(handler, { faults: { stallRate: 0, stallMs: 0 } }), handler);
});

/** A handler that notes when each request reached it. */
function upstream() {
  const reached: { operation: string; at: number }[] = [];
  const handler = async (request: Request) => {
    await request.arrayBuffer();
    const operation = request.headers.get("x-amz-target")!.split(".")[1];
    reached.push({ operation, at: performance.now() });
    return new Response(JSON.stringify({ operation }), {
      headers: { "content-type": "application/x-amz-json-1.0" },
    });
  };
  return { reached, handler };
}

Deno.test("a stalled read reaches DynamoDB only after the stall; a stalled write at once, answered after it", async () => {
  const { reached, handler } = upstream();
  const lines: string[] = [];
  const stalled = stalledDynamo(handler, {
    faults: { stallRate: 0.5, stallMs: 80 },
    random: () => 0,
    log: (line) => lines.push(line),
  });
  let start = performance.now();
  let answer = await stalled(
    post("Scan", TABLE, undefined, { TableName: "t", Segment: 1, TotalSegments: 2 }),
  );
  assert.deepEqual(await answer.json(), { operation: "Scan" });
  assert.ok(reached[0].at - start >= 75, `forwarded after ${reached[0].at - start} ms`);
  start = performance.now();
  answer = await stalled(post("PutItem", TABLE, undefined, { TableName: "t" }));
  const answeredAt = performance.now();
  assert.deepEqual(await answer.json(), { operation: "PutItem" });
  assert.equal(answer.headers.get("content-type"), "application/x-amz-json-1.0");
  assert.ok(reached[1].at - start < 40, `forwarded after ${reached[1].at - start} ms`);
  assert.ok(answeredAt - start >= 75, `answered after ${answeredAt - start} ms`);
  assert.match(lines[0], /^Scan t segment 1\/2: stalled 80 ms before it is forwarded$/);
  assert.match(lines[1], /^PutItem t: forwarded, its answer \(200\) held 80 ms$/);
  // Streams pass through, whatever is drawn.
  start = performance.now();
  await (await stalled(post("GetRecords", STREAMS))).arrayBuffer();
  assert.ok(performance.now() - start < 40);
});

Deno.test("a client gone while its read stalls: never forwarded; while its write's answer is held: the write stands", async () => {
  const { reached, handler } = upstream();
  const lines: string[] = [];
  const stalled = stalledDynamo(handler, {
    faults: { stallRate: 0.5, stallMs: 60_000 },
    random: () => 0,
    log: (line) => lines.push(line),
  });
  const gone = new AbortController();
  const read = stalled(post("Scan", TABLE, gone.signal));
  const write = stalled(post("UpdateItem", TABLE, gone.signal));
  await new Promise((resolve) => setTimeout(resolve, 20));
  gone.abort();
  await read;
  await write;
  assert.deepEqual(reached.map((r) => r.operation), ["UpdateItem"]);
  assert.ok(
    lines.some((l) => /^Scan: its client went away while it stalled; not forwarded$/.test(l)),
  );
  assert.ok(
    lines.some((l) =>
      /^UpdateItem: its client went away while its answer was held; the write stands$/.test(l)
    ),
  );
});

Deno.test("over HTTP: a client that times out on a stalled write retries a write that already happened, and the server serves on", async () => {
  const { reached, handler } = upstream();
  let draws = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    stalledDynamo(handler, {
      faults: { stallRate: 0.5, stallMs: 300 },
      random: () => draws++ === 0 ? 0 : 1, // the first request stalls
    }),
  );
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const send = (signal?: AbortSignal) =>
    fetch(url, {
      method: "POST",
      headers: { "x-amz-target": `${TABLE}PutItem` },
      body: "{}",
      signal,
    });
  try {
    await assert.rejects(() => send(AbortSignal.timeout(50)), { name: "TimeoutError" });
    const retried = await send();
    assert.deepEqual(await retried.json(), { operation: "PutItem" });
    assert.equal(reached.length, 2, "the write landed twice: first before its answer was held");
    await hold(350); // the held answer's end, its client gone: nothing throws
    const again = await send();
    assert.equal(again.status, 200);
    await again.arrayBuffer();
  } finally {
    await server.shutdown();
  }
});

Deno.test("hold: the whole wait, or less once its signal aborts", async () => {
  assert.equal(await hold(5), true);
  const ended = new AbortController();
  ended.abort();
  assert.equal(await hold(60_000, ended.signal), false);
  const later = new AbortController();
  setTimeout(() => later.abort(), 10);
  assert.equal(await hold(60_000, later.signal), false);
});

Deno.test("the next writes of a table asked for stall, each its answer held after it landed; then none", async () => {
  const { reached, handler } = upstream();
  const lines: string[] = [];
  const asked = new AskedStalls();
  const stalled = stalledDynamo(handler, {
    faults: { stallRate: 0, stallMs: 0 },
    asked,
    random: () => 0,
    log: (line) => lines.push(line),
  });
  const ask = (body: unknown) =>
    asked.control(
      new Request(`http://127.0.0.1${STALLS_PATH}`, {
        method: "POST",
        body: JSON.stringify(body),
      }),
    );
  const answer = await ask({ tableName: "t", writes: 2, stallMs: 80 });
  assert.deepEqual(await answer.json(), { tableName: "t", writes: 2, stallMs: 80 });
  const timed = async (request: Request) => {
    const start = performance.now();
    await (await stalled(request)).arrayBuffer();
    return { start, answeredAt: performance.now(), reachedAt: reached.at(-1)!.at };
  };
  // Reads, another table's writes and Streams pass at once, and take none of the stalls.
  for (
    const request of [
      post("GetItem", TABLE, undefined, { TableName: "t" }),
      post("UpdateItem", TABLE, undefined, { TableName: "other" }),
      post("GetRecords", STREAMS, undefined, { TableName: "t" }),
    ]
  ) {
    const { start, answeredAt } = await timed(request);
    assert.ok(answeredAt - start < 40, `answered after ${answeredAt - start} ms`);
  }
  const listed = await asked.control(new Request(`http://127.0.0.1${STALLS_PATH}`));
  assert.deepEqual(await listed.json(), { t: { writes: 2, stallMs: 80 } });
  for (const operation of ["UpdateItem", "PutItem"]) {
    const { start, answeredAt, reachedAt } = await timed(
      post(operation, TABLE, undefined, { TableName: "t" }),
    );
    assert.ok(reachedAt - start < 40, `${operation} forwarded after ${reachedAt - start} ms`);
    assert.ok(answeredAt - start >= 75, `${operation} answered after ${answeredAt - start} ms`);
  }
  assert.deepEqual(lines, [
    "UpdateItem t: forwarded, its answer (200) held 80 ms",
    "PutItem t: forwarded, its answer (200) held 80 ms",
  ]);
  assert.equal(asked.any, false, "both taken");
  const { start, answeredAt } = await timed(
    post("UpdateItem", TABLE, undefined, { TableName: "t" }),
  );
  assert.ok(answeredAt - start < 40, "the third write passes at once");
  // Asked for, then called off.
  await ask({ tableName: "t", writes: 3, stallMs: 80 });
  await ask({ tableName: "t", writes: 0, stallMs: 80 });
  assert.equal(asked.any, false);
});

Deno.test("a request for stalls that is not one is refused, naming what it takes", async () => {
  const asked = new AskedStalls();
  for (
    const body of [
      "nonsense",
      {},
      { tableName: "t", writes: 1 },
      { tableName: "t", writes: -1, stallMs: 10 },
      { tableName: "t", writes: 1.5, stallMs: 10 },
      { tableName: "", writes: 1, stallMs: 10 },
      { tableName: "t", writes: 1, stallMs: 0 },
    ]
  ) {
    const answer = await asked.control(
      new Request(`http://127.0.0.1${STALLS_PATH}`, {
        method: "POST",
        body: typeof body === "string" ? body : JSON.stringify(body),
      }),
    );
    assert.equal(answer.status, 400, JSON.stringify(body));
    assert.match((await answer.json()).message, /takes \{"tableName"/);
  }
  assert.equal(asked.any, false);
  const put = new Request(`http://127.0.0.1${STALLS_PATH}`, { method: "PUT", body: "{}" });
  assert.equal((await asked.control(put)).status, 405);
});
