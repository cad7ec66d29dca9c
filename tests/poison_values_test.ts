/**
 * Poison values (sync-semantics.md, "Bad input"): values DynamoDB holds but Postgres
 * cannot fail alone, through the webhook and through a backfill: the good records are
 * applied, the poison one becomes one dead letter naming the table, the key, the
 * attribute and the cause, and the answer is 200 (the backfill job finishes). A dead
 * letter keeps its position: a stale backfill copy replayed after a newer stream delete
 * does not bring the row back; the same stream record dead-lettered twice is one dead
 * letter.
 */

import assert from "node:assert/strict";
import { DeleteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import {
  callFunction,
  connectDb,
  dynamo,
  eventually,
  postWebhook,
  serviceRoleHeaders,
  streamRecord,
} from "./stack_clients.ts";

const ACTIONS = "firespring-backdoor-actions-dev";
type Item = Record<string, AttributeValue>;
const S = (s: string): AttributeValue => ({ S: s });

/** Kind, poison attributes, the cause the reason names, and whether DynamoDB Local can hold it. */
const POISON: [string, Item, RegExp, boolean][] = [
  [
    "U+0000 in a column",
    { session_id: S("s\u0000") },
    /attribute session_id: the string contains U\+0000/,
    true,
  ],
  [
    "U+0000 nested in the catch-all",
    { meta: { M: { title: S("t\u0000") } } },
    /attribute meta\.title: the string contains U\+0000/,
    true,
  ],
  [
    "U+0000 in a map key",
    { meta: { M: { ["k\u0000"]: S("v") } } },
    /attribute meta: the map key "k\\u0000" contains U\+0000/,
    true,
  ],
  [
    "a lone surrogate",
    { meta: { M: { list: { L: [S("x\ud800")] } } } },
    /attribute meta\.list\[0\]: the string is not valid UTF-16/,
    true,
  ],
  [
    "a lone surrogate in a map key",
    { meta: { M: { ["\udc00"]: S("v") } } },
    /attribute meta: the map key "\\udc00" is not valid UTF-16/,
    true,
  ],
  [
    "a zone offset of +16:00",
    { created_at: S("2026-02-06T10:00:00+16:00") },
    /attribute created_at: expected an ISO-8601 timestamp, got "2026-02-06T10:00:00\+16:00" \(its zone offset \+16:00 is beyond/,
    true,
  ],
  [
    "a zone offset of +05:99",
    { created_at: S("2026-02-06T10:00:00+05:99") },
    /attribute created_at: expected an ISO-8601 timestamp, got "2026-02-06T10:00:00\+05:99"/,
    true,
  ],
  ['N "abc"', { score: { N: "abc" } }, /attribute score: "abc" is not a number/, false],
  ['N ""', { score: { N: "" } }, /attribute score: "" is not a number/, false],
  [
    'N "1e999"',
    { score: { N: "1e999" } },
    /attribute score: "1e999" is out of DynamoDB's number range/,
    false,
  ],
];

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** A stream sequence number of this run, larger than any before it in the run. */
let seqCounter = 0;
const nextSeq = () => `${Date.now()}${String(seqCounter++).padStart(4, "0")}`;

function actionRecord(id: string, extra: Item = {}, seq = nextSeq()) {
  return streamRecord(ACTIONS, "INSERT", { action_id: S(id) }, {
    action_id: S(id),
    session_id: S("s-1"),
    ...extra,
  }, seq);
}

async function withDb<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = connectDb();
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

async function actionIds(sql: postgres.Sql, prefix: string): Promise<string[]> {
  const rows = await sql`select action_id from public.firespring_actions
                         where action_id like ${prefix + "%"} order by action_id`;
  return rows.map((r) => r.action_id);
}

async function lettersFor(sql: postgres.Sql, id: string, source: string) {
  return await sql`select id, reason, position_source, position_seq::text as seq, position_at,
                          row_key, times_seen, replayed_at, record is null as as_text
                   from sync.dead_letters
                   where row_key = ${sql.json({ action_id: id })} and position_source = ${source}`;
}

for (const [kind, poison, cause] of POISON) {
  Deno.test(`webhook: ${kind} fails alone; the rest of the batch is applied`, async () => {
    const p = `poison-wh-${crypto.randomUUID()}-`;
    const response = await postWebhook(JSON.stringify({
      records: [actionRecord(`${p}a`), actionRecord(`${p}bad`, poison), actionRecord(`${p}c`)],
    }));
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      received: 3,
      applied: 2,
      skipped: 0,
      deadLettered: 1,
    });
    await withDb(async (sql) => {
      assert.deepEqual(await actionIds(sql, p), [`${p}a`, `${p}c`]);
      const letters = await lettersFor(sql, `${p}bad`, "stream");
      assert.equal(letters.length, 1);
      assert.match(
        letters[0].reason,
        new RegExp(`^${ACTIONS} \\[action_id="${escape(p)}bad"\\]: ${cause.source}`),
      );
    });
  });
}

