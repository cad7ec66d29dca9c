/**
 * The webhook handler's replays, with a fake database (webhook_fakes.ts): a webhook-id
 * seen again answers 409, from the isolate's memory or from the database, and a retry
 * after a rolled-back 503 applies.
 */

import assert from "node:assert/strict";
import { handleWebhook } from "./webhook.ts";
import { RecentWebhookIds } from "./webhook_replays.ts";
import { signWebhook } from "./webhook_signing.ts";
import { answer, deps, fakeDb, oneRecord, post, secretA, signed } from "./webhook_fakes.ts";

Deno.test("a replayed webhook-id answers 409 from the isolate's memory", async () => {
  const db = fakeDb();
  const shared = deps(db);
  const headers = signWebhook(secretA, oneRecord, "msg_replayed");
  const first = await answer(await handleWebhook(post(oneRecord, headers), shared));
  assert.equal(first.status, 200);
  const beganBefore = db.begun;
  const replay = await answer(await handleWebhook(post(oneRecord, headers), shared));
  assert.equal(replay.status, 409);
  assert.match(
    replay.body.error,
    /webhook-id msg_replayed was already accepted within the last 300 s/,
  );
  assert.match(replay.body.error, /nothing was applied/);
  assert.equal(db.begun, beganBefore, "refused without the database");
  assert.equal(db.applied, 1, "applied once");
  // Without a good signature the id means nothing: 401, not 409.
  const forged = {
    ...headers,
    "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
  };
  const unsigned = await answer(await handleWebhook(post(oneRecord, forged), shared));
  assert.equal(unsigned.status, 401);
});

Deno.test("a webhook-id the database already holds answers 409 and rolls back", async () => {
  // Another isolate accepted it: this one's memory does not know it.
  const db = fakeDb({ knownIds: ["msg_elsewhere"] });
  const shared = deps(db);
  const request = () => signed(oneRecord, secretA, "msg_elsewhere");
  const { status, body } = await answer(await handleWebhook(request(), shared));
  assert.equal(status, 409);
  assert.match(body.error, /webhook-id msg_elsewhere was already accepted/);
  assert.equal(db.committed, 0, "rolled back");
  assert.equal(db.applied, 0);
  assert.equal(db.statements.length, 1, "nothing after the insert ran");
  // Now the isolate remembers it too: the next replay does not reach the database.
  const again = await handleWebhook(request(), shared);
  assert.equal(again.status, 409);
  await again.body?.cancel();
  assert.equal(db.begun, 1);
});

Deno.test("after a 503 (rolled back) the sender's retry with the same id applies", async () => {
  const db = fakeDb({ unavailableTimes: 1 });
  const shared = deps(db);
  const headers = signWebhook(secretA, oneRecord, "msg_retry");
  const down = await handleWebhook(post(oneRecord, headers), shared);
  assert.equal(down.status, 503);
  assert.equal(down.headers.get("retry-after"), "5");
  assert.match((await down.json()).error, /database is unavailable; nothing was applied/);
  const retried = await answer(await handleWebhook(post(oneRecord, headers), shared));
  assert.equal(retried.status, 200);
  assert.deepEqual(retried.body, { received: 1, applied: 1, skipped: 0, deadLettered: 0 });
});

Deno.test("a connection lost after the commit is a 503 that says the batch may have been applied", async () => {
  const db = fakeDb({ lostAfterCommitTimes: 1 });
  const shared = deps(db);
  const headers = signWebhook(secretA, oneRecord, "msg_lost");
  const lost = await answer(await handleWebhook(post(oneRecord, headers), shared));
  assert.equal(lost.status, 503);
  assert.equal(
    lost.body.error,
    "the database is unavailable; the connection was lost during the batch, which may or " +
      "may not have been applied: send it again with the same webhook-id (a 409 then says it was)",
  );
  assert.equal(db.committed, 1, "it was");
  const again = await answer(await handleWebhook(post(oneRecord, headers), shared));
  assert.equal(again.status, 409);
  assert.equal(db.applied, 1, "applied once");
  // A connection never made: nothing was sent, so nothing was applied.
  const refused = await answer(
    await handleWebhook(
      signed(oneRecord, secretA, "msg_refused"),
      deps(fakeDb({ unavailableTimes: 1 })),
    ),
  );
  assert.equal(
    refused.body.error,
    "the database is unavailable; nothing was applied, retry later",
  );
});

Deno.test("a statement that timed out or lost to another is a 503 with Retry-After, not a 500", async () => {
  for (const code of ["57014", "55P03", "40001", "40P01", "53200"]) {
    const db = fakeDb({
      mergeError: Object.assign(new Error("canceling statement due to statement timeout"), {
        code,
      }),
    });
    const { status, body } = await answer(
      await handleWebhook(signed(oneRecord, secretA, `msg_${code}`), deps(db)),
    );
    assert.equal(status, 503, code);
    assert.match(
      body.error,
      new RegExp(
        `could not apply the batch now \\(${code}(\\)|: .*\\)\\)); nothing was applied, retry later`,
      ),
    );
    assert.equal(db.committed, 0, "rolled back");
  }
  // A lock held past the webhook's wait names the table and what may hold it.
  const db55 = fakeDb({
    mergeError: Object.assign(new Error("canceling statement due to lock timeout"), {
      code: "55P03",
    }),
  });
  const locked = await answer(
    await handleWebhook(signed(oneRecord, secretA, "msg_locked"), deps(db55)),
  );
  assert.equal(locked.status, 503);
  assert.equal(
    locked.body.error,
    "the database could not apply the batch now (55P03: a lock the batch into " +
      "firespring_segments needs was held by another transaction past the webhook's lock " +
      "wait, such as the table's merge lock (an export's chunk, a backfill's sweep) or one " +
      "of its rows (an open transaction)); nothing was applied, retry later",
  );
  // A refusal that will not pass by itself stays a 500.
  const db = fakeDb({
    mergeError: Object.assign(new Error("function does not exist"), { code: "42883" }),
  });
  const broken = await answer(
    await handleWebhook(signed(oneRecord, secretA, "msg_broken"), deps(db)),
  );
  assert.equal(broken.status, 500);
});

