import assert from "node:assert/strict";
import {
  checkWebhookHeaders,
  createWebhookVerifier,
  type Delivery,
  MIN_SECRET_BYTES,
  parseWebhookSecrets,
  signWebhook,
  timingSafeEqual,
  webhookProblem,
  type WebhookVerifier,
} from "./webhook_signing.ts";

const secretA = `whsec_${btoa("a".repeat(32))}`;
const secretB = `whsec_${btoa("b".repeat(32))}`;
const body = '{"records":[]}';
const bytes = (text: string) => new TextEncoder().encode(text);

/** The settings that must never verify anything, and what the problem says of each. */
const MALFORMED: [string, string | undefined, RegExp][] = [
  ["unset", undefined, /it is not set/],
  ["empty", "", /it is not set/],
  ["blank", "  ", /it is not set/],
  ["whsec_ alone", "whsec_", /secret 1 of 1 has nothing after whsec_/],
  ["a plain password", "hunter2-correct-horse", /secret 1 of 1 does not start with whsec_/],
  ["a bad second secret", `${secretA},whsec_x`, /secret 2 of 2 is not valid base64/],
  ["a trailing comma", `${secretA},`, /secret 2 of 2 is empty/],
  ["a leading comma", `,${secretA}`, /secret 1 of 2 is empty/],
  ["three secrets", `${secretA},${secretB},${secretA}`, /holds 3 comma-separated secrets/],
  ["too short", `whsec_${btoa("s".repeat(16))}`, /decodes to 16 bytes; at least 24/],
  ["url-safe base64", `whsec_${"-_".repeat(16)}`, /is not valid base64/],
  ["unpadded base64", `whsec_${btoa("c".repeat(25)).replace(/=+$/, "")}`, /not valid base64/],
];

/** Verifies a whole request with a verifier, as the webhook does. */
async function verify(verifier: WebhookVerifier, headers: Headers, text: string) {
  if (!verifier.ok) return verifier.problem;
  const checked = checkWebhookHeaders(headers);
  if (!checked.ok) return checked.problem;
  return await verifier.verifySignature(checked.delivery, bytes(text));
}

Deno.test("parseWebhookSecrets: one or two good secrets decode to their keys", () => {
  const one = parseWebhookSecrets(secretA);
  assert.ok(one.ok);
  assert.deepEqual(one.keys, [bytes("a".repeat(32))]);
  const two = parseWebhookSecrets(` ${secretB} , ${secretA} `);
  assert.ok(two.ok);
  assert.deepEqual(two.keys, [bytes("b".repeat(32)), bytes("a".repeat(32))]);
  const shortest = parseWebhookSecrets(`whsec_${btoa("m".repeat(MIN_SECRET_BYTES))}`);
  assert.ok(shortest.ok, "24 bytes is enough");
});

Deno.test("parseWebhookSecrets: each malformed setting names the secret and never its value", () => {
  for (const [name, setting, message] of MALFORMED) {
    const parsed = parseWebhookSecrets(setting);
    assert.equal(parsed.ok, false, name);
    if (parsed.ok) continue;
    assert.match(parsed.problem, message, name);
    assert.ok(!parsed.problem.includes(secretA.slice(6)), `${name}: no secret in the problem`);
    assert.ok(!parsed.problem.includes("hunter2"), `${name}: no password in the problem`);
  }
});

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

Deno.test("signWebhook signs with the first secret of a rotation", async () => {
  const headers = new Headers(signWebhook(`${secretB},${secretA}`, body));
  assert.equal(await verify(createWebhookVerifier(secretB), headers, body), undefined);
  assert.match((await verify(createWebhookVerifier(secretA), headers, body))!, /does not match/);
});

Deno.test("signWebhook refuses a malformed setting, naming the secret, not its value", () => {
  assert.throws(() => signWebhook("", body), /SYNC_WEBHOOK_SECRET is malformed: it is not set/);
  assert.throws(() => signWebhook("whsec_", body), /secret 1 of 1 has nothing after whsec_/);
  assert.throws(
    () => signWebhook(`${secretA},whsec_x`, body),
    (error: Error) => /secret 2 of 2/.test(error.message) && !error.message.includes(secretA),
  );
});

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
  assert.match(problem({ ...good, "webhook-signature": "v1a,abcd" })!, /no v1,<base64> signature/);
  assert.match(problem({ ...good, "webhook-signature": "v1,not base64!" })!, /no v1,<base64>/);
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
