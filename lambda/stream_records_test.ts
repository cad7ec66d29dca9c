import assert from "node:assert/strict";
import { record } from "./forwarder_fakes.ts";
import { splitIntoBodies } from "./stream_records.ts";

Deno.test("bodies stay under the limit and keep the records' order", () => {
  const records = Array.from({ length: 10 }, (_, i) => record(String(i), 300));
  const bodies = splitIntoBodies(records, 1_000);
  assert.ok(bodies.length > 1);
  assert.deepEqual(bodies.flat(), records);
  for (const body of bodies) assert.ok(JSON.stringify(body).length <= 1_000 + body.length);
});
