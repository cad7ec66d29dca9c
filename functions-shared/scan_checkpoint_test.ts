import assert from "node:assert/strict";
import { checkpointKey, checkpointText } from "./scan_checkpoint.ts";

Deno.test("a key Postgres's jsonb holds is stored as it is", () => {
  const key = { action_id: { S: "a-1 é" }, n: { N: "1.50" } };
  assert.equal(checkpointText(key), JSON.stringify(key));
  assert.deepEqual(checkpointKey(JSON.parse(checkpointText(key))), key);
  assert.equal(checkpointKey(null), undefined);
});

Deno.test("a key with U+0000, which jsonb refuses, is stored wrapped and comes back the same", () => {
  const key = { state_key: { S: "a\u0000b ☃" } };
  const text = checkpointText(key);
  assert.ok(!text.includes("\\u0000"), text);
  assert.match(text, /^\{"base64_json":"[A-Za-z0-9+/=]+"\}$/);
  assert.deepEqual(checkpointKey(JSON.parse(text)), key);
});

Deno.test("a binary key, as the client decoded it into bytes, is stored as base64 and comes back as bytes", () => {
  const key = { pk: { B: new Uint8Array([0, 1, 254, 255]) }, sk: { N: "7" } };
  const text = checkpointText(key);
  assert.equal(text, '{"pk":{"B":"AAH+/w=="},"sk":{"N":"7"}}');
  assert.deepEqual(checkpointKey(JSON.parse(text)), key);
});
