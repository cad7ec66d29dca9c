/** The JSON answers of the Edge Functions. */

import assert from "node:assert/strict";
import { errorResponse, json, methodNotAllowed } from "./http.ts";

Deno.test("json answers the status, a JSON content type and the body", async () => {
  const response = json(201, { a: 1, b: ["x", null] });
  assert.equal(response.status, 201);
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.equal(await response.text(), '{"a":1,"b":["x",null]}');
});

Deno.test("json adds extra headers and lets them override the content type", async () => {
  const response = json(503, null, { "retry-after": "5" });
  assert.equal(response.headers.get("retry-after"), "5");
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.equal(await response.text(), "null");
  const other = json(200, "x", { "content-type": "application/problem+json" });
  assert.equal(other.headers.get("content-type"), "application/problem+json");
  await other.body?.cancel();
});

Deno.test("errorResponse wraps the message as {error}", async () => {
  const response = errorResponse(400, 'body is not valid JSON: "x"', { "x-extra": "1" });
  assert.equal(response.status, 400);
  assert.equal(response.headers.get("x-extra"), "1");
  assert.deepEqual(await response.json(), { error: 'body is not valid JSON: "x"' });
});

Deno.test("methodNotAllowed answers 405 naming the method, with Allow", async () => {
  const response = methodNotAllowed("POST");
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "POST");
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.deepEqual(await response.json(), { error: "method not allowed: use POST" });
});
