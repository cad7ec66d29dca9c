/**
 * The mmp-toledo-sync webhook's dead letters over HTTP: a batch applies what maps and
 * dead-letters the rest, whole, with the reason; a dead letter is replayed once its record
 * is fixed (docs/sync-semantics.md, "Dead letters").
 */

import assert from "node:assert/strict";
import {
  callFunction,
  connectDb,
  postWebhook,
  serviceRoleHeaders,
  streamRecord,
} from "./stack_clients.ts";
import { countSegments, segment, SEGMENTS } from "./webhook_fixtures.ts";
import { recordDeadLetters } from "../functions-shared/dead_letter_writer.ts";
import { mapScannedItem } from "../functions-shared/record_mapping.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";

Deno.test("a batch applies what maps and dead-letters the rest, whole, with the reason", async () => {
  const prefix = `mixed-${crypto.randomUUID()}-`;
  const body = JSON.stringify({
    records: [
      segment(`${prefix}ok`, "vip", "10"),
      segment(`${prefix}bad`, "vip", "11", { S: "many" }),
      streamRecord("no-such-table", "INSERT", { id: { S: "x" } }, { id: { S: "x" } }, "12"),
      streamRecord(SEGMENTS, "INSERT", { segment_id: { S: `${prefix}keys` } }, undefined, "13"),
    ],
  });
  const response = await postWebhook(body);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { received: 4, applied: 1, skipped: 0, deadLettered: 3 });
  assert.equal(await countSegments(prefix), 1);
  const sql = connectDb();
  try {
    const letters = await sql`
      select reason, record -> 'eventSourceARN' is not null as whole from sync.dead_letters
      where record::text like ${"%" + prefix + "%"} or record::text like '%no-such-table%'
      order by id desc limit 3`;
    const reasons = letters.map((l) => l.reason);
    const expected = [
      /firespring-backdoor-segments-dev \[segment_id=".*bad"\]: attribute value: expected a number \(N\), got S "many"/,
      /firespring-backdoor-segments-dev \[segment_id="[^"]+"\]: INSERT record .* has no NewImage/,
      /no target table is registered for DynamoDB table no-such-table/,
    ];
    for (const reason of expected) {
      assert.ok(reasons.some((r) => reason.test(r)), `a dead letter says ${reason}`);
    }
    assert.ok(letters.every((l) => l.whole), "each record is kept whole");
  } finally {
    await sql.end();
  }
});

Deno.test("an item whose keys are too long for Postgres to index is dead-lettered, not a 500", async () => {
  // DynamoDB allows 2,048 bytes of partition key and 1,024 of sort key; a btree entry
  // holds 2,704. Random base64 does not compress.
  const random = (bytes: number) => {
    const chunks = [];
    for (let i = 0; i < bytes; i += 512) chunks.push(crypto.getRandomValues(new Uint8Array(512)));
    return btoa(String.fromCharCode(...chunks.flatMap((c) => [...c]))).slice(0, bytes);
  };
  const marker = `long-${crypto.randomUUID()}-`;
  const pk = (marker + random(2048)).slice(0, 2048);
  const sk = random(1024);
  const response = await postWebhook(JSON.stringify({
    table: "toledo_dashboard",
    action: "UPSERT",
    data: { pk, sk, metrics: { views: 1 } },
  }));
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { received: 1, applied: 0, skipped: 0, deadLettered: 1 });
  const sql = connectDb();
  try {
    const [letter] = await sql`select reason, row_key ->> 'sk' as sk from sync.dead_letters
                               where target_table = 'toledo_dashboard'
                                 and row_key ->> 'pk' = ${pk}`;
    assert.equal(letter.sk, sk, "named by its whole key");
    assert.match(letter.reason, /index row size|54000/);
  } finally {
    await sql.end();
  }
});

Deno.test("a direct request sent again after its letter was fixed and replayed opens that letter again", async () => {
  const id = `direct-again-${crypto.randomUUID()}`;
  const bad = JSON.stringify({
    table: "firespring_segments",
    action: "UPSERT",
    data: { segment_id: id, value: "twelve" },
  });
  await (await postWebhook(bad)).body?.cancel();
  const sql = connectDb();
  try {
    const letterOf = async () =>
      (await sql`select id, replayed_at, times_seen, record -> 'data' ->> 'value' as value
                 from sync.dead_letters where record -> 'data' ->> 'segment_id' = ${id}`)[0];
    const first = await letterOf();
    // The admin corrects it, and it is replayed.
    await sql`update sync.dead_letters set record = jsonb_set(record, '{data,value}', '12')
              where id = ${first.id}`;
    const replayed = await callFunction("mmp-toledo-sync/replay-dead-letters", {
      method: "POST",
      headers: serviceRoleHeaders(),
      body: JSON.stringify({ ids: [Number(first.id)] }),
    });
    assert.equal((await replayed.json()).replayed, 1);
    assert.ok((await letterOf()).replayed_at !== null, "closed");
    // The same bad request, sent again: a change of its own, made now.
    const again = await postWebhook(bad);
    assert.deepEqual(await again.json(), { received: 1, applied: 0, skipped: 0, deadLettered: 1 });
    const reopened = await letterOf();
    assert.equal(reopened.id, first.id, "the same letter");
    assert.equal(reopened.replayed_at, null, "open again");
    assert.equal(reopened.value, "twelve", "holding the request as sent");
    assert.equal(reopened.times_seen, 2);
  } finally {
    await sql.end();
  }
});

