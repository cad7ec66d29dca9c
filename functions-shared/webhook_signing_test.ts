import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { checkWebhookHeaders, type Delivery } from "./webhook_headers.ts";
import {
  createWebhookVerifier,
  signWebhook,
  timingSafeEqual,
  webhookProblem,
} from "./webhook_signing.ts";
import { body, bytes, MALFORMED, secretA, secretB, verify } from "./webhook_signing_fixtures.ts";

Deno.test("a malformed setting gives a verifier that verifies nothing, and never throws", () => {
  for (const [name, setting, message] of MALFORMED) {
    const verifier = createWebhookVerifier(setting);
    assert.equal(verifier.ok, false, name);
    if (verifier.ok) continue;
    assert.match(verifier.problem, /the webhook's SYNC_WEBHOOK_SECRET is misconfigured: /, name);
    assert.match(verifier.problem, message, name);
    // The synchronous check refuses too, even a request signed with the good secret.
    const signed = new Headers(signWebhook(secretA, body));
    assert.match(webhookProblem(setting, signed, body)!, /misconfigured/, name);
  }
});

Deno.test("a signed body verifies; a changed body, id or timestamp does not", async () => {
  const verifier = createWebhookVerifier(secretA);
  const headers = signWebhook(secretA, body, "msg_1");
  assert.equal(await verify(verifier, new Headers(headers), body), undefined);
  assert.match((await verify(verifier, new Headers(headers), body + " "))!, /does not match/);
  const otherId = { ...headers, "webhook-id": "msg_2" };
  assert.match((await verify(verifier, new Headers(otherId), body))!, /does not match/);
  // A forged timestamp: the signature was made for another (still recent) timestamp.
  const moved = {
    ...headers,
    "webhook-timestamp": String(Number(headers["webhook-timestamp"]) - 5),
  };
  assert.match((await verify(verifier, new Headers(moved), body))!, /does not match/);
});

Deno.test("during a rotation either secret verifies; a third does not", async () => {
  const rotating = createWebhookVerifier(`${secretB}, ${secretA}`);
  assert.ok(rotating.ok);
  assert.equal(rotating.secretCount, 2);
  const signedA = new Headers(signWebhook(secretA, body));
  const signedB = new Headers(signWebhook(secretB, body));
  assert.equal(await verify(rotating, signedA, body), undefined);
  assert.equal(await verify(rotating, signedB, body), undefined);
  assert.match((await verify(createWebhookVerifier(secretB), signedA, body))!, /does not match/);
  const secretC = `whsec_${btoa("c".repeat(32))}`;
  const signedC = new Headers(signWebhook(secretC, body));
  assert.match(
    (await verify(rotating, signedC, body))!,
    /does not match the body with any configured secret/,
  );
});

Deno.test("signWebhook signs with every secret of a rotation: a receiver holding either verifies", async () => {
  const headers = new Headers(signWebhook(`${secretB},${secretA}`, body));
  assert.equal(headers.get("webhook-signature")!.split(" ").length, 2);
  assert.equal(await verify(createWebhookVerifier(secretB), headers, body), undefined);
  assert.equal(await verify(createWebhookVerifier(secretA), headers, body), undefined);
  assert.equal(webhookProblem(secretA, headers, body), undefined);
  const other = createWebhookVerifier(`whsec_${btoa("c".repeat(32))}`);
  assert.match((await verify(other, headers, body))!, /does not match/);
  // The reference implementation takes either signature too.
  const sent = Object.fromEntries(headers);
  assert.doesNotThrow(() => new Webhook(secretA).verify(body, sent));
  assert.doesNotThrow(() => new Webhook(secretB).verify(body, sent));
});

Deno.test("signWebhook refuses a malformed setting, naming the secret, not its value", () => {
  assert.throws(() => signWebhook("", body), /SYNC_WEBHOOK_SECRET is malformed: it is not set/);
  assert.throws(() => signWebhook("whsec_", body), /secret 1 of 1 has nothing after whsec_/);
  assert.throws(
    () => signWebhook(`${secretA},whsec_x`, body),
    (error: Error) => /secret 2 of 2/.test(error.message) && !error.message.includes(secretA),
  );
});

Deno.test("several signatures in the header: any one may match", async () => {
  const headers = signWebhook(secretA, body);
  headers["webhook-signature"] = `v1,bm90IGl0 v2,abcd ${headers["webhook-signature"]}`;
  assert.equal(await verify(createWebhookVerifier(secretA), new Headers(headers), body), undefined);
  assert.equal(webhookProblem(secretA, new Headers(headers), body), undefined);
});

Deno.test("the signature is checked over the body's bytes as sent", async () => {
  const verifier = createWebhookVerifier(secretA);
  assert.ok(verifier.ok);
  const text = '{"name":"Zoë ✓"}';
  const checked = checkWebhookHeaders(new Headers(signWebhook(secretA, text)));
  assert.ok(checked.ok);
  const delivery: Delivery = checked.delivery;
  assert.equal(await verifier.verifySignature(delivery, bytes(text)), undefined);
  assert.match((await verifier.verifySignature(delivery, bytes(text + "\n")))!, /does not match/);
});

Deno.test("webhookProblem (the synchronous check) agrees with the verifier", () => {
  const headers = new Headers(signWebhook(secretA, body));
  assert.equal(webhookProblem(secretA, headers, body), undefined);
  assert.match(webhookProblem(secretA, headers, body + " ")!, /does not match/);
  assert.match(webhookProblem(secretA, new Headers(), body)!, /missing header webhook-id/);
  assert.match(webhookProblem("", headers, body)!, /SYNC_WEBHOOK_SECRET is misconfigured/);
});

Deno.test("timingSafeEqual compares whole byte strings", () => {
  assert.equal(timingSafeEqual(bytes("abc"), bytes("abc")), true);
  assert.equal(timingSafeEqual(bytes("abc"), bytes("abd")), false);
  assert.equal(timingSafeEqual(bytes("abc"), bytes("abcd")), false);
  assert.equal(timingSafeEqual(bytes("abc\0"), bytes("abc")), false);
  assert.equal(timingSafeEqual(bytes(""), bytes("")), true);
});

Deno.test("what signWebhook signs, the standardwebhooks package verifies (the scheme's reference)", () => {
  const key = secretA.slice("whsec_".length);
  const at = new Date("2026-11-28T12:00:00Z");
  for (const payload of [body, "", "é ünïcode \u2028", "x".repeat(100_000)]) {
    const headers = signWebhook(secretA, payload, "msg_ref", at);
    assert.equal(headers["webhook-signature"], new Webhook(key).sign("msg_ref", at, payload));
  }
});
