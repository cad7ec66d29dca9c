/**
 * The local stand-in for Supabase's transaction pooler: a real PgBouncer (Debian's
 * `pgbouncer`, installed by scripts/bootstrap.sh) in transaction mode, on POOLER_PORT,
 * in front of the stack's Postgres. The functions gateway gives the Edge Functions its
 * URL as `SYNC_DB_URL` (docs/interfaces.md, "The local stack"), so they reach Postgres as
 * they would through port 6543 of a hosted project.
 *
 * Why PgBouncer: a project's dedicated pooler is PgBouncer, and Supavisor's transaction
 * mode has the same restrictions (https://supabase.com/docs/guides/database/connecting-to-postgres):
 * each transaction may run on another server connection, so anything that needs session
 * state fails here as it would hosted: a prepared statement ("prepared statement ... does
 * not exist"), a session `SET`, a session advisory lock, `LISTEN`, a temporary table used
 * across transactions.
 *
 * Its files (`pgbouncer.ini`, `userlist.txt`) live where the cluster's do
 * (postgres_cluster.ts: `.local/pgbouncer`, or the root-only clone's folder under
 * /var/tmp), because as root PgBouncer runs as the `postgres` user, as Postgres does
 * (it refuses to run as root). Its log is `.local/logs/pooler.log`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HOST, PG_BIN, POOLER_PORT, POSTGRES_PORT } from "../config.ts";
import {
  asRoot,
  chownToPostgres,
  clusterPaths,
  dataDir,
  PASSWORD,
  prepareFallbackDir,
} from "./postgres_cluster.ts";
import {
  logFile,
  portOpen,
  portTaken,
  run,
  runningProcess,
  startDetached,
  stopDetached,
  waitFor,
} from "../processes.ts";
import { certificateFiles, type ServerCertificate } from "./tls_certificates.ts";

/** Where Debian installs PgBouncer. */
export const PGBOUNCER_BIN = "/usr/sbin/pgbouncer";

const NAME = "pooler";

/**
 * Server connections per database and user: small, as a small project's pool is (the
 * dashboard's "pool size" setting; https://supabase.com/docs/guides/database/connecting-to-postgres/pooling-and-limits).
 * More clients than this wait in PgBouncer's queue, as they do hosted.
 */
export const POOL_SIZE = 15;
/** Client connections PgBouncer accepts: a Nano or Micro project's pooler takes 200. */
export const MAX_CLIENTS = 200;

/**
 * The pooler's URL (`pgbouncer=true`: its port is not 6543). Its clients get TLS by
 * libpq's default `sslmode=prefer` (the pooler takes no other); the functions get it with
 * `sslmode=verify-full` as SYNC_DB_URL (project_secrets.ts). No second parameter: an `&`
 * in `.local/stack.env` would end the line for a shell that sources it.
 */
export function poolerUrl(port = POOLER_PORT): string {
  return `postgresql://postgres:${PASSWORD}@${HOST}:${port}/postgres?pgbouncer=true`;
}

/**
 * PgBouncer's version from what `pgbouncer --version` prints ("PgBouncer 1.18.0"), as
 * `[major, minor]`; undefined when the text holds none.
 */
