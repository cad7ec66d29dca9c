import assert from "node:assert/strict";
import {
  curlErrorMessage,
  send,
  storedContent,
  turn,
  Wakeup,
  type WorkerTurn,
} from "./pg_net_worker.ts";

Deno.test("a body is stored as pg_net stores it: up to its first NUL, and NULL when empty", () => {
  assert.equal(storedContent('{"ok":true}'), '{"ok":true}');
  assert.equal(storedContent(""), null);
  assert.equal(storedContent("ab\u0000cd"), "ab");
  assert.equal(storedContent("\u0000cd"), null);
});

Deno.test("an answer without a body is recorded with NULL content, its status and headers kept", async () => {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () => new Response(null, { status: 202, headers: { "x-id": "7" } }),
  );
  try {
    const outcome = await send({
      id: "1",
      method: "POST",
      url: `http://127.0.0.1:${server.addr.port}/`,
      headers: {},
      body: new TextEncoder().encode("{}") as Uint8Array<ArrayBuffer>,
      timeout_milliseconds: 5_000,
    });
    assert.equal(outcome.status_code, 202);
    assert.equal(outcome.content, null);
    assert.equal(outcome.headers?.["x-id"], "7");
    assert.equal(outcome.error_msg, null);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a wake before the wait ends it at once, a wake during it ends it, none lets it run out", async () => {
  const wakeup = new Wakeup();
  wakeup.wake();
  assert.equal(await wakeup.wait(60_000), true, "a wake during the turn is not lost");
  assert.equal(await wakeup.wait(10), false, "the latch was reset");
  const waiting = wakeup.wait(60_000);
  wakeup.wake();
  assert.equal(await waiting, true);
});

Deno.test("every turn ends with the wait, a full batch's too, so a backlog goes 200 a turn", async () => {
  const events: string[] = [];
  const backlog = [200, 200, 1];
  const wakeup = new Wakeup();
  wakeup.wait = (ms) => {
    events.push(`wait ${ms}`);
    return Promise.resolve(false);
  };
  const parts: WorkerTurn = {
    deleteExpired: () => Promise.resolve(0),
    drain: () => {
      const sent = backlog.shift() ?? 0;
      events.push(`sent ${sent}`);
      return Promise.resolve(sent);
    },
    wakeup,
    waitMs: 1_000,
  };
  for (let i = 0; i < 3; i++) await turn(parts);
  assert.deepEqual(events, [
    "sent 200",
    "wait 1000",
    "sent 200",
    "wait 1000",
    "sent 1",
    "wait 1000",
  ]);
});

Deno.test("a turn whose batch fails is logged and still ends with the wait", async () => {
  const wakeup = new Wakeup();
  let waited = false;
  wakeup.wait = () => {
    waited = true;
    return Promise.resolve(false);
  };
  const errors: string[] = [];
  const original = console.error;
  console.error = (message: string) => errors.push(message);
  try {
    await turn({
      deleteExpired: () => Promise.resolve(0),
      drain: () => Promise.reject(new Error("connection refused")),
      wakeup,
      waitMs: 1_000,
    });
  } finally {
    console.error = original;
  }
  assert.deepEqual(errors, ["pg_net worker: connection refused; retrying"]);
  assert.equal(waited, true);
});

Deno.test("a request with no answer records libcurl's words, as pg_net does", async () => {
  const request = (url: string, timeout_milliseconds = 5_000) => ({
    id: "1",
    method: "GET" as const,
    url,
    headers: {},
    body: null,
    timeout_milliseconds,
  });
  const closed = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const refused = await send(request(`http://127.0.0.1:${closedPort}/closed`));
  assert.equal(refused.error_msg, "Couldn't connect to server");
  assert.equal(refused.timed_out, false);
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    await held;
    return new Response("late");
  });
  try {
    const late = await send(request(`http://127.0.0.1:${server.addr.port}/`, 50));
    assert.equal(late.timed_out, true);
    assert.match(
      late.error_msg!,
      /^Timeout of 50 ms reached\. Total time: \d+\.\d{6} ms \(DNS time: 0\.000000 ms, TCP\/SSL handshake time: 0\.000000 ms, HTTP Request\/Response time: \d+\.\d{6} ms\)$/,
    );
  } finally {
    release();
    await server.shutdown();
  }
  assert.equal(
    curlErrorMessage(new TypeError("dns error: failed to lookup address"), 1, 1),
    "Couldn't resolve host name",
  );
  assert.equal(
    curlErrorMessage(new TypeError("connection closed before message completed"), 1, 1),
    "Server returned nothing (no headers, no data)",
  );
});
