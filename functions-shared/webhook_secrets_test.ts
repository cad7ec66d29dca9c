import assert from "node:assert/strict";
import { MIN_SECRET_BYTES, parseWebhookSecrets } from "./webhook_secrets.ts";
import { bytes, MALFORMED, secretA, secretB } from "./webhook_signing_fixtures.ts";

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
