/**
 * The webhook handler with a fake database (webhook_fakes.ts): a good batch, and the
 * refusals of what is sent (method, content type, size, body). Authentication is in
 * webhook_auth_test.ts, replays in webhook_replay_test.ts.
 */

import assert from "node:assert/strict";
import { handleWebhook, type WebhookDeps } from "./webhook.ts";
import { signWebhook } from "./webhook_signing.ts";
import {
  answer,
  deps,
  fakeDb,
  oneRecord,
  post,
  secretA,
  segment,
  signed,
  unreadableBody,
  URL_,
} from "./webhook_fakes.ts";

Deno.test("a good batch answers 200 with its counts; the id is recorded first, in its transaction", async () => {
  const db = fakeDb();
  const body = JSON.stringify({
    records: [segment("s-1", "100"), segment("s-2", "101", "no-such-table")],
  });
  const { status, body: counts } = await answer(
    await handleWebhook(signed(body, secretA, "msg_good"), deps(db)),
  );
  assert.equal(status, 200);
  assert.deepEqual(counts, { received: 2, applied: 1, skipped: 0, deadLettered: 1 });
  assert.equal(db.committed, 1);
  assert.deepEqual(db.statements.map((s) => s.split(" ").slice(0, 3).join(" ")), [
    "select sync.begin_webhook_delivery($1) as",
    "select applied from",
    "insert into sync.dead_letters",
    "select sync.note_stream_records($1::text::jsonb) as",
  ]);
  assert.ok(db.deliveries.has("msg_good"));
});

Deno.test("refusals 405, 415, 413, 400 each say why, and nothing is applied", async () => {
  const db = fakeDb();
  const small = deps(db, secretA, { maxBodyBytes: 64 });
  const big = JSON.stringify({ records: [], pad: "x".repeat(100) });
  const bigStream = () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
  // A body that goes on past the limit and never ends: reading it whole never returns.
  const endlessStream = () =>
    new ReadableStream<Uint8Array>({
      start: (controller) => controller.enqueue(new TextEncoder().encode(big)),
      pull: () => new Promise<void>(() => {}),
    });
  const latin1 = new Uint8Array([
    ...new TextEncoder().encode(
      '{"table":"mmp_toledo_leads","action":"UPSERT","data":{"name":"Ren',
    ),
    0xe9,
    ...new TextEncoder().encode('e"}}'),
  ]);
  const cases: [string, Request, WebhookDeps, number, RegExp][] = [
    ["GET", new Request(URL_), deps(db), 405, /method not allowed: use POST/],
    [
      "text/plain",
      post(oneRecord, { ...signWebhook(secretA, oneRecord), "content-type": "text/plain" }),
      deps(db),
      415,
      /content-type must be application\/json, not text\/plain/,
    ],
    [
      "application/jsonx",
      post(oneRecord, { ...signWebhook(secretA, oneRecord), "content-type": "application/jsonx" }),
      deps(db),
      415,
      /content-type must be application\/json, not application\/jsonx/,
    ],
    [
      "no content-type",
      new Request(URL_, { method: "POST", body: oneRecord }),
      deps(db),
      415,
      /content-type must be application\/json, not/,
    ],
    [
      "declared too big",
      post(big, { ...signWebhook(secretA, big), "content-length": String(big.length) }),
      small,
      413,
      /body is larger than 64 bytes/,
    ],
    [
      "declared small, sent too big",
      post(big, { ...signWebhook(secretA, big), "content-length": "10" }),
      small,
      413,
      /body is larger than 64 bytes/,
    ],
    [
      "a length that is no number: counted as it streams, not read whole first",
      post(endlessStream(), { ...signWebhook(secretA, big), "content-length": "abc" }),
      small,
      413,
      /body is larger than 64 bytes/,
    ],
    [
      "streamed too big",
      post(bigStream(), signWebhook(secretA, big)),
      small,
      413,
      /larger than 64/,
    ],
    ["invalid JSON", signed("{not json"), deps(db), 400, /body is not valid JSON/],
    [
      "not UTF-8 (a Latin-1 é), not stored as U+FFFD",
      post(latin1, signWebhook(secretA, latin1)),
      deps(db),
      400,
      /^body is not valid UTF-8$/,
    ],
    [
      "invalid JSON, the body not repeated",
      signed("ssn-123-45-6789"),
      deps(db),
      400,
      /^body is not valid JSON: Unexpected token \(quoted text\)$/,
    ],
    [
      "invalid JSON across lines, the body not repeated",
      signed("ssn-123\n-45-6789"),
      deps(db),
      400,
      /^body is not valid JSON: (?![\s\S]*(ssn-123|6789))/,
    ],
    [
      "invalid JSON with quotes of its own, the body not repeated",
      signed('["jane@x.com",x]'),
      deps(db),
      400,
      /^body is not valid JSON: (?!.*jane@x\.com)/,
    ],
    [
      "no sequence number",
      signed(JSON.stringify({ records: [{ ...segment("s-3", "1"), dynamodb: { Keys: {} } }] })),
      deps(db),
      400,
      /malformed envelope at records\.0\.dynamodb\.SequenceNumber/,
    ],
    [
      "bad direct action",
      signed(JSON.stringify({ table: "firespring_segments", action: "MERGE", data: {} })),
      deps(db),
      400,
      /malformed envelope at action/,
    ],
  ];
  for (const [name, request, caseDeps, status, message] of cases) {
    const response = await handleWebhook(request, caseDeps);
    assert.equal(response.status, status, name);
    assert.match((await response.json()).error, message, name);
  }
  assert.equal(db.begun, 0, "the database was not touched");
});

