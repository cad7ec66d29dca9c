import assert from "node:assert/strict";
import { checkWebhookHeaders } from "./webhook_headers.ts";
import { createWebhookVerifier, signWebhook } from "./webhook_signing.ts";
import { body, secretA, verify } from "./webhook_signing_fixtures.ts";

Deno.test("a timestamp more than 300 s away is refused, saying how far off", async () => {
  const now = Date.now();
  const at = (offsetMs: number) => new Date(now + offsetMs);
  const check = (offsetMs: number) =>
    checkWebhookHeaders(new Headers(signWebhook(secretA, body, "m1", at(offsetMs))), now);
  const old = check(-301_000);
  assert.ok(!old.ok);
  assert.match(old.problem, /webhook-timestamp \d+ is 301 s in the past; it must be within 300 s/);
  const future = check(+301_000);
  assert.ok(!future.ok);
  assert.match(future.problem, /is 301 s in the future/);
  assert.ok(check(-250_000).ok);
  assert.ok(check(-300_000).ok, "exactly 300 s in the past is within");
  assert.ok(check(+300_000).ok, "exactly 300 s in the future is within");
  assert.ok(check(+250_000).ok);
  const verifier = createWebhookVerifier(secretA);
  const recent = new Headers(signWebhook(secretA, body, "m1", at(-250_000)));
  assert.equal(await verify(verifier, recent, body), undefined);
});

Deno.test("checkWebhookHeaders: missing, malformed and unusable headers are named", () => {
  const problem = (headers: Record<string, string>) => {
    const checked = checkWebhookHeaders(new Headers(headers));
    return checked.ok ? undefined : checked.problem;
  };
  const good = signWebhook(secretA, body, "msg_1");
  assert.equal(problem(good), undefined);
  assert.match(
    problem({})!,
    /missing header webhook-id, webhook-timestamp, webhook-signature/,
  );
  assert.match(problem({ ...good, "webhook-signature": "" })!, /missing header webhook-signature/);
  assert.match(problem({ ...good, "webhook-timestamp": "soon" })!, /whole number of unix seconds/);
  assert.match(problem({ ...good, "webhook-timestamp": "1e9" })!, /whole number of unix seconds/);
  assert.match(problem({ ...good, "webhook-id": "x".repeat(257) })!, /webhook-id must be 1 to 256/);
  assert.equal(problem({ ...good, "webhook-id": "x".repeat(256) }), undefined);
  for (const id of ["msg 1", "msg_\u00e9", "msg\t1", "msg_\u007f"]) {
    assert.equal(
      problem({ ...good, "webhook-id": id }),
      "webhook-id must be 1 to 256 printable ASCII characters without spaces",
      JSON.stringify(id),
    );
  }
  assert.match(problem({ ...good, "webhook-signature": "v1a,abcd" })!, /no v1,<base64> signature/);
  assert.match(problem({ ...good, "webhook-signature": "v1,not base64!" })!, /no v1,<base64>/);
});