Deno.test("webhook: a 400 KB binary attribute is applied", async () => {
  const id = `poison-bin-${crypto.randomUUID()}`;
  const bytes = new Uint8Array(400 * 1024).map((_, i) => (i * 7) % 256);
  const base64 = btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));
  const response = await postWebhook(JSON.stringify({
    records: [actionRecord(id, { blob: { B: base64 } as unknown as AttributeValue })],
  }));
  assert.equal(response.status, 200);
  assert.equal((await response.json()).applied, 1);
  await withDb(async (sql) => {
    const [row] = await sql`select action_data ->> 'blob' as blob from public.firespring_actions
                            where action_id = ${id}`;
    assert.equal(row.blob, base64);
  });
});

Deno.test("webhook: a change Postgres still refuses is isolated and dead-lettered alone", async () => {
  const p = `poison-pg-${crypto.randomUUID()}-`;
  await withDb(async (sql) => {
    // Stands for any value the mapping might let through that Postgres refuses.
    await sql.unsafe(
      `alter table public.firespring_actions add constraint poison_values_test
         check (session_id is distinct from '${p}refused') not valid`,
    );
    try {
      const response = await postWebhook(JSON.stringify({
        records: [
          actionRecord(`${p}a`),
          actionRecord(`${p}b`),
          actionRecord(`${p}bad`, { session_id: S(`${p}refused`) }),
          actionRecord(`${p}d`),
          actionRecord(`${p}e`),
        ],
      }));
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), {
        received: 5,
        applied: 4,
        skipped: 0,
        deadLettered: 1,
      });
    } finally {
      await sql.unsafe("alter table public.firespring_actions drop constraint poison_values_test");
    }
    assert.deepEqual(await actionIds(sql, p), [`${p}a`, `${p}b`, `${p}d`, `${p}e`]);
    const [letter] = await lettersFor(sql, `${p}bad`, "stream");
    assert.match(
      letter.reason,
      new RegExp(
        `^firespring_actions \\[action_id="${escape(p)}bad"\\]: Postgres refused the change: ` +
          `new row for relation "firespring_actions" violates check constraint "poison_values_test".*\\(SQLSTATE 23514\\)`,
      ),
    );
  });
});

Deno.test("webhook: the same poison stream record delivered twice is one dead letter", async () => {
  const id = `poison-twice-${crypto.randomUUID()}`;
  const body = JSON.stringify({ records: [actionRecord(id, { score: { N: "abc" } })] });
  for (let i = 0; i < 2; i++) {
    const response = await postWebhook(body);
    assert.equal(response.status, 200);
    assert.equal((await response.json()).deadLettered, 1);
  }
  await withDb(async (sql) => {
    const letters = await lettersFor(sql, id, "stream");
    assert.equal(letters.length, 1);
    assert.equal(letters[0].times_seen, 2);
  });
});

