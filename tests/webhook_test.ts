/**
 * The mmp-toledo-sync webhook over HTTP: every status of the contract, nothing applied
 * on a refusal, a replayed request refused, duplicates and the direct form. The database
 * going away: tests/database_down_test.ts; dead letters and their replay:
 * tests/webhook_dead_letters_test.ts.
 */

import assert from "node:assert/strict";
import { signWebhook } from "../functions-shared/webhook_signing.ts";
import { callFunction, connectDb, postWebhook, stack } from "./stack_clients.ts";
import { countSegments, segment } from "./webhook_fixtures.ts";

Deno.test("refusals: 405, 415, 413, 401, 400 — each named, nothing applied", async () => {
  const prefix = `refuse-${crypto.randomUUID()}-`;
  const good = JSON.stringify({ records: [segment(`${prefix}1`, "x", "1")] });
  const cases: [string, Promise<Response>, number, RegExp][] = [
    ["GET", callFunction("mmp-toledo-sync", { method: "GET" }), 405, /method not allowed/],
    [
      "text/plain",
      postWebhook(good, { "content-type": "text/plain" }),
      415,
      /content-type must be application\/json, not text\/plain/,
    ],
    [
      "over 6 MiB",
      postWebhook(JSON.stringify({ records: [], pad: "x".repeat(6 * 1024 * 1024) })),
      413,
      /body is larger than 6291456 bytes/,
    ],
    [
      "bad signature",
      postWebhook(good, { "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }),
      401,
      /webhook-signature does not match/,
    ],
    [
      "old timestamp",
      postWebhook(good, { "webhook-timestamp": String(Math.floor(Date.now() / 1000) - 301) }),
      401,
      // How far off, as the function measures it when the request reaches it: more than
      // 300 s, by as much as a loaded machine takes to get the request there.
      /webhook-timestamp \d+ is (30[1-9]|3[1-9]\d|[4-9]\d\d) s in the past; it must be within 300 s of now/,
    ],
    [
      "future timestamp",
      postWebhook(good, { "webhook-timestamp": String(Math.floor(Date.now() / 1000) + 400) }),
      401,
      /webhook-timestamp \d+ is (30[1-9]|3[1-9]\d|400) s in the future/,
    ],
    [
      "timestamp moved after signing",
      postWebhook(good, { "webhook-timestamp": String(Math.floor(Date.now() / 1000) - 60) }),
      401,
      /webhook-signature does not match/,
    ],
    [
      "no signature headers",
      callFunction("mmp-toledo-sync", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: good,
      }),
      401,
      /missing header webhook-id, webhook-timestamp, webhook-signature/,
    ],
    ["invalid JSON", postWebhook("{not json"), 400, /body is not valid JSON/],
    [
      "no sequence number",
      postWebhook(JSON.stringify({
        records: [{ ...segment(`${prefix}2`, "x", "2"), dynamodb: { Keys: {} } }],
      })),
      400,
      /malformed envelope at records\.0\.dynamodb\.SequenceNumber/,
    ],
    [
      "not DynamoDB JSON",
      postWebhook(JSON.stringify({
        records: [segment(`${prefix}3`, "x", "3", 5)],
      })),
      400,
      /malformed envelope at records\.0\.dynamodb\.NewImage\.value: expected a DynamoDB attribute value/,
    ],
    [
      "bad direct action",
      postWebhook(JSON.stringify({ table: "firespring_segments", action: "MERGE", data: {} })),
      400,
      /malformed envelope at action/,
    ],
  ];
  for (const [name, pending, status, message] of cases) {
    const response = await pending;
    assert.equal(response.status, status, name);
    assert.match((await response.json()).error, message, name);
  }
  assert.equal(await countSegments(prefix), 0, "nothing was applied");
});

Deno.test("a replayed signed request answers 409 naming its id, and applies nothing", async () => {
  const id = `replayed-${crypto.randomUUID()}`;
  const body = JSON.stringify({
    table: "mmp_toledo_leads",
    action: "UPSERT",
    data: { id, name: "Ada", email: "ada@example.com" },
  });
  const headers = signWebhook(stack.SYNC_WEBHOOK_SECRET, body);
  const first = await postWebhook(body, headers);
  assert.deepEqual(await first.json(), { received: 1, applied: 1, skipped: 0, deadLettered: 0 });
  const sql = connectDb();
  try {
    // Removed behind the webhook's back: a replay that got through would write it again.
    await sql`delete from public.mmp_toledo_leads where lead_id = ${id}`;
    const replay = await postWebhook(body, headers);
    assert.equal(replay.status, 409);
    assert.match(
      (await replay.json()).error,
      new RegExp(`webhook-id ${headers["webhook-id"]} was already accepted`),
    );
    const rows = await sql`select 1 from public.mmp_toledo_leads where lead_id = ${id}`;
    assert.equal(rows.length, 0, "the replay applied nothing");
    const [recorded] = await sql`select count(*)::int as n from sync.webhook_deliveries
                                 where webhook_id = ${headers["webhook-id"]}`;
    assert.equal(recorded.n, 1);
  } finally {
    await sql.end();
  }
});

Deno.test("a lock held past the batch's 20 s wait: 503 with Retry-After naming it, nothing applied; the same request applies once it is free", async () => {
  // Each of the two paths (the one statement; savepoints, for a batch with a dead letter)
  // meets a lock another transaction holds: its own webhook-id, being recorded by a
  // transaction left open. (A row or the table's merge lock would be waited for the same
  // way, but would hold up other files' merges of the table meanwhile.)
  const prefix = `lockwait-${crypto.randomUUID().slice(0, 8)}-`;
  const atOnce = JSON.stringify({ records: [segment(`${prefix}1`, "one", "1")] });
  const careful = JSON.stringify({
    records: [segment(`${prefix}2`, "two", "2"), segment(`${prefix}bad`, "x", "3", { S: "many" })],
  });
  const headers = [
    signWebhook(stack.SYNC_WEBHOOK_SECRET, atOnce),
    signWebhook(stack.SYNC_WEBHOOK_SECRET, careful),
  ];
  const ids = headers.map((h) => h["webhook-id"]);
  const sql = connectDb();
  try {
    let held!: () => void;
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    const holder = sql.begin(async (tx) => {
      await tx`insert into sync.webhook_deliveries (webhook_id, received_at)
               select unnest(${ids}::text[]), now()`;
      held();
      await released;
      throw new Error("rolled back on purpose");
    }).catch((error) => assert.match(String(error), /rolled back on purpose/));
    await holding;
    const refused = await Promise.all([
      postWebhook(atOnce, headers[0]),
      postWebhook(careful, headers[1]),
    ]);
    release();
    await holder;
    for (const response of refused) {
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "5");
      assert.match(
        (await response.json()).error,
        /^the database could not apply the batch now \(55P03: a lock the batch into firespring_segments needs was held by another transaction past the webhook's lock wait, .*\); nothing was applied, retry later$/,
      );
    }
    assert.equal(await countSegments(prefix), 0, "nothing applied");
    const [letters] = await sql`select count(*)::int as n from sync.dead_letters
                                where record::text like ${"%" + prefix + "bad%"}`;
    assert.equal(letters.n, 0, "no dead letter kept either");
    // The sender's retry, the same id: applied, as if the first had never come.
    const retried = [await postWebhook(atOnce, headers[0]), await postWebhook(careful, headers[1])];
    assert.deepEqual(await retried[0].json(), {
      received: 1,
      applied: 1,
      skipped: 0,
      deadLettered: 0,
    });
    assert.deepEqual(await retried[1].json(), {
      received: 2,
      applied: 1,
      skipped: 0,
      deadLettered: 1,
    });
    assert.equal(await countSegments(prefix), 2);
  } finally {
    await sql.end();
  }
});

Deno.test("duplicated and reordered deliveries change nothing", async () => {
  const prefix = `dup-${crypto.randomUUID()}-`;
  const newer = segment(`${prefix}1`, "newer", "200");
  const older = segment(`${prefix}1`, "older", "150");
  const first = await postWebhook(JSON.stringify({ records: [newer] }));
  assert.deepEqual(await first.json(), { received: 1, applied: 1, skipped: 0, deadLettered: 0 });
  const again = await postWebhook(JSON.stringify({ records: [newer, older] }));
  assert.deepEqual(await again.json(), { received: 2, applied: 0, skipped: 2, deadLettered: 0 });
  const sql = connectDb();
  try {
    const [row] = await sql`select segment_name, sync_sequence::text as seq
                            from public.firespring_segments where segment_id = ${prefix + "1"}`;
    assert.deepEqual({ ...row }, { segment_name: "newer", seq: "200" });
  } finally {
    await sql.end();
  }
});

Deno.test("the direct form upserts and deletes by the source attribute names", async () => {
  const id = `direct-${crypto.randomUUID()}`;
  // Written by hand: JSON.stringify would round the 23-digit number.
  const upsert = await postWebhook(
    `{"table": "mmp_toledo_leads", "action": "UPSERT", "data": {"id": "${id}", "name": "Ada", ` +
      `"email": "ada@example.com", "_version": 12345678901234567890123}}`,
  );
  assert.deepEqual(await upsert.json(), { received: 1, applied: 1, skipped: 0, deadLettered: 0 });
  const sql = connectDb();
  try {
    const [lead] = await sql`select name, lead_data::text as data, sync_source
                             from public.mmp_toledo_leads where lead_id = ${id}`;
    assert.equal(lead.name, "Ada");
    assert.equal(lead.data, '{"_version": 12345678901234567890123}');
    assert.equal(lead.sync_source, "direct");
    // A direct change is a read "now"; a second one within the same second keeps the first.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const remove = await postWebhook(JSON.stringify({
      table: "mmp_toledo_leads",
      action: "DELETE",
      data: { id },
    }));
    assert.deepEqual(await remove.json(), { received: 1, applied: 1, skipped: 0, deadLettered: 0 });
    const left = await sql`select 1 from public.mmp_toledo_leads where lead_id = ${id}`;
    assert.equal(left.length, 0);
    const unknown = await postWebhook(
      JSON.stringify({ table: "leads", action: "UPSERT", data: { id } }),
    );
    assert.deepEqual(await unknown.json(), {
      received: 1,
      applied: 0,
      skipped: 0,
      deadLettered: 1,
    });
  } finally {
    await sql.end();
  }
});

