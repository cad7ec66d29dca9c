import assert from "node:assert/strict";
import type postgres from "postgres";
import { mapScannedItem, mapStreamRecord, type TableChange } from "./record_mapping.ts";
import { applyChanges, poolOptions } from "./sync_db.ts";
import { parseDbUrl } from "./db_url.ts";
import { noDelaySocket } from "./pg_socket.ts";
import { byTargetTable } from "./table_registry.ts";
import { actionStreamRecord as streamRecord } from "./testing_fakes.ts";

function change(id: string, seq: string): TableChange {
  const mapped = mapStreamRecord(streamRecord(id, seq));
  assert.ok(mapped.ok);
  return mapped.value;
}

/**
 * A transaction whose sync.merge_changes refuses (SQLSTATE `code`) any batch holding a
 * change of key `poison`, as Postgres refuses a whole statement; it keeps what was merged
 * and the dead-letter rows inserted.
 */
function fakeTx(poison: string, code = "22007", fields: Record<string, string> = {}) {
  const merged: string[] = [];
  const letters: Record<string, unknown>[] = [];
  let statements = 0;
  const tx = {
    unsafe: (query: string, params: string[]) => {
      statements++;
      if (query.includes("sync.merge_changes")) {
        const changes = JSON.parse(params[1]) as { row: { action_id: string } }[];
        if (changes.some((c) => c.row.action_id === poison)) {
          const error = new Error('invalid input syntax for type timestamp with time zone: "x"');
          return Promise.reject(Object.assign(error, { code, ...fields }));
        }
        merged.push(...changes.map((c) => c.row.action_id));
        return Promise.resolve([{ applied: changes.length }]);
      }
      if (query.includes("insert into sync.dead_letters")) letters.push(...JSON.parse(params[0]));
      return Promise.resolve([]);
    },
    savepoint: (fn: (sp: unknown) => Promise<unknown>) => fn(tx),
  };
  return {
    tx: tx as unknown as postgres.TransactionSql,
    merged,
    letters,
    statements: () => statements,
  };
}

Deno.test("a change Postgres refuses fails alone: the others applied, one dead letter", async () => {
  const changes = ["a", "b", "c", "bad", "d", "e", "f"].map((id, i) => change(id, String(100 + i)));
  const fake = fakeTx("bad");
  const result = await applyChanges(fake.tx, changes);
  assert.deepEqual(fake.merged.sort(), ["a", "b", "c", "d", "e", "f"]);
  assert.equal(result.applied, 6);
  assert.equal(result.deadLettered, 1);
  assert.equal(result.refused.length, 1);
  assert.equal(fake.letters.length, 1);
  const [letter] = fake.letters;
  assert.equal(
    letter.reason,
    'firespring_actions [action_id="bad"]: Postgres refused the change: invalid input syntax ' +
      'for type timestamp with time zone: "x" (SQLSTATE 22007)',
  );
  assert.equal(letter.event_id, "ev-bad");
  assert.equal(letter.position_seq, "103");
  assert.equal(letter.position_source, "stream");
  assert.deepEqual(letter.row_key, { action_id: "bad" });
  assert.equal((letter.record as { eventID: string }).eventID, "ev-bad");
});

Deno.test("a refused change's dead letter keeps what Postgres says beside the message", async () => {
  const fake = fakeTx("bad", "23505", {
    detail: "Key (session_id)=(s-1) already exists.",
    hint: "Drop the index.",
    table_name: "firespring_actions",
    constraint_name: "one_per_session",
  });
  await applyChanges(fake.tx, [change("a", "100"), change("bad", "101")]);
  assert.equal(
    fake.letters[0].reason,
    'firespring_actions [action_id="bad"]: Postgres refused the change: invalid input syntax ' +
      'for type timestamp with time zone: "x"; detail: Key (session_id)=(s-1) already exists.; ' +
      "hint: Drop the index. (table firespring_actions, constraint one_per_session) " +
      "(SQLSTATE 23505)",
  );
});

Deno.test("dead letters passed in and refused changes are recorded together", async () => {
  const poison = mapScannedItem(
    byTargetTable("firespring_actions")!,
    { action_id: { S: "p" }, n: { N: "abc" } },
    new Date("2026-02-01T00:00:00Z"),
  );
  assert.ok(!poison.ok);
  const fake = fakeTx("bad");
  const result = await applyChanges(fake.tx, [change("ok", "1"), change("bad", "2")], [
    poison.deadLetter,
  ]);
  assert.equal(result.applied, 1);
  assert.equal(result.deadLettered, 2);
  assert.deepEqual(fake.letters.map((l) => l.row_key), [{ action_id: "p" }, { action_id: "bad" }]);
  assert.equal(fake.letters[0].position_at, "2026-02-01T00:00:00.000Z");
  assert.equal(fake.letters[0].position_source, "backfill");
});

Deno.test("an error that is not about the data propagates (the batch is retried whole)", async () => {
  const fake = fakeTx("bad", "08006");
  await assert.rejects(
    () => applyChanges(fake.tx, [change("ok", "1"), change("bad", "2")]),
    /invalid input syntax/,
  );
  assert.equal(fake.letters.length, 0);
});

Deno.test("the replay's option keeps refused changes out of new dead letters", async () => {
  const fake = fakeTx("bad");
  const result = await applyChanges(fake.tx, [change("bad", "2")], [], {
    deadLetterRefused: false,
  });
  assert.equal(result.refused.length, 1);
  assert.equal(result.deadLettered, 0);
  assert.equal(fake.letters.length, 0);
});

Deno.test("the pool: no prepared statements through a transaction pooler, TLS as the URL asks", () => {
  const pooled = poolOptions(
    parseDbUrl(
      "postgresql://postgres.ref:pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres?sslmode=require",
    ),
    { max: 3, connectTimeoutS: 10, idleTimeoutS: 20 },
  );
  assert.equal(pooled.prepare, false);
  assert.equal(pooled.ssl, "require");
  assert.equal(pooled.max, 3);
  assert.equal(pooled.connect_timeout, 10);
  assert.equal(pooled.idle_timeout, 20);
  // No TimeZone of the client's: Supavisor would not pass it on, so the sessions here run
  // in the database's zone as they do hosted.
  assert.deepEqual(pooled.connection, { application_name: "dynamo-supabase-sync" });
  // Nagle's algorithm off, as libpq has it: a long statement's last segment does not wait.
  assert.equal((pooled as { socket?: unknown }).socket, noDelaySocket);
  const direct = poolOptions(parseDbUrl("postgresql://postgres:pw@127.0.0.1:54322/postgres"), {
    max: 1,
  });
  assert.equal(direct.prepare, true);
  assert.equal(direct.ssl, "prefer", "no sslmode: encrypted when the server offers it");
  const verified = poolOptions(
    parseDbUrl("postgresql://postgres:pw@db.ref.supabase.co:5432/postgres?sslmode=verify-full"),
    { max: 1, caCert: "-----BEGIN CERTIFICATE-----" },
  );
  assert.deepEqual(verified.ssl, {
    rejectUnauthorized: true,
    servername: "db.ref.supabase.co",
    ca: "-----BEGIN CERTIFICATE-----",
  });
  // An address is checked against the certificate's IP entries: never sent as SNI (Node
  // throws on it), never left to Node's default name `localhost`.
  const byAddress = poolOptions(
    parseDbUrl("postgresql://postgres:pw@10.0.0.7:6543/postgres?sslmode=verify-full"),
    { max: 1 },
  );
  assert.deepEqual(byAddress.ssl, { rejectUnauthorized: true, host: "10.0.0.7" });
});