Deno.test("a database in read-only mode (a nearly full disk) is a 503 saying so, retried a minute apart", async () => {
  const db = fakeDb({
    mergeError: Object.assign(new Error("cannot execute INSERT in a read-only transaction"), {
      code: "25006",
    }),
  });
  const lines: string[] = [];
  const response = await handleWebhook(
    signed(oneRecord, secretA, "msg_read_only"),
    deps(db, secretA, { log: (line) => lines.push(line) }),
  );
  const { status, body } = await answer(response.clone());
  assert.equal(status, 503, "not a 500, which the Lambda would take for the body's fault");
  assert.equal(response.headers.get("retry-after"), "60");
  assert.equal(response.headers.get("x-sync-refusal"), "read-only");
  assert.match(body.error, /^the database is read-only \(25006; .*disk is nearly full/);
  assert.match(body.error, /nothing was applied, retry later$/);
  assert.equal(db.committed, 0, "rolled back");
  assert.deepEqual(
    lines.map((l) => l.startsWith("the database is read-only (25006; ")),
    [true],
    "one line, to the isolate's window",
  );
});

Deno.test("connection settings the database refuses are a 503 naming SYNC_DB_URL, retried as it is", async () => {
  const refusals = [
    Object.assign(new Error('password authentication failed for user "postgres"'), {
      code: "28P01",
    }),
    Object.assign(new Error('database "postgress" does not exist'), { code: "3D000" }),
    new Error("(ENOTFOUND) tenant/user postgres.abcdefghijklmnopqrst not found"),
    Object.assign(new Error("self-signed certificate in certificate chain"), {
      code: "SELF_SIGNED_CERT_IN_CHAIN",
    }),
  ];
  for (const [i, mergeError] of refusals.entries()) {
    const db = fakeDb({ mergeError });
    const response = await handleWebhook(signed(oneRecord, secretA, `msg_conf_${i}`), deps(db));
    assert.equal(response.headers.get("x-sync-refusal"), "misconfigured", mergeError.message);
    assert.equal(response.headers.get("retry-after"), "60");
    const { status, body } = await answer(response);
    assert.equal(status, 503, mergeError.message);
    assert.match(body.error, /check SYNC_DB_URL .*; nothing was applied$/);
    assert.ok(!body.error.includes("postgress"), "quoted text is left out");
  }
  // The pooler's own unavailability stays "unavailable", retried after 5 s.
  const db = fakeDb({ mergeError: new Error("(EAUTHQUERY) auth_query connection failed") });
  const down = await handleWebhook(signed(oneRecord, secretA, "msg_conf_down"), deps(db));
  assert.equal(down.status, 503);
  assert.equal(down.headers.get("retry-after"), "5");
  await down.body?.cancel();
});

Deno.test("after the cutover a batch is refused 503, cut over, and nothing is applied", async () => {
  const db = fakeDb({
    mergeError: Object.assign(
      new Error(
        "the sync is cut over (sync.settings write_back is cutover): Supabase is the source of truth, so nothing from DynamoDB is merged into firespring_segments",
      ),
      { code: "SY005" },
    ),
  });
  const response = await handleWebhook(signed(oneRecord, secretA, "msg_cut"), deps(db));
  assert.equal(response.headers.get("x-sync-refusal"), "cut-over");
  const { status, body } = await answer(response);
  assert.equal(status, 503);
  assert.match(body.error, /^the sync is cut over .*firespring_segments; nothing was applied$/);
  assert.equal(db.committed, 0);
  // A person's direct request: no retry would pass, so 409, saying where to edit instead.
  const direct = JSON.stringify({
    table: "firespring_segments",
    action: "UPSERT",
    data: { segment_id: "d" },
  });
  const refused = await answer(
    await handleWebhook(signed(direct, secretA, "msg_cut_direct"), deps(db)),
  );
  assert.equal(refused.status, 409);
  assert.match(refused.body.error, /nothing was applied: edit the row in Supabase instead$/);
});

Deno.test("RecentWebhookIds holds an id until its timestamp leaves the window", () => {
  const ids = new RecentWebhookIds();
  const t = 1_700_000_000;
  ids.remember("a", t, t * 1000);
  assert.equal(ids.has("a", t * 1000), true);
  assert.equal(ids.has("a", (t + 299) * 1000), true);
  assert.equal(ids.has("a", (t + 300) * 1000), false);
  assert.equal(ids.has("b", t * 1000), false);
  ids.remember("b", t + 400, (t + 400) * 1000);
  assert.equal(ids.size, 1, "the expired id was pruned");
});