Deno.test("a direct change with a number past Postgres's numeric is dead-lettered, its record kept as text", async () => {
  const id = `huge-${crypto.randomUUID()}`;
  // Written by hand: JSON.stringify cannot write it (a double would be Infinity).
  const body = `{"table": "mmp_toledo_leads", "action": "UPSERT", "data": {"id": "${id}", ` +
    `"score": 1e200000}}`;
  const response = await postWebhook(body);
  assert.equal(response.status, 200, "data never answers 500: the Lambda would retry it for ever");
  assert.deepEqual(await response.json(), { received: 1, applied: 0, skipped: 0, deadLettered: 1 });
  const sql = connectDb();
  try {
    const letters = await sql`select record, record_text, reason from sync.dead_letters
                              where record_text like ${`%${id}%`}`;
    assert.equal(letters.length, 1);
    assert.equal(letters[0].record, null);
    assert.match(letters[0].record_text, /"score":1e200000/);
    assert.match(letters[0].reason, /score/);
  } finally {
    await sql.end();
  }
});

Deno.test("many shards of one table at once: every batch lands, each key holds its newest change", async () => {
  // A table with many shards has as many Lambda invocations in flight at once, each
  // with its own keys, all merging into one table (its merge lock taken per batch). Each
  // shard's batches follow one another, as the event source mapping sends them; a 503 is
  // sent again after its Retry-After, as the Lambda's retry would.
  const prefix = `shards-${crypto.randomUUID().slice(0, 8)}-`;
  const SHARDS = 12;
  const BATCHES = 6;
  const shard = async (s: number) => {
    let applied = 0;
    for (let b = 0; b < BATCHES; b++) {
      const records = Array.from({ length: 10 }, (_, i) => {
        const n = b * 10 + i;
        return segment(`${prefix}${s}-${n % 5}`, `s${s}-v${n}`, String(1_000_000 + s * 1_000 + n));
      });
      const body = JSON.stringify({ records });
      for (let attempt = 0;; attempt++) {
        const response = await postWebhook(body);
        if (response.status === 503 && attempt < 10) {
          await response.body?.cancel();
          const wait = Number(response.headers.get("retry-after") ?? "1");
          await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 2) * 1000));
          continue;
        }
        const answer = await response.json();
        assert.equal(response.status, 200, `shard ${s} batch ${b}: ${JSON.stringify(answer)}`);
        assert.equal(answer.deadLettered, 0);
        applied += answer.applied;
        break;
      }
    }
    return applied;
  };
  const applied = await Promise.all(Array.from({ length: SHARDS }, (_, s) => shard(s)));
  assert.ok(applied.every((n) => n > 0 && n <= BATCHES * 10), JSON.stringify(applied));
  const sql = connectDb();
  try {
    const rows = await sql`select segment_id, segment_name, sync_sequence::text as seq
                           from public.firespring_segments where segment_id like ${prefix + "%"}
                           order by segment_id`;
    assert.equal(rows.length, SHARDS * 5, "every key of every shard");
    for (const row of rows) {
      const [, s, k] = /-(\d+)-(\d+)$/.exec(row.segment_id)!;
      const newest = (BATCHES - 1) * 10 + 5 + Number(k);
      assert.equal(row.segment_name, `s${s}-v${newest}`, row.segment_id);
      assert.equal(row.seq, String(1_000_000 + Number(s) * 1_000 + newest));
    }
    const [letters] = await sql`select count(*)::int as n from sync.dead_letters
                                where record::text like ${"%" + prefix + "%"}`;
    assert.equal(letters.n, 0);
  } finally {
    await sql.end();
  }
});