Deno.test("a dead letter is replayed once its record is fixed", async () => {
  const id = `replay-${crypto.randomUUID()}`;
  await (await postWebhook(JSON.stringify({
    records: [segment(id, "vip", "300", { S: "twelve" })],
  }))).body?.cancel();
  const sql = connectDb();
  try {
    const [letter] = await sql`select id from sync.dead_letters
                               where record::text like ${"%" + id + "%"} and replayed_at is null`;
    const replay = (body: unknown) =>
      callFunction("mmp-toledo-sync/replay-dead-letters", {
        method: "POST",
        headers: serviceRoleHeaders(),
        body: JSON.stringify(body),
      });
    const refused = await callFunction("mmp-toledo-sync/replay-dead-letters", {
      method: "POST",
      body: "{}",
    });
    assert.equal(refused.status, 401);
    await refused.body?.cancel();

    const stillBad = await (await replay({ ids: [Number(letter.id)] })).json();
    assert.equal(stillBad.replayed, 0);
    assert.match(stillBad.stillFailing[0].reason, /got S "twelve"/);

    // The admin fixes the record in place, then replays it.
    await sql`update sync.dead_letters
              set record = jsonb_set(record, '{dynamodb,NewImage,value}', '{"N": "12"}')
              where id = ${letter.id}`;
    const fixed = await (await replay({ ids: [Number(letter.id)] })).json();
    assert.deepEqual(fixed, {
      considered: 1,
      replayed: 1,
      applied: 1,
      stillFailing: [],
      remaining: 0,
      next: null,
    });
    const [row] = await sql`select member_count::int as n, sync_sequence::text as seq
                            from public.firespring_segments where segment_id = ${id}`;
    assert.deepEqual({ ...row }, { n: 12, seq: "300" });
    const [closed] = await sql`select replay_result from sync.dead_letters where id = ${letter.id}`;
    assert.equal(closed.replay_result, "applied");
    const none = await (await replay({ ids: [Number(letter.id)] })).json();
    assert.equal(none.considered, 0, "a replayed dead letter is not replayed again");
  } finally {
    await sql.end();
  }
});

Deno.test("a backfill page's dead letter stays the page's when a repair reads the same item later", async () => {
  // A backfill's end spares a key only for a letter its own pages recorded
  // (…3600_sweep_in_chunks.sql): a repair's read of the same item is a letter of its own.
  const actions = byTargetTable("firespring_actions")!;
  const item = {
    action_id: { S: `seen-${crypto.randomUUID()}` },
    timestamp: { S: "not a number" },
  };
  const read = (at: string, source: "backfill" | "repair") => {
    const mapped = mapScannedItem(actions, item, new Date(at), source);
    assert.ok(!mapped.ok);
    return mapped.deadLetter;
  };
  const sql = connectDb();
  try {
    const sighting = async (at: string, source: "backfill" | "repair") => {
      await sql.begin((tx) => recordDeadLetters(tx, [read(at, source)]));
      const letters = await sql`
        select position_source, position_at, times_seen from sync.dead_letters
        where row_key = ${sql.json({ action_id: item.action_id.S })} order by id`;
      return letters.map((l) => [
        l.position_source,
        (l.position_at as Date).toISOString(),
        l.times_seen,
      ]);
    };
    assert.deepEqual(await sighting("2026-12-01T10:00:00Z", "backfill"), [
      ["backfill", "2026-12-01T10:00:00.000Z", 1],
    ]);
    assert.deepEqual(
      await sighting("2026-12-01T11:00:00Z", "repair"),
      [["backfill", "2026-12-01T10:00:00.000Z", 1], ["repair", "2026-12-01T11:00:00.000Z", 1]],
      "a repair's later read: a letter of its own, the page's kept",
    );
    assert.deepEqual(
      await sighting("2026-12-01T12:00:00Z", "repair"),
      [["backfill", "2026-12-01T10:00:00.000Z", 1], ["repair", "2026-12-01T12:00:00.000Z", 2]],
      "the same key repaired again: one letter, its later read kept",
    );
    assert.deepEqual(
      await sighting("2026-12-01T09:00:00Z", "backfill"),
      [["backfill", "2026-12-01T10:00:00.000Z", 2], ["repair", "2026-12-01T12:00:00.000Z", 2]],
      "an older page's read changes no time",
    );
  } finally {
    await sql.end();
  }
});

Deno.test("a table's replay takes the letters its DynamoDB table's records left with no table too", async () => {
  // A stream record that came before its table was registered is kept with no table
  // (record_mapping.ts); the operator then replays that table's letters.
  const id = `untabled-${crypto.randomUUID()}`;
  await (await postWebhook(JSON.stringify({
    records: [segment(id, "vip", "300", { S: "twelve" })],
  }))).body?.cancel();
  const sql = connectDb();
  try {
    const [letter] = await sql`
      update sync.dead_letters
      set target_table = null, row_key = null,
          record = jsonb_set(record, '{dynamodb,NewImage,value}', '{"N": "12"}')
      where record::text like ${"%" + id + "%"} and replayed_at is null
      returning id, source_table`;
    assert.equal(letter.source_table, SEGMENTS);
    const answer = await callFunction("mmp-toledo-sync/replay-dead-letters", {
      method: "POST",
      headers: serviceRoleHeaders(),
      body: JSON.stringify({ table: "firespring_segments", ids: [Number(letter.id)] }),
    });
    const replayed = await answer.json();
    assert.equal(answer.status, 200, JSON.stringify(replayed));
    assert.deepEqual([replayed.considered, replayed.replayed], [1, 1]);
    const [row] = await sql`select member_count::int as n from public.firespring_segments
                            where segment_id = ${id}`;
    assert.equal(row?.n, 12);
  } finally {
    await sql.end();
  }
});
