import assert from "node:assert/strict";
import { retryAfterMs } from "./retry_after.ts";

const NOW = Date.parse("2026-12-02T01:00:00Z");

Deno.test("Retry-After as seconds", () => {
  assert.equal(retryAfterMs("60", NOW), 60_000);
  assert.equal(retryAfterMs(" 5 ", NOW), 5_000);
  assert.equal(retryAfterMs("0", NOW), 0);
});

Deno.test("Retry-After as an HTTP date: the time until it, none once it is past", () => {
  assert.equal(retryAfterMs("Wed, 02 Dec 2026 01:00:30 GMT", NOW), 30_000);
  assert.equal(retryAfterMs("Wed, 02 Dec 2026 00:59:00 GMT", NOW), 0);
  // The obsolete forms a recipient must accept too (RFC 9110 5.6.7).
  assert.equal(retryAfterMs("Wednesday, 02-Dec-26 01:00:30 GMT", NOW), 30_000, "RFC 850");
  assert.equal(retryAfterMs("Wed Dec  2 01:00:30 2026", NOW), 30_000, "asctime, in GMT");
});

Deno.test("a Retry-After that is neither form asks for no wait", () => {
  for (const value of [null, "", "-5", "1.5", "soon", "2026-12-02T01:00:30Z", "Wed, 02 Dec 2026"]) {
    assert.equal(retryAfterMs(value, NOW), 0, String(value));
  }
});