Deno.test("webhook: a replayed dead letter whose record comes again stays closed", async () => {
  const id = `poison-closed-${crypto.randomUUID()}`;
  const body = JSON.stringify({ records: [actionRecord(id, { score: { N: "abc" } })] });
  await (await postWebhook(body)).body?.cancel();
  await withDb(async (sql) => {
    const [letter] = await lettersFor(sql, id, "stream");
    await sql`update sync.dead_letters
              set record = jsonb_set(record, '{dynamodb,NewImage,score}', '{"N": "1"}')
              where id = ${letter.id}`;
    const replay = await callFunction("mmp-toledo-sync/replay-dead-letters", {
      method: "POST",
      headers: serviceRoleHeaders(),
      body: JSON.stringify({ ids: [Number(letter.id)] }),
    });
    assert.equal((await replay.json()).replayed, 1);
    // Lambda delivers the original record again: it was applied, nothing new to do.
    const again = await postWebhook(body);
    assert.equal(again.status, 200);
    assert.equal((await again.json()).deadLettered, 1);
    const letters = await lettersFor(sql, id, "stream");
    assert.equal(letters.length, 1);
    assert.equal(letters[0].times_seen, 2);
    assert.ok(letters[0].replayed_at !== null, "the dead letter stays closed");
    assert.deepEqual(await actionIds(sql, id), [id]);
  });
});

/** Starts a backfill of the actions table and waits for it to finish. */
async function backfillActions(sql: postgres.Sql) {
  const [job] = await sql`select sync.start_backfill(${ACTIONS}, 2) as id`;
  return await eventually("the backfill to finish", async () => {
    const [row] = await sql`select status, items_scanned, rows_written from sync.backfill_progress
                            where job_id = ${job.id}`;
    return row.status === "done" || row.status === "failed" ? row : undefined;
  }, 120_000);
}

const backfillPrefix = `poison-bf-${crypto.randomUUID()}-`;
const blob = new Uint8Array(390 * 1024).map((_, i) => (i * 13) % 256);
let backfilled: Promise<Record<string, unknown>> | undefined;

/** Puts good items, one item per poison kind and a 390 KB binary item, then backfills once. */
function backfillOnce(): Promise<Record<string, unknown>> {
  backfilled ??= withDb(async (sql) => {
    const put = (item: Item) =>
      dynamo().send(new PutItemCommand({ TableName: ACTIONS, Item: item }));
    await put({ action_id: S(`${backfillPrefix}good-1`), session_id: S("s") });
    await put({ action_id: S(`${backfillPrefix}good-2`), session_id: S("s") });
    await put({ action_id: S(`${backfillPrefix}blob`), blob: { B: blob } });
    for (const [i, [, poison, , held]] of POISON.entries()) {
      if (held) await put({ action_id: S(`${backfillPrefix}bad-${i}`), ...poison });
    }
    return { ...await backfillActions(sql) };
  });
  return backfilled;
}

for (const [i, [kind, , cause, held]] of POISON.entries()) {
  if (!held) continue; // DynamoDB itself refuses such numbers: no Scan can return one.
  Deno.test(`backfill: ${kind} fails alone; the job finishes with the rest written`, async () => {
    const job = await backfillOnce();
    assert.equal(job.status, "done");
    await withDb(async (sql) => {
      const ids = await actionIds(sql, `${backfillPrefix}good`);
      assert.deepEqual(ids, [`${backfillPrefix}good-1`, `${backfillPrefix}good-2`]);
      const letters = await lettersFor(sql, `${backfillPrefix}bad-${i}`, "backfill");
      assert.equal(letters.length, 1);
      assert.match(
        letters[0].reason,
        new RegExp(
          `^${ACTIONS} \\[action_id="${escape(backfillPrefix)}bad-${i}"\\]: ${cause.source}`,
        ),
      );
      assert.ok(letters[0].position_at instanceof Date, "the read time is kept");
    });
  });
}

Deno.test("backfill: an item with a 390 KB binary attribute is written", async () => {
  const job = await backfillOnce();
  assert.equal(job.status, "done");
  await withDb(async (sql) => {
    const [row] =
      await sql`select length(action_data ->> 'blob') as n from public.firespring_actions
                            where action_id = ${`${backfillPrefix}blob`}`;
    assert.equal(row.n, Math.ceil(blob.length / 3) * 4);
  });
});