export function pgbouncerVersion(text: string): [number, number] | undefined {
  const match = text.match(/PgBouncer (\d+)\.(\d+)/);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** Whether PgBouncer `version` has the `max_prepared_statements` setting (1.21 and later). */
function tracksPreparedStatements(version: [number, number] | undefined): boolean {
  return version !== undefined && (version[0] > 1 || (version[0] === 1 && version[1] >= 21));
}

/**
 * PgBouncer's configuration: transaction mode, a small pool, SCRAM as hosted. `version`
 * (from {@link pgbouncerVersion}) decides the settings that only some versions know.
 */
export function pgbouncerIni(
  dir: string,
  tls: ServerCertificate,
  port = POOLER_PORT,
  serverPort = POSTGRES_PORT,
  version?: [number, number],
): string {
  return [
    "; Written by local-stack/supabase/pooler.ts at every start.",
    "[databases]",
    `postgres = host=${HOST} port=${serverPort} dbname=postgres`,
    "",
    "[pgbouncer]",
    `listen_addr = ${HOST}`,
    `listen_port = ${port}`,
    "unix_socket_dir =",
    "pool_mode = transaction",
    `default_pool_size = ${POOL_SIZE}`,
    `max_client_conn = ${MAX_CLIENTS}`,
    "auth_type = scram-sha-256",
    `auth_file = ${join(dir, "userlist.txt")}`,
    // Clients must speak TLS (the stack's certificate, tls_certificates.ts): as a hosted
    // project with "Enforce SSL on incoming connections" on, the stricter of its two
    // settings, so that a client that would send the password and the rows in the clear
    // is refused ("SSL required") instead of served. The functions verify the
    // certificate (SYNC_DB_URL's sslmode=verify-full, SYNC_DB_CA_CERT: project_secrets.ts).
    "client_tls_sslmode = require",
    // The hop to Postgres stays in the clear, named rather than left to the version's
    // default (disable until 1.19, prefer since 1.20): the functions see only their own.
    "server_tls_sslmode = disable",
    `client_tls_cert_file = ${tls.certFile}`,
    `client_tls_key_file = ${tls.keyFile}`,
    // Nothing session-wide survives a transaction, even for a client alone: PgBouncer would
    // hand a lone client the server connection it released last (its default), so that a
    // session SET, PREPARE, temporary table or advisory lock seemed to last. Reset after
    // every transaction, the loss is certain, and a function that relies on session state
    // fails here first. Supavisor resets nothing (its transaction mode checks a connection
    // back in as it is, and its pool is LIFO): such state would seem to last there and
    // leak to the next client, which no test through this stand-in can see, so
    // pooler_session_state_test.ts holds the code to transaction scope. (Without DISCARD
    // PLANS: the functions' cached plans are not session state, and Supavisor keeps them.)
    "server_reset_query = RESET ALL; SELECT pg_advisory_unlock_all(); DISCARD TEMP; " +
    "DEALLOCATE ALL; UNLISTEN *",
    "server_reset_query_always = 1",
    // Protocol-level prepared statements fail here as they do hosted: PgBouncer 1.21 learnt
    // to carry them from one server connection to the next, and 1.24 does so by default
    // (max_prepared_statements = 200, https://www.pgbouncer.org/changelog.html), where
    // Supavisor's transaction mode does not ("although the direct connections and
    // Supavisor in session mode support prepared statements, Supavisor in transaction
    // mode does not": https://supabase.com/docs/guides/troubleshooting/disabling-prepared-statements-qL8lEL).
    // A client with postgres.js's default `prepare: true` would pass here and fail there.
    // Supavisor's source has since learnt to carry named prepared statements in
    // transaction mode (supabase/supavisor pull 207) while Supabase's page still says it
    // does not: the stand-in keeps to the page, the stricter word.
    // Older versions know no such setting (and refuse to start on one they do not know).
    ...(tracksPreparedStatements(version) ? ["max_prepared_statements = 0"] : []),
    // A client may wait this long for a server connection, then gets an error: Supavisor
    // gives up a checkout after its user's pool_checkout_timeout ("(ECHECKOUTTIMEOUT)
    // unable to check out connection from the pool after 5000ms in Transaction mode",
    // https://github.com/supabase/supavisor/pull/904), not PgBouncer's default 120 s. Its
    // schema's default is 60,000 ms (lib/supavisor/tenants/user.ex, 2026-08; Supabase's
    // own docs: "the pooler's own 60 second checkout timeout"). PgBouncer's one setting
    // covers both a busy pool and a database that is down, which Supavisor fails at once
    // (EDBHANDLEREXITED, 08006): 5 s here makes a stopped database's refusal come (and be
    // answered 503, and retried) within the tests' budgets. A busy pool's 60 s hosted wait
    // is not tried: it outlasts the Lambda's deadline (the batch retried) and may outlast
    // an isolate's wall clock (killed, its segment taken over at its checkpoint); nothing
    // is lost (README, "Connections: what to set, and why").
    "query_wait_timeout = 5",
    // server_login_retry stays PgBouncer's 15 s: after a failed login (Postgres down or
    // restarting) a project's dedicated pooler, PgBouncer, refuses every client for that
    // long, where Supavisor's pool connects again after 2.5 s (`@reconnect_timeout 2_500`
    // in lib/supavisor/db_handler.ex, https://github.com/supabase/supavisor). Of the two
    // poolers a project may put its functions behind, the stand-in keeps the stricter, as
    // it does for the checkout above.
    "log_connections = 0",
    "log_disconnections = 0",
    // The certificate's digest: PgBouncer reads the files at its start, and a certificate
    // made again (tls_certificates.ts) changes the configuration's fingerprint, so that
    // the pooler starts again with it.
    `; server certificate sha256 ${existsSync(tls.certFile) ? fileDigest(tls.certFile) : "none"}`,
    "",
  ].join("\n");
}

/** The sha256 of a file's bytes, in hex. */
function fileDigest(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** Whether PgBouncer is installed; `stack:up` stops with this message when it is not. */
export function pgbouncerMissing(): string | undefined {
  return existsSync(PGBOUNCER_BIN)
    ? undefined
    : `PgBouncer (${PGBOUNCER_BIN}), the stand-in for Supabase's transaction pooler: ` +
      "run `npm run bootstrap` as root, or `apt-get install pgbouncer`";
}

/**
 * Starts PgBouncer unless it already runs with this configuration; resolves once it
 * accepts connections.
 */
export async function startPooler(): Promise<"started" | "reused"> {
  const missing = pgbouncerMissing();
  if (missing) throw new Error(`stack: missing ${missing}`);
  const paths = await clusterPaths({ name: "pgbouncer", port: POOLER_PORT });
  if (paths.fallback) await prepareFallbackDir(paths.fallback.dir);
  mkdirSync(paths.data, { recursive: true, mode: 0o700 });
  const version = pgbouncerVersion(await run(PGBOUNCER_BIN, ["--version"]));
  // Postgres's own: startPostgres, which `stack:up` runs first, made or checked them.
  const tls = certificateFiles(await dataDir());
  const ini = pgbouncerIni(paths.data, tls, POOLER_PORT, POSTGRES_PORT, version);
  const iniFile = join(paths.data, "pgbouncer.ini");
  const fingerprint = createHash("sha256").update(ini).digest("hex");
  const running = runningProcess(NAME);
  if (running?.fingerprint === fingerprint && await portOpen(HOST, POOLER_PORT)) {
    await waitUntilServing();
    return "reused";
  }
  await stopDetached(NAME);
  if (await portOpen(HOST, POOLER_PORT)) throw portTaken(POOLER_PORT, "the pooler (PgBouncer)");
  writeFileSync(iniFile, ini, { mode: 0o600 });
  writeFileSync(join(paths.data, "userlist.txt"), `"postgres" "${PASSWORD}"\n`, { mode: 0o600 });
  await chownToPostgres(paths.data);
  startDetached({
    name: NAME,
    command: asRoot ? "runuser" : PGBOUNCER_BIN,
    args: asRoot ? ["-u", "postgres", "--", PGBOUNCER_BIN, iniFile] : [iniFile],
    cwd: "/",
    fingerprint,
  });
  await waitFor("the pooler (PgBouncer)", () => portOpen(HOST, POOLER_PORT), 30_000, logFile(NAME));
  await waitUntilServing();
  return "started";
}

/**
 * Waits until a query through the pooler reaches Postgres. After Postgres was away (a
 * restart), PgBouncer refuses clients for `server_login_retry` (15 s) and the first one
 * after that; `stack:up` hands over a pooler that serves.
 */
async function waitUntilServing(): Promise<void> {
  await waitFor(
    "the pooler (PgBouncer) to reach Postgres",
    async () => {
      await run(join(PG_BIN, "psql"), ["-Atc", "select 1", poolerUrl().replace(/\?.*$/, "")]);
      return true;
    },
    60_000,
    logFile(NAME),
  );
}

/** Stops PgBouncer; returns whether it was running. */
export async function stopPooler(): Promise<boolean> {
  return await stopDetached(NAME);
}
