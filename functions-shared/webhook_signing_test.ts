import assert from "node:assert/strict";
import { parseSecrets, signWebhook, webhookProblem } from "./webhook_signing.ts";

const secretA = `whsec_${btoa("a".repeat(32))}`;
const secretB = `whsec_${btoa("b".repeat(32))}`;
const body = '{"records":[]}';

Deno.test("a signed body verifies; a changed body does not", () => {
  const headers = new Headers(signWebhook(secretA, body));
  assert.equal(webhookProblem(secretA, headers, body), undefined);
  assert.match(webhookProblem(secretA, headers, body + " ")!, /does not match the body/);
});

Deno.test("during a rotation either secret verifies", () => {
  const rotating = `${secretB}, ${secretA}`;
  assert.deepEqual(parseSecrets(rotating), [secretB, secretA]);
  assert.equal(webhookProblem(rotating, new Headers(signWebhook(secretA, body)), body), undefined);
  assert.equal(webhookProblem(rotating, new Headers(signWebhook(secretB, body)), body), undefined);
  assert.match(
    webhookProblem(secretB, new Headers(signWebhook(secretA, body)), body)!,
    /does not match/,
  );
});

Deno.test("a timestamp more than 300 s away is refused", () => {
  const old = new Date(Date.now() - 301_000);
  const future = new Date(Date.now() + 301_000);
  assert.match(
    webhookProblem(secretA, new Headers(signWebhook(secretA, body, "m1", old)), body)!,
    /is more than 300 s from now/,
  );
  assert.match(
    webhookProblem(secretA, new Headers(signWebhook(secretA, body, "m1", future)), body)!,
    /is more than 300 s from now/,
  );
  const recent = new Date(Date.now() - 250_000);
  assert.equal(
    webhookProblem(secretA, new Headers(signWebhook(secretA, body, "m1", recent)), body),
    undefined,
  );
});

Deno.test("several signatures in the header: any one may match", () => {
  const headers = signWebhook(secretA, body);
  headers["webhook-signature"] = `v1,bm90IGl0 ${headers["webhook-signature"]}`;
  assert.equal(webhookProblem(secretA, new Headers(headers), body), undefined);
});

Deno.test("missing headers and a missing secret are named", () => {
  assert.match(
    webhookProblem(secretA, new Headers(), body)!,
    /missing header webhook-id, webhook-timestamp, webhook-signature/,
  );
  assert.match(
    webhookProblem("", new Headers(signWebhook(secretA, body)), body)!,
    /no SYNC_WEBHOOK_SECRET/,
  );
  assert.throws(() => signWebhook("", body), /no webhook secret/);
});
