import assert from "node:assert/strict";
import { type Handler, servedOrRefused } from "./cold_start.ts";

Deno.test("a cold start that throws answers every request 503, misconfigured, naming the cause", async () => {
  const logged: string[] = [];
  const error = console.error;
  console.error = (line: string) => logged.push(line);
  let handler: Handler;
  try {
    handler = servedOrRefused("import-worker", () => {
      throw new Error('SYNC_DB_POOL_MAX is "0"; it must be a whole number from 1 to 20');
    });
  } finally {
    console.error = error;
  }
  assert.deepEqual(logged, [
    'import-worker refuses every request: SYNC_DB_POOL_MAX is "0"; it must be a whole number from 1 to 20',
  ]);
  for (let i = 0; i < 2; i++) {
    const response = await handler(new Request("http://x/", { method: "POST" }));
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("x-sync-refusal"), "misconfigured");
    assert.equal(response.headers.get("retry-after"), "60");
    assert.deepEqual(await response.json(), {
      error: 'import-worker is misconfigured: SYNC_DB_POOL_MAX is "0"; it must be a whole ' +
        "number from 1 to 20; nothing was done",
    });
  }
  const served = servedOrRefused("x", () => () => new Response("ok"));
  assert.equal(await (await served(new Request("http://x/"))).text(), "ok");
});
