/**
 * The webhook handler's authentication, with a fake database (webhook_fakes.ts): the
 * misconfigured secret settings that must refuse everything, rotation, forged signatures
 * and timestamps, and the order of the checks (headers before the body).
 */

import assert from "node:assert/strict";
import { handleWebhook } from "./webhook.ts";
import { signWebhook } from "./webhook_signing.ts";
import {
  answer,
  deps,
  fakeDb,
  oneRecord,
  post,
  secretA,
  secretB,
  signed,
  unreadableBody,
  URL_,
} from "./webhook_fakes.ts";

Deno.test("each malformed secret setting refuses forged and signed requests with 503 (retried as it is, never split)", async () => {
  const settings: [string, string, RegExp][] = [
    ["whsec_ alone", "whsec_", /secret 1 of 1 has nothing after whsec_/],
    ["a plain password", "correct-horse-battery-staple", /secret 1 of 1 does not start/],
    ["a bad second secret", `${secretA},whsec_x`, /secret 2 of 2 is not valid base64/],
    ["a trailing comma", `${secretA},`, /secret 2 of 2 is empty/],
    ["three secrets", `${secretA},${secretB},${secretA}`, /holds 3 comma-separated secrets/],
  ];
  for (const [name, setting, cause] of settings) {
    const db = fakeDb();
    const forged = post(oneRecord, {
      "webhook-id": "msg_forged",
      "webhook-timestamp": "1",
      "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    });
    for (const request of [forged, signed(oneRecord, secretA)]) {
      const response = await handleWebhook(request, deps(db, setting));
      assert.equal(response.headers.get("x-sync-refusal"), "misconfigured", name);
      assert.equal(response.headers.get("retry-after"), "60", name);
      const { status, body } = await answer(response);
      assert.equal(status, 503, name);
      assert.match(body.error, /the webhook's SYNC_WEBHOOK_SECRET is misconfigured/, name);
      assert.match(body.error, cause, name);
      assert.ok(!body.error.includes(secretA.slice(6)), `${name}: the secret is not shown`);
      assert.ok(!body.error.includes("battery"), `${name}: the password is not shown`);
    }
    assert.equal(db.begun, 0, `${name}: the database was not touched`);
  }
});

Deno.test("a misconfigured webhook refuses even a GET, and reads no body", async () => {
  const db = fakeDb();
  const get = await handleWebhook(new Request(URL_), deps(db, "whsec_"));
  assert.equal(get.status, 503);
  await get.body?.cancel();
  const { stream, wasRead } = unreadableBody();
  const response = await handleWebhook(
    post(stream, signWebhook(secretA, oneRecord)),
    deps(db, `${secretA},whsec_x`),
  );
  assert.equal(response.status, 503);
  await response.body?.cancel();
  assert.equal(wasRead(), false);
});

Deno.test("during a rotation a request signed with either secret is accepted", async () => {
  for (const secret of [secretA, secretB]) {
    const db = fakeDb();
    const { status, body } = await answer(
      await handleWebhook(signed(oneRecord, secret), deps(db, `${secretB},${secretA}`)),
    );
    assert.equal(status, 200);
    assert.deepEqual(body, { received: 1, applied: 1, skipped: 0, deadLettered: 0 });
  }
});

Deno.test("a forged signature or a forged timestamp is refused with 401, nothing applied", async () => {
  const db = fakeDb();
  const secretC = `whsec_${btoa("c".repeat(32))}`;
  const otherSecret = await answer(await handleWebhook(signed(oneRecord, secretC), deps(db)));
  assert.equal(otherSecret.status, 401);
  assert.match(otherSecret.body.error, /webhook-signature does not match the body/);

  // The signature was made for another timestamp (still within the window).
  const headers = signWebhook(secretA, oneRecord, "msg_t", new Date(Date.now() - 60_000));
  const moved = { ...headers, "webhook-timestamp": String(Math.floor(Date.now() / 1000)) };
  const forgedTime = await answer(await handleWebhook(post(oneRecord, moved), deps(db)));
  assert.equal(forgedTime.status, 401);
  assert.match(forgedTime.body.error, /does not match/);

  const changedBody = await answer(
    await handleWebhook(post(oneRecord + " ", signWebhook(secretA, oneRecord)), deps(db)),
  );
  assert.equal(changedBody.status, 401);
  assert.equal(db.begun, 0);
});

Deno.test("a stale or future timestamp is refused before the body is read", async () => {
  const now = Date.now();
  for (
    const [offset, words] of [[-301_000, "301 s in the past"], [+400_000, "400 s in the future"]]
  ) {
    const db = fakeDb();
    const { stream, wasRead } = unreadableBody();
    const headers = signWebhook(secretA, oneRecord, "msg_old", new Date(now + Number(offset)));
    const { status, body } = await answer(
      await handleWebhook(post(stream, headers), deps(db, secretA, { now: () => now })),
    );
    assert.equal(status, 401);
    assert.match(body.error, new RegExp(`webhook-timestamp \\d+ is ${words}`));
    assert.match(body.error, /within 300 s of now/);
    assert.equal(wasRead(), false, "the body was not read");
    assert.equal(db.begun, 0);
  }
  // The control: with a good timestamp the same kind of body is read (and fails).
  const { stream, wasRead } = unreadableBody();
  await assert.rejects(
    handleWebhook(post(stream, signWebhook(secretA, oneRecord)), deps(fakeDb())),
    /the body must not be read/,
  );
  assert.equal(wasRead(), true);
});

Deno.test("missing headers are refused (401) before the body is read", async () => {
  const { stream, wasRead } = unreadableBody();
  const { status, body } = await answer(await handleWebhook(post(stream), deps(fakeDb())));
  assert.equal(status, 401);
  assert.equal(body.error, "missing header webhook-id, webhook-timestamp, webhook-signature");
  assert.equal(wasRead(), false);
});
