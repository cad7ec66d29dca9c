/**
 * The stack's transaction pooler (PgBouncer; local-stack/supabase/pooler.ts) behaves as
 * Supabase's port 6543 does: a client's statements run on whichever server connection is
 * free, so session state (a SET, a prepared statement) does not follow its client, while the functions' own pool
 * (functions-shared/sync_db.ts, which turns prepared statements off for a transaction
 * pooler) works through it. The statement timeouts are the hosted ones. Certificates made
 * again by a `stack:up` are served at once by the running Postgres and the pooler.
 */

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import postgres from "postgres";
import { connectDb as connectFunctionsDb } from "../functions-shared/sync_db.ts";
import { parseDbUrl } from "../functions-shared/db_url.ts";
import { isDatabaseMisconfigured, isDatabaseUnavailable } from "../functions-shared/db_errors.ts";
import { unpipelined } from "../functions-shared/unpipelined.ts";
import { connectDb, stack } from "./stack_clients.ts";
import { DENO_BIN, ROOT } from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";
import { certificateFiles } from "../local-stack/supabase/tls_certificates.ts";

Deno.test("the pooler URL names a transaction pooler, which the functions get as SYNC_DB_URL", () => {
  const target = parseDbUrl(stack.POOLER_URL);
  assert.equal(target.transactionPooler, true);
  assert.notEqual(target.port, parseDbUrl(stack.DATABASE_URL).port);
});

Deno.test("the pooler speaks TLS only, with a certificate the functions' settings verify", async () => {
  const { url } = parseDbUrl(stack.POOLER_URL);
  const plain = postgres(url, { max: 1, prepare: false, ssl: false, onnotice: () => {} });
  try {
    await assert.rejects(() => plain`select 1`, (error: Error) => {
      assert.match(error.message, /SSL required/);
      // The functions answer it as their settings' fault (check SYNC_DB_URL's sslmode),
      // not as a database that is down, retried for ever.
      assert.equal(isDatabaseMisconfigured(error), true);
      assert.equal(isDatabaseUnavailable(error), false);
      return true;
    });
  } finally {
    await plain.end();
  }
  const verifyFull = `${stack.POOLER_URL}&sslmode=verify-full`;
  const caCert = readFileSync(stack.DB_CA_CERT_FILE, "utf8");
  const verified = connectFunctionsDb(verifyFull, { max: 1, caCert });
  const untrusted = connectFunctionsDb(verifyFull, { max: 1, connectTimeoutS: 5 });
  try {
    const [row] = await verified`select 1 as one`;
    assert.equal(row.one, 1);
    // Without the stack's CA the certificate is checked against the system's roots: refused.
    await assert.rejects(() => untrusted`select 1`, /certificate/);
  } finally {
    await verified.end();
    await untrusted.end();
  }
});

Deno.test("certificates made again are taken by what runs: Postgres reloads them, the pooler restarts", async () => {
  const oldCa = readFileSync(stack.DB_CA_CERT_FILE, "utf8");
  // A certificate cut short (a run of openssl killed): the next stack:up makes new ones,
  // signed by a new CA, while Postgres keeps running.
  const { certFile } = certificateFiles(dirname(stack.DB_CA_CERT_FILE));
  writeFileSync(certFile, readFileSync(certFile, "utf8").slice(0, 100));
  const output = await run(DENO_BIN, ["run", "-A", "local-stack/stack.ts", "up"], { cwd: ROOT });
  assert.match(output, /stack: new TLS certificates: /);
  assert.match(output, /stack: postgres reused/, "Postgres was not restarted");
  const caCert = readFileSync(stack.DB_CA_CERT_FILE, "utf8");
  assert.notEqual(caCert, oldCa);
  // Verified against the new CA only: each serves the new certificate.
  for (
    const url of [
      `${stack.DATABASE_URL}?sslmode=verify-full`,
      `${stack.POOLER_URL}&sslmode=verify-full`,
    ]
  ) {
    const client = connectFunctionsDb(url, { max: 1, caCert, connectTimeoutS: 5 });
    try {
      const [row] = await client`select 1 as one`;
      assert.equal(row.one, 1, url);
    } finally {
      await client.end();
    }
  }
});

