import assert from "node:assert/strict";
import type postgres from "postgres";
import { mapScannedItem, mapStreamRecord, type TableChange } from "./record_mapping.ts";
import {
  applyChanges,
  isDatabaseMisconfigured,
  isDatabaseUnavailable,
  isDataError,
  isReadOnly,
  isTransientFailure,
  mayHaveCommitted,
  poolOptions,
} from "./sync_db.ts";
import { parseDbUrl } from "./db_url.ts";
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

Deno.test("isDataError: classes 22, 23 and 54 only", () => {
  for (const code of ["22P02", "22007", "23505", "54000"]) assert.ok(isDataError({ code }), code);
  for (const code of ["08006", "40001", "57P01", undefined]) {
    assert.ok(!isDataError({ code }), String(code));
  }
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
});

Deno.test("a pooler's own failures (08P01) and every connection exception mean retry later", () => {
  const pooler = (message: string) => Object.assign(new Error(message), { code: "08P01" });
  assert.equal(isDatabaseUnavailable(pooler("query_wait_timeout")), true);
  assert.equal(
    isDatabaseUnavailable(
      pooler("server login has been failing, try again later (server_login_retry)"),
    ),
    true,
  );
  assert.equal(isDatabaseUnavailable(Object.assign(new Error("x"), { code: "08006" })), true);
  assert.equal(isDatabaseUnavailable(Object.assign(new Error("x"), { code: "57014" })), false);
  assert.equal(isDatabaseUnavailable(Object.assign(new Error("x"), { code: "22007" })), false);
});

Deno.test("a database in read-only mode (25006) is transient, not unavailable: the write passes once it is lifted", () => {
  const readOnly = Object.assign(
    new Error("cannot execute INSERT in a read-only transaction"),
    { code: "25006" },
  );
  assert.equal(isReadOnly(readOnly), true);
  assert.equal(isTransientFailure(readOnly), true);
  assert.equal(isDatabaseUnavailable(readOnly), false);
  assert.equal(isReadOnly(Object.assign(new Error("x"), { code: "25001" })), false);
});

Deno.test("Supavisor's own failures (XX000 with its reason first) mean retry later; other XX000 do not", () => {
  const supavisor = (message: string) => Object.assign(new Error(message), { code: "XX000" });
  for (
    const message of [
      "(ECHECKOUTTIMEOUT) unable to check out connection from the pool due to timeout",
      "(EMAXCONNSESSION) max clients reached in session mode - max clients are limited to pool_size: 15",
      "(EMAXCONN) max client connections reached, limit: 200",
      "(ECIRCUITBREAKER) too many failed attempts to connect to the database, new connections are temporarily blocked",
      "(EDBHANDLEREXITED) connection to database closed. Check logs for more information",
      "(ECHECKOUTRETRIES) failed to check out a connection after multiple retries",
      "(EPOOLCHECKOUT) pool checkout failed: :timeout",
      "(ESUBSCRIBERETRIES) failed to subscribe to tenant after multiple retries. Terminating",
      "(EMAXPOOLSREACHED) max pools count reached",
      "(EPROXYSTARTFAILED) failed to start proxy connection",
      "(EPROXYSUPERVISORUNAVAILABLE) proxy supervisor unavailable after retries",
      "(EAUTHQUERY) auth_query connection failed: econnrefused",
      "(EAUTHQUERY) auth_query secret check timed out",
      "(EAUTHQUERY) authentication query failed: connection to database not available",
    ]
  ) {
    assert.equal(isDatabaseUnavailable(supavisor(message)), true, message);
  }
  assert.equal(isDatabaseUnavailable(supavisor("invalid page in block 7 of relation")), false);
  assert.equal(
    isDatabaseUnavailable(supavisor("(EAUTHQUERY) user not found in the database")),
    false,
    "a configuration's problem, not the database's",
  );
  assert.equal(isDatabaseUnavailable(supavisor("see (ECHECKOUTTIMEOUT) later")), false);
});

Deno.test("Supavisor before 2.9, without codes: the same failures in bare words, retried the same", () => {
  // Its client texts at supabase/supavisor 71eb86b7^ (lib/supavisor/client_handler/error.ex).
  const old = (message: string) => Object.assign(new Error(message), { code: "XX000" });
  for (
    const message of [
      "Unable to check out connection from the pool due to timeout",
      "Unable to check out process from the pool due to timeout",
      "Max client connections reached",
      "MaxClientsInSessionMode: max clients reached - in Session mode max clients are limited to pool_size",
      "Max pools count reached",
      "Failed to start proxy connection. Check logs for more information",
      "Proxy supervisor unavailable",
      "Failed to subscribe to tenant after multiple retries. Terminating.",
      "Connection to database closed. Check logs for more information",
      "DbHandler exited. Check logs for more information.",
      "Circuit breaker open: Unable to establish connection to upstream database",
      "Circuit breaker open: Failed to retrieve database credentials",
    ]
  ) {
    assert.equal(isDatabaseUnavailable(old(message)), true, message);
    assert.equal(isTransientFailure(old(message)), true, message);
    assert.equal(isDatabaseMisconfigured(old(message)), false, message);
  }
  assert.equal(mayHaveCommitted(old("Connection to database closed. Check logs")), true);
  assert.equal(mayHaveCommitted(old("DbHandler exited. Check logs for more information.")), true);
  assert.equal(mayHaveCommitted(old("Max client connections reached")), false);
  assert.equal(isDatabaseUnavailable(old("a row of max client connections reached")), false);
});

Deno.test("Supavisor's breaker opened by failed logins is the password's fault, not the database's", () => {
  for (
    const message of [
      // 2.9 and later (lib/supavisor/circuit_breaker.ex), then before (71eb86b7^).
      "(ECIRCUITBREAKER) too many authentication failures, new connections are temporarily blocked",
      "Circuit breaker open: Too many authentication errors",
    ]
  ) {
    const error = Object.assign(new Error(message), { code: "XX000" });
    assert.equal(isDatabaseMisconfigured(error), true, message);
    assert.equal(isDatabaseUnavailable(error), false, message);
  }
});

Deno.test("mayHaveCommitted: a connection lost in use may have committed; one never made did not", () => {
  const lost = (message: string, code?: string) => Object.assign(new Error(message), { code });
  for (
    const error of [
      lost("read ECONNRESET", "ECONNRESET"),
      lost("write CONNECTION_CLOSED 127.0.0.1:6543", "CONNECTION_CLOSED"),
      lost("terminating connection due to administrator command", "57P01"),
      lost("(EDBHANDLEREXITED) connection to database closed", "XX000"),
      lost("server conn crashed?", "08P01"),
    ]
  ) {
    assert.equal(mayHaveCommitted(error), true, error.message);
  }
  for (
    const error of [
      lost("connect ECONNREFUSED 127.0.0.1:6543", "ECONNREFUSED"),
      lost("write CONNECT_TIMEOUT 127.0.0.1:6543", "CONNECT_TIMEOUT"),
      lost("query_wait_timeout", "08P01"),
      lost("server login has been failing, try again later (server_login_retry)", "08P01"),
      lost("sorry, too many clients already", "53300"),
      lost("(ECHECKOUTTIMEOUT) checkout timeout", "XX000"),
      lost("duplicate key value violates unique constraint", "23505"),
    ]
  ) {
    assert.equal(mayHaveCommitted(error), false, error.message);
  }
});
