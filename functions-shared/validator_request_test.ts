import assert from "node:assert/strict";
import { readValidatorRequest } from "./validator_request.ts";

const post = (body: string, headers: Record<string, string> = {}) =>
  new Request("http://x/data-checksum-validator", { method: "POST", body, headers });

Deno.test("each of the three forms is read as it was sent, with a start's Idempotency-Key", async () => {
  assert.deepEqual(
    await readValidatorRequest(
      post('{"table": "firespring_actions", "repair": true}', { "idempotency-key": "k-1" }),
      "service",
    ),
    { body: { table: "firespring_actions", repair: true }, requestKey: "k-1" },
  );
  assert.deepEqual(await readValidatorRequest(post('{"runId": 7, "pagesPerRequest": 2}'), "wake"), {
    body: { runId: 7, pagesPerRequest: 2 },
    requestKey: undefined,
  });
  assert.deepEqual(await readValidatorRequest(post('{"rereads": true}'), "wake"), {
    body: { rereads: true },
    requestKey: undefined,
  });
});

Deno.test("a body of no form, or not JSON, is 400 naming where and what to send", async () => {
  for (
    const [body, message] of [
      ['{"runId": 0}', /^malformed body at runId: /],
      ['{"rereads": false}', /^malformed body at rereads: /],
      ['{"table": "t", "extra": 1}', /^malformed body at \(the body\): unrecognized key: "extra"/],
      ["[1]", /^malformed body at \(the body\): expected an object, not a list/],
      ["{", /^body is not valid JSON: /],
    ] as const
  ) {
    const answer = await readValidatorRequest(post(body), "service");
    assert.ok(answer instanceof Response, body);
    assert.equal(answer.status, 400, body);
    assert.match((await answer.json()).error, message, body);
  }
});

Deno.test("an Idempotency-Key with a space, or past 255 characters, is 400", async () => {
  for (const key of ["two words", "k".repeat(256)]) {
    const answer = await readValidatorRequest(
      post('{"table": "firespring_actions"}', { "idempotency-key": key }),
      "service",
    );
    assert.ok(answer instanceof Response);
    assert.equal(answer.status, 400);
    assert.match((await answer.json()).error, /Idempotency-Key must be 1 to 255 printable ASCII/);
  }
});

Deno.test("pg_cron's wake key may go on with a run or the re-reads, never start one: 403", async () => {
  const answer = await readValidatorRequest(post('{"table": "firespring_actions"}'), "wake");
  assert.ok(answer instanceof Response);
  assert.equal(answer.status, 403);
  assert.match((await answer.json()).error, /start a validation with a service key/);
});