Deno.test("backfill: an item Postgres refuses is isolated; the job finishes", async () => {
  const p = `poison-bfpg-${crypto.randomUUID()}-`;
  const table = dynamo();
  const ids = [`${p}a`, `${p}bad`, `${p}c`];
  try {
    await withDb(async (sql) => {
      // Stands for any value the mapping might let through that Postgres refuses. In
      // force before the items exist, so the stream's copy of the bad one is refused too,
      // and until the rows are checked, so a late stream delivery cannot add it.
      await sql.unsafe(
        `alter table public.firespring_actions add constraint poison_values_backfill_test
           check (session_id is distinct from '${p}refused') not valid`,
      );
      try {
        for (const id of ids) {
          const session = id.endsWith("bad") ? `${p}refused` : "s";
          await table.send(
            new PutItemCommand({
              TableName: ACTIONS,
              Item: { action_id: S(id), session_id: S(session) },
            }),
          );
        }
        assert.equal((await backfillActions(sql)).status, "done");
        assert.deepEqual(await actionIds(sql, p), [`${p}a`, `${p}c`]);
      } finally {
        await sql.unsafe(
          "alter table public.firespring_actions drop constraint poison_values_backfill_test",
        );
      }
      const letters = await lettersFor(sql, `${p}bad`, "backfill");
      assert.equal(letters.length, 1);
      assert.match(
        letters[0].reason,
        new RegExp(
          `^firespring_actions \\[action_id="${
            escape(p)
          }bad"\\]: Postgres refused the change: .*\\(SQLSTATE 23514\\)`,
        ),
      );
    });
  } finally {
    for (const id of ids) {
      await table.send(new DeleteItemCommand({ TableName: ACTIONS, Key: { action_id: S(id) } }));
    }
  }
});

Deno.test("a backfill dead letter replayed after a newer stream delete does not resurrect the row", async () => {
  const id = `poison-stale-${crypto.randomUUID()}`;
  const table = dynamo();
  await table.send(
    new PutItemCommand({
      TableName: ACTIONS,
      Item: { action_id: S(id), created_at: S("2026-02-06T10:00:00+16:00") },
    }),
  );
  try {
    await withDb(async (sql) => {
      assert.equal((await backfillActions(sql)).status, "done");
      const [letter] = await lettersFor(sql, id, "backfill");
      assert.ok(letter, "the backfill dead-lettered the item");
      // A stream delete of the key, the second after the Scan read it: newer than the copy.
      const deletedAt = Math.ceil((letter.position_at as Date).getTime() / 1000);
      const remove = streamRecord(
        ACTIONS,
        "REMOVE",
        { action_id: S(id) },
        undefined,
        nextSeq(),
        "us-east-1",
        deletedAt,
      );
      const response = await postWebhook(JSON.stringify({ records: [remove] }));
      assert.equal(response.status, 200);
      await response.body?.cancel();
      // Long enough after the delete that a copy stamped with the replay's time would win.
      await eventually("the clock to pass the delete by 2 s", async () => {
        const [t] =
          await sql`select now() > to_timestamp(${deletedAt}) + interval '2 seconds' as past`;
        return t.past ? true : undefined;
      });
      // The admin fixes the copy and replays it: it keeps its read time, so it loses.
      await sql`update sync.dead_letters
                set record = jsonb_set(record, '{item,created_at}', '{"S": "2026-02-06T10:00:00Z"}')
                where id = ${letter.id}`;
      const replay = await callFunction("mmp-toledo-sync/replay-dead-letters", {
        method: "POST",
        headers: serviceRoleHeaders(),
        body: JSON.stringify({ ids: [Number(letter.id)] }),
      });
      assert.equal(replay.status, 200);
      assert.deepEqual(await replay.json(), {
        considered: 1,
        replayed: 1,
        applied: 0,
        stillFailing: [],
      });
      assert.deepEqual(await actionIds(sql, id), [], "the deleted row stays deleted");
    });
  } finally {
    await table.send(new DeleteItemCommand({ TableName: ACTIONS, Key: { action_id: S(id) } }));
  }
});

Deno.test("clean-up: the items the backfill tests put are deleted from DynamoDB", async () => {
  if (!backfilled) return;
  await backfilled.catch(() => {});
  const keys = ["good-1", "good-2", "blob", ...POISON.map((_, i) => `bad-${i}`)];
  for (const key of keys) {
    await dynamo().send(
      new DeleteItemCommand({
        TableName: ACTIONS,
        Key: { action_id: S(`${backfillPrefix}${key}`) },
      }),
    );
  }
});
