/**
 * Poison values (docs/sync-semantics.md, "Bad input") through a backfill: an item Postgres
 * cannot hold fails alone, becomes one dead letter naming the table, the key, the
 * attribute and the cause, and the backfill job finishes with the rest written. A dead
 * letter keeps its position: a stale backfill copy replayed after a newer stream delete
 * does not bring the row back.
 */

import assert from "node:assert/strict";
import { DeleteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { queueBackfill } from "./backfill_fixtures.ts";
import { validate } from "./validator_fixtures.ts";
import {
  callFunction,
  dynamo,
  eventually,
  postWebhook,
  serviceRoleHeaders,
  staleReadMs,
  streamRecord,
} from "./stack_clients.ts";
import {
  actionIds,
  ACTIONS,
  escape,
  type Item,
  lettersFor,
  nextSeq,
  POISON,
  S,
  withDb,
} from "./poison_values_fixtures.ts";

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
        remaining: 0,
        next: null,
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

Deno.test("backfill: a key with U+0000, last on its page, does not hold up its segment", async () => {
  // Pages of one item: every key is a checkpoint. Postgres's jsonb holds no U+0000, so
  // the checkpoint after the bad key must be stored in a form it holds
  // (functions-shared/scan_checkpoint.ts), or the segment never passes that page.
  const p = `poison-nulkey-${crypto.randomUUID().slice(0, 8)}-`;
  const table = "firespring-backdoor-network-state-dev";
  const keys = [`${p}a`, `${p}b\u0000`, `${p}c`];
  const client = dynamo();
  try {
    for (const key of keys) {
      await client.send(
        new PutItemCommand({ TableName: table, Item: { state_key: S(key), value: S("v") } }),
      );
    }
    const settled = Date.now() + staleReadMs();
    await withDb(async (sql) => {
      const job = await queueBackfill(sql, table, 1, { pageSize: 1 });
      await sql`select sync.wake_import_worker()`;
      const ended = await eventually("the backfill to finish", async () => {
        const [row] = await sql`select status, error from sync.backfill_jobs
                                where id = ${job}`;
        return row.status === "done" || row.status === "failed" ? row : undefined;
      }, 120_000);
      assert.deepEqual(ended, { status: "done", error: null });
      const rows = await sql`select state_key from public.firespring_network_state
                             where state_key like ${p + "%"} order by state_key`;
      assert.deepEqual(rows.map((r) => r.state_key), [`${p}a`, `${p}c`]);
      const [letter] = await sql`select reason from sync.dead_letters
                                 where source_table = ${table} and reason like ${"%" + p + "%"}`;
      assert.match(letter.reason, /U\+0000/);
    });
    // Validated with the key still there: the run ends, listing the item by its key with
    // U+0000 written out (jsonb holds none), and does not read as a match over it. (Once
    // the stale window has passed since the puts: the validator's Scan is eventually
    // consistent, as on AWS, and may not see an item younger than that.)
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, settled - Date.now())));
    const result = await validate("firespring_network_state");
    const listed = result.unmappable.flatMap((key, i) =>
      String(key.state_key).startsWith(p) ? [{ key, reason: result.unmappableReasons[i] }] : []
    );
    assert.deepEqual(listed.map((u) => u.key), [{ state_key: `${p}b\\u0000` }]);
    assert.match(listed[0].reason, /U\+0000/);
    assert.equal(result.match, false);
  } finally {
    for (const key of keys) {
      await client.send(new DeleteItemCommand({ TableName: table, Key: { state_key: S(key) } }));
    }
  }
});