Deno.test("through the pooler no session state outlasts its transaction, even for a client alone", async () => {
  const { url } = parseDbUrl(stack.POOLER_URL);
  const client = postgres(url, { max: 1, prepare: false, ssl: "require", onnotice: () => {} });
  try {
    // Session state, each statement its own transaction: a session SET, PREPARE, temporary
    // table and advisory lock (postgres.js retries its own prepared statements, so the
    // plain SQL shows it).
    await client.unsafe("set statement_timeout = '1s'");
    await client.unsafe("prepare probe as select 1 as one");
    await client.unsafe("create temporary table probe (id int)");
    await client.unsafe("select pg_advisory_lock(4242)");
    // The next transaction, on whichever server connection: none of it is there.
    const [now] = await client`select current_setting('statement_timeout') as timeout,
      (select count(*)::int from pg_locks where locktype = 'advisory' and objid = 4242) as locks,
      to_regclass('pg_temp.probe') is null as no_temp_table`;
    assert.deepEqual(now, { timeout: "2min", locks: 0, no_temp_table: true });
    await assert.rejects(
      () => client.unsafe("execute probe"),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "26000", error.message); // invalid_sql_statement_name
        assert.match(error.message, /prepared statement "probe" does not exist/);
        return true;
      },
    );
    // Within one transaction, what a transaction sets holds (set_config(..., true), SET LOCAL).
    await client.begin(async (tx) => {
      await tx`select set_config('statement_timeout', '5s', true)`;
      const [inside] = await tx`select current_setting('statement_timeout') as timeout`;
      assert.equal(inside.timeout, "5s");
    });
  } finally {
    await client.end();
  }
});

Deno.test("the functions' pool works through the pooler while other clients hold connections", async () => {
  const sql = connectFunctionsDb(stack.POOLER_URL, 1);
  const other = postgres(parseDbUrl(stack.POOLER_URL).url, {
    max: 1,
    prepare: false,
    ssl: "require",
  });
  try {
    const [first] = await sql`select ${"a"}::text as value`;
    await other.begin(async (tx) => {
      await tx`select 1`;
      const [again] = await sql`select ${"b"}::text as value`;
      assert.equal(again.value, "b");
    });
    assert.equal(first.value, "a");
    // A transaction keeps one server connection: set_config(..., true) and
    // pg_advisory_xact_lock, as sync.merge_changes uses them, hold within it.
    const [inside] = await sql.begin(async (tx) => {
      await tx`select set_config('sync.probe', 'kept', true)`;
      return await tx`select current_setting('sync.probe') as value`;
    });
    assert.equal(inside.value, "kept");
  } finally {
    await sql.end();
    await other.end();
  }
});

Deno.test("a statement without parameters has none pipelined behind it, through the pooler", async () => {
  // The webhook's one-round-trip statement (functions-shared/unpipelined.ts) beside a
  // transaction (a batch with dead letters, a replay) and a statement with parameters, more
  // of them than the pool has connections: postgres.js writes a statement behind a busy
  // one, and behind one without parameters its answer was lost in the pooler, the caller
  // waiting for ever (it hung within a few rounds when the statement was a plain unsafe).
  const sql = connectFunctionsDb(stack.POOLER_URL, 3);
  try {
    await Promise.all([1, 2, 3].map(() => sql`select pg_sleep(${0.05})`)); // every connection open
    const statement = () =>
      unpipelined<{ x: number }[]>(sql, "select 1 as x from pg_sleep(random() * 0.02)");
    for (let round = 0; round < 40; round++) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`round ${round}: an answer never came`), 20_000);
      });
      const all = Promise.all([
        statement(),
        statement(),
        statement(),
        statement(),
        sql.begin(async (tx) => await tx`select ${1}::int as y`),
        sql`select ${2}::int as z`,
        statement(),
      ]).then((answers) => answers.map((rows) => Object.values(rows[0])[0]));
      const outcome = await Promise.race([all, hung]);
      clearTimeout(timer);
      assert.deepEqual(outcome, [1, 1, 1, 1, 1, 2, 1]);
    }
  } finally {
    await sql.end({ timeout: 1 }); // a hung statement would never end on its own
  }
});

Deno.test("statement timeouts are the hosted ones: postgres 2 min, anon 3 s, authenticated and authenticator 8 s (and its lock timeout 8 s)", async () => {
  const sql = connectDb();
  try {
    const [global] = await sql`select current_setting('statement_timeout') as value`;
    assert.equal(global.value, "2min");
    const roles = await sql`
      select rolname, coalesce(array_to_string(rolconfig, ','), '') as config
      from pg_roles
      where rolname in ('anon', 'authenticated', 'authenticator', 'postgres', 'service_role')
      order by rolname`;
    assert.deepEqual(roles.map((r) => [r.rolname, r.config]), [
      ["anon", "statement_timeout=3s"],
      ["authenticated", "statement_timeout=8s"],
      ["authenticator", "statement_timeout=8s,lock_timeout=8s"],
      // No timeout of its own; its search path as a hosted project's roles dump has it.
      ["postgres", 'search_path="$user", public, extensions'],
      ["service_role", ""],
    ]);
    // A statement past the limit is cancelled as hosted (57014 query_canceled); set lower
    // in this transaction only, so the test does not wait 2 minutes.
    await assert.rejects(
      () =>
        sql.begin(async (tx) => {
          await tx`set local statement_timeout = '100ms'`;
          await tx`select pg_sleep(1)`;
        }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "57014");
        assert.match(error.message, /statement timeout/);
        return true;
      },
    );
  } finally {
    await sql.end();
  }
});
