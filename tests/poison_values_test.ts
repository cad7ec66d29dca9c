/**
 * Poison values (docs/sync-semantics.md, "Bad input") through the webhook: values DynamoDB
 * holds but Postgres cannot fail alone: the good records are applied, the poison one
 * becomes one dead letter naming the table, the key, the attribute and the cause, and the
 * answer is 200; the same stream record dead-lettered twice is one dead letter. Through a
 * backfill: tests/poison_values_backfill_test.ts.
 */

import assert from "node:assert/strict";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import fc from "fast-check";
import { isIsoTimestamp, withZone } from "../functions-shared/transform.ts";
import { callFunction, postWebhook, serviceRoleHeaders } from "./stack_clients.ts";
import {
  actionIds,
  actionRecord,
  ACTIONS,
  escape,
  lettersFor,
  POISON,
  S,
  withDb,
} from "./poison_values_fixtures.ts";

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
    // Postgres logs the text of a statement that fails (log_min_error_statement): the good
    // records, sent in the batch's one statement (sql_text.ts), must not be in the log;
    // only the refused one may be, in the constraint's detail.
    const log = await Deno.readTextFile(new URL("../.local/logs/postgres.log", import.meta.url));
    const good = [`${p}a`, `${p}b`, `${p}d`, `${p}e`];
    assert.deepEqual(
      log.split("\n").filter((line) => good.some((id) => line.includes(`"${id}"`))),
      [],
      "the batch's good records were written to the database's log",
    );
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

Deno.test("every timestamp text the mapping accepts, Postgres reads", async () => {
  // A collapsed table keeps an observation's row as jsonb and casts it only when the
  // observation becomes the row shown: a text the mapping passed and Postgres refuses
  // would fail then, far from its own change. So the mapping accepts no more than
  // Postgres, tried here on texts built from the forms ISO 8601 and Postgres mix.
  const pick = <T>(xs: T[]) => fc.constantFrom(...xs);
  const text = fc.tuple(
    pick(["2024-03-01", "2024-02-29", "2023-02-29", "0001-01-01", "9999-12-31", "2024-13-01"]),
    pick(["", "T10:00", "T10:00:00", " 10:00:00.123456", "T23:59:59.999999999", "T24:00", "T10"]),
    pick(["", "Z", "+05", "-05", "+05:30", "-05:30", "+0530", "-0530", "+15:59", "-16:00", " Z"]),
  ).map(([d, t, z]) => d + t + z);
  const texts = [...new Set(fc.sample(text, 600))];
  await withDb(async (sql) => {
    // Postgres 15 has no pg_input_is_valid: one statement per text, each in a savepoint.
    // Sent and read back as text: postgres.js would make a Date of a timestamptz.
    const read = new Set<string>();
    await sql.begin(async (tx) => {
      for (const t of texts) {
        // As the mapping writes it (transform.ts, withZone): the zone said.
        await tx.savepoint((s) => s`select ${withZone(t)}::text::timestamptz::text`).then(
          () => read.add(t),
          () => {},
        );
      }
    });
    const accepted = texts.filter(isIsoTimestamp);
    assert.ok(accepted.length > 50, `${accepted.length} accepted: the sample is too narrow`);
    const refusedByPostgres = accepted.filter((t) => !read.has(t));
    assert.deepEqual(refusedByPostgres, [], "accepted by the mapping, refused by Postgres");
  });
});