Deno.test("a batch's dead letters are logged once it committed: three lines, then how many more", async () => {
  const db = fakeDb();
  const body = JSON.stringify({
    records: [0, 1, 2, 3, 4].map((i) => segment(`s-${i}`, String(200 + i), "no-such-table")),
  });
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => warned.push(line);
  try {
    const { status, body: counts } = await answer(
      await handleWebhook(signed(body, secretA, "msg_poison"), deps(db)),
    );
    assert.equal(status, 200);
    assert.equal(counts.deadLettered, 5);
  } finally {
    console.warn = warn;
  }
  assert.equal(warned.length, 4, warned.join("\n"));
  assert.match(warned[0], /^dead letter: .*no-such-table.* \(event /);
  assert.match(
    warned[3],
    /^…and 2 more dead letters in this batch \(.* 2; sync\.dead_letters holds each/,
  );
});

Deno.test("a change Postgres refuses is dead-lettered, counted and logged once committed", async () => {
  const refusal = Object.assign(new Error('invalid input syntax for type integer: "x"'), {
    code: "22P02",
  });
  const db = fakeDb({ mergeError: refusal });
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => warned.push(line);
  try {
    const { status, body: counts } = await answer(
      await handleWebhook(signed(oneRecord, secretA, "msg_refused"), deps(db)),
    );
    assert.equal(status, 200);
    assert.deepEqual(counts, { received: 1, applied: 0, skipped: 0, deadLettered: 1 });
  } finally {
    console.warn = warn;
  }
  assert.equal(db.deadLettered, 1);
  assert.equal(warned.length, 1, warned.join("\n"));
  assert.match(
    warned[0],
    /^dead letter: firespring_segments \[segment_id="s-1"\]: Postgres refused the change: .*\(SQLSTATE 22P02\) \(event /,
  );
});

Deno.test("a change refused for a not-null or check constraint is logged without its row", async () => {
  // Postgres's detail for these lists every column of the row; the log is read by every
  // member of the project (a review's finding: the savepoint path kept it).
  const refusal = Object.assign(
    new Error('new row for relation "firespring_segments" violates check constraint "c"'),
    { code: "23514", detail: "Failing row contains (s-1, alice@example.com, 555-0100)." },
  );
  const db = fakeDb({ mergeError: refusal });
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (line: string) => warned.push(line);
  try {
    const { status } = await answer(
      await handleWebhook(signed(oneRecord, secretA, "msg_row_in_log"), deps(db)),
    );
    assert.equal(status, 200);
  } finally {
    console.warn = warn;
  }
  assert.equal(warned.length, 1, warned.join("\n"));
  assert.match(warned[0], /violates check constraint "c".*\(SQLSTATE 23514\)/);
  assert.doesNotMatch(warned[0], /Failing row|alice/);
});

Deno.test("a body declared larger than the limit is refused 413 before it is read", async () => {
  const db = fakeDb();
  const { stream, wasRead } = unreadableBody();
  const headers = { ...signWebhook(secretA, oneRecord), "content-length": "7000000" };
  const { status, body } = await answer(await handleWebhook(post(stream, headers), deps(db)));
  assert.equal(status, 413);
  assert.equal(body.error, `body is larger than ${6 * 1024 * 1024} bytes`);
  assert.equal(wasRead(), false, "the body was not read");
  assert.equal(db.begun, 0);
});

Deno.test("a streamed body of exactly the limit is read; one byte more is refused 413", async () => {
  const stream = (text: string) => {
    const bytes = new TextEncoder().encode(text);
    return new ReadableStream<Uint8Array>({
      start(controller) {
        // In two chunks: the size is counted across them.
        controller.enqueue(bytes.slice(0, 10));
        controller.enqueue(bytes.slice(10));
        controller.close();
      },
    });
  };
  const limit = new TextEncoder().encode(oneRecord).length;
  const request = () => post(stream(oneRecord), signWebhook(secretA, oneRecord));
  const db = fakeDb();
  const fits = await answer(
    await handleWebhook(request(), deps(db, secretA, { maxBodyBytes: limit })),
  );
  assert.equal(fits.status, 200);
  assert.equal(fits.body.applied, 1);
  const over = await answer(
    await handleWebhook(request(), deps(fakeDb(), secretA, { maxBodyBytes: limit - 1 })),
  );
  assert.equal(over.status, 413);
  assert.equal(over.body.error, `body is larger than ${limit - 1} bytes`);
});

Deno.test("application/json with parameters is JSON", async () => {
  const headers = {
    ...signWebhook(secretA, oneRecord),
    "content-type": "Application/JSON; charset=utf-8",
  };
  const { status } = await answer(await handleWebhook(post(oneRecord, headers), deps(fakeDb())));
  assert.equal(status, 200);
});
