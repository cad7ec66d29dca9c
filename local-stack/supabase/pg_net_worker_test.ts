import assert from "node:assert/strict";
import { send, storedContent } from "./pg_net_worker.ts";

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
