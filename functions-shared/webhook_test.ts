/**
 * The webhook handler with a fake database (through its `sql` dependency): every
 * refusal, the order of the checks, replays (in memory and in the database) and the
 * misconfigured secret settings that must refuse everything.
 */

import assert from "node:assert/strict";
import type postgres from "postgres";
import { handleWebhook, RecentWebhookIds, type WebhookDeps } from "./webhook.ts";
import { createWebhookVerifier, signWebhook } from "./webhook_signing.ts";

const secretA = `whsec_${btoa("a".repeat(32))}`;
const secretB = `whsec_${btoa("b".repeat(32))}`;
const URL_ = "http://localhost/mmp-toledo-sync";

/** A stream record of the segments table, as the Lambda forwards it. */
function segment(id: string, seq: string, table = "firespring-backdoor-segments-dev") {
  return {
    eventID: crypto.randomUUID(),
    eventName: "INSERT",
    eventVersion: "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: "us-east-1",
    eventSourceARN: `arn:aws:dynamodb:us-east-1:000000000000:table/${table}/stream/2026-02-06`,
    dynamodb: {
      ApproximateCreationDateTime: Math.floor(Date.now() / 1000),
      Keys: { segment_id: { S: id } },
      NewImage: { segment_id: { S: id }, name: { S: "vip" }, value: { N: "5" } },
      SequenceNumber: seq,
      SizeBytes: 100,
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  };
}

const oneRecord = JSON.stringify({ records: [segment("s-1", "100")] });

/**
 * A database that plays `sync.webhook_deliveries` (ids kept across transactions, undone
 * by a rollback) and `sync.merge_changes` (each change counts as applied).
 */
function fakeDb(options: { unavailableTimes?: number; knownIds?: string[] } = {}) {
  const deliveries = new Set(options.knownIds ?? []);
  let unavailable = options.unavailableTimes ?? 0;
  const db = {
    /** Every statement run, in order, across transactions. */
    statements: [] as string[],
    /** Transactions begun / committed. */
    begun: 0,
    committed: 0,
    /** Changes and dead letters of committed transactions. */
    applied: 0,
    deadLettered: 0,
    deliveries,
    sql: undefined as unknown as postgres.Sql,
  };
  const begin = async (work: (tx: unknown) => Promise<unknown>) => {
    db.begun++;
    if (unavailable > 0) {
      unavailable--;
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
        code: "ECONNREFUSED",
      });
    }
    const inserted: string[] = [];
    let applied = 0;
    let deadLettered = 0;
    const tx = {
      unsafe(query: string, params: unknown[]) {
        db.statements.push(query.replace(/\s+/g, " ").trim());
        if (query.includes("sync.webhook_deliveries")) {
          const id = String(params[0]);
          if (deliveries.has(id)) return Promise.resolve([]);
          deliveries.add(id);
          inserted.push(id);
          return Promise.resolve([{ webhook_id: id }]);
        }
        if (query.includes("sync.merge_changes")) {
          const changes = JSON.parse(String(params[1])) as unknown[];
          applied += changes.length;
          return Promise.resolve([{ applied: changes.length }]);
        }
        if (query.includes("sync.dead_letters")) {
          deadLettered += (JSON.parse(String(params[0])) as unknown[]).length;
          return Promise.resolve([]);
        }
        throw new Error(`the fake database does not know: ${query}`);
      },
      /** A savepoint of the fake runs its work on the same transaction. */
      savepoint(work: (sp: unknown) => Promise<unknown>) {
        return work(tx);
      },
    };
    try {
      const result = await work(tx);
      db.committed++;
      db.applied += applied;
      db.deadLettered += deadLettered;
      return result;
    } catch (error) {
      for (const id of inserted) deliveries.delete(id);
      throw error;
    }
  };
  db.sql = { begin } as unknown as postgres.Sql;
  return db;
}

function deps(
  db: ReturnType<typeof fakeDb>,
  setting: string | undefined = secretA,
  extra: Partial<WebhookDeps> = {},
): WebhookDeps {
  return {
    verifier: createWebhookVerifier(setting),
    recentIds: new RecentWebhookIds(),
    sql: db.sql,
    ...extra,
  };
}

/** A POST of `body` with `headers` (JSON content type unless overridden). */
function post(body: BodyInit | null, headers: Record<string, string> = {}): Request {
  return new Request(URL_, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

/** A request signed with `secret` (the first of a setting). */
function signed(body: string, secret = secretA, id?: string, at?: Date): Request {
  return post(body, signWebhook(secret, body, id, at));
}

/** A body stream that fails the test if anything reads it. */
function unreadableBody(): { stream: ReadableStream<Uint8Array>; wasRead: () => boolean } {
  let read = false;
  // highWaterMark 0: nothing is pulled until someone reads.
  const stream = new ReadableStream<Uint8Array>({
    pull() {
      read = true;
      throw new Error("the body must not be read");
    },
  }, { highWaterMark: 0 });
  return { stream, wasRead: () => read };
}

/** An answer's status and JSON body (`error` on refusals, the counts on a 200). */
async function answer(
  response: Response,
): Promise<{ status: number; body: { error: string; [key: string]: unknown } }> {
  return { status: response.status, body: await response.json() };
}

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
    "insert into sync.webhook_deliveries",
    "select applied from",
    "insert into sync.dead_letters",
  ]);
  assert.ok(db.deliveries.has("msg_good"));
});

Deno.test("each malformed secret setting refuses forged and signed requests with 500", async () => {
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
      const { status, body } = await answer(await handleWebhook(request, deps(db, setting)));
      assert.equal(status, 500, name);
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
  assert.equal(get.status, 500);
  await get.body?.cancel();
  const { stream, wasRead } = unreadableBody();
  const response = await handleWebhook(
    post(stream, signWebhook(secretA, oneRecord)),
    deps(db, `${secretA},whsec_x`),
  );
  assert.equal(response.status, 500);
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
      "streamed too big",
      post(bigStream(), signWebhook(secretA, big)),
      small,
      413,
      /larger than 64/,
    ],
    ["invalid JSON", signed("{not json"), deps(db), 400, /body is not valid JSON/],
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
