/**
 * The Edge Functions' way into Postgres: a small pool per isolate on the connection
 * string of `SYNC_DB_URL` / `SUPABASE_DB_URL` (db_url.ts, settings.ts), and the one call
 * that applies changes: `sync.merge_changes` per table, plus the dead letters, in one
 * transaction. The dead letters are written by dead_letter_writer.ts.
 *
 * @module
 */

import { toWire } from "./change_wire.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import postgres from "postgres";
import { type DbTarget, parseDbUrl } from "./db_url.ts";
import { recordDeadLetters } from "./dead_letter_writer.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import type { DeadLetter, TableChange } from "./record_mapping.ts";
import type { TableSpec } from "./table_registry.ts";
import { besideTheMessage } from "./error_text.ts";
import type { Change } from "./transform.ts";

/** How a pool is sized and how long it waits (settings.ts, `SYNC_DB_*`). */
export interface PoolSettings {
  /** Connections the pool may hold at once. */
  max: number;
  /** Seconds to wait for a connection (through a busy pooler too). */
  connectTimeoutS?: number;
  /** Seconds an unused connection stays open. */
  idleTimeoutS?: number;
  /** PEM of the CA that signs the server's certificate, for `sslmode=verify-full`. */
  caCert?: string;
}

/**
 * The driver's options for a target: what the URL names decides them.
 * - A transaction pooler (Supavisor or PgBouncer in transaction mode, port 6543) hands
 *   each transaction to whichever server connection is free, so a statement prepared on
 *   one is unknown on the next: "Supavisor in transaction mode does not [support prepared
 *   statements]" (https://supabase.com/docs/guides/troubleshooting/disabling-prepared-statements-qL8lEL),
 *   hence `prepare: false`. Nor does session state survive (`SET`, session advisory locks,
 *   `LISTEN`, temporary tables): the code keeps all of it inside a transaction
 *   (`set_config(..., true)`, `pg_advisory_xact_lock`).
 * - TLS as `sslmode` asks: `require` encrypts without checking the certificate (libpq's
 *   meaning); `verify-full` checks it and the host name, against `caCert` when given
 *   (Supabase's own CA, downloadable from the dashboard's database settings) else the
 *   system's roots.
 * - No `TimeZone` at connection: PgBouncer would pass it on, Supavisor does not (a
 *   server connection starts with its user, database, application name and search path
 *   only: supabase/supavisor, db_handler.ex), so a session's zone is the database's,
 *   which an admin may change. Nothing may depend on it: the mapping writes every
 *   timestamp with its zone (transform.ts), and the local database runs in a zone far
 *   from UTC (local-stack/supabase/postgres.ts) so that the tests show what would.
 */
export function poolOptions(target: DbTarget, pool: PoolSettings): postgres.Options<never> {
  const ssl = target.tls === "disable" ? false : target.tls === "verify-full"
    ? {
      rejectUnauthorized: true,
      servername: target.host,
      ...(pool.caCert ? { ca: pool.caCert } : {}),
    }
    : target.tls;
  return {
    max: pool.max,
    prepare: !target.transactionPooler,
    ssl,
    idle_timeout: pool.idleTimeoutS ?? 20,
    connect_timeout: pool.connectTimeoutS ?? 10,
    connection: { application_name: "dynamo-supabase-sync" },
    onnotice: () => {},
  };
}

/** The pool settings of a function's settings (settings.ts, `PLATFORM_SETTINGS`). */
export function dbPool(settings: {
  dbPoolMax: number;
  dbConnectTimeoutS: number;
  dbIdleTimeoutS: number;
  dbCaCert: string;
}): PoolSettings {
  return {
    max: settings.dbPoolMax,
    connectTimeoutS: settings.dbConnectTimeoutS,
    idleTimeoutS: settings.dbIdleTimeoutS,
    caCert: settings.dbCaCert || undefined,
  };
}

/**
 * Opens a pool on a connection string (parsed by db_url.ts; a URL string is parsed here)
 * with `pool` connections at most, or the settings of {@link PoolSettings}.
 */
export function connectDb(
  target: string | DbTarget,
  pool: number | PoolSettings = 4,
): postgres.Sql {
  const parsed = typeof target === "string" ? parseDbUrl(target) : target;
  const settings = typeof pool === "number" ? { max: pool } : pool;
  return postgres(parsed.url, poolOptions(parsed, settings));
}

/** A change that Postgres refused, alone, and the dead letter it became. */
export interface RefusedChange {
  change: TableChange;
  deadLetter: DeadLetter;
}

/** What applying a batch did. */
export interface ApplyResult {
  /** Rows (or observations) written or deleted. */
  applied: number;
  /** Dead letters recorded: the ones passed in, and the changes Postgres refused. */
  deadLettered: number;
  /** The changes Postgres refused (each isolated from the rest of its batch). */
  refused: RefusedChange[];
}

/** Options of {@link applyChanges}. */
export interface ApplyOptions {
  /**
   * Record refused changes as dead letters (the default). The replay turns this off:
   * a refused replay keeps its own dead letter open instead.
   */
  deadLetterRefused?: boolean;
  /**
   * The isolate's CPU meter: each merge's encoding is measured on it, so that a page
   * whose refused change is isolated in halves (one statement each) counts what it costs.
   */
  cpu?: CpuMeter;
}

/**
 * Whether Postgres refused a statement for the data it carries: SQLSTATE class 22 (data
 * exception), 23 (integrity constraint violation) or 54 (program limit exceeded).
 */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

/**
 * Applies changes (grouped per table, tables in name order so that concurrent batches
 * cannot deadlock) and records dead letters, inside the caller's transaction `tx`
 * (`sql.begin(tx => applyChanges(tx, ...))`), so that a batch applies whole or not at all.
 *
 * A change that Postgres still refuses for its data (a value the mapping let through)
 * fails alone (docs/sync-semantics.md, "Bad input"): the table's batch is retried in
 * savepoints, halved until the refused change stands alone; it is dead-lettered with
 * Postgres's message and the rest are applied, in the same transaction.
 */
export async function applyChanges(
  tx: postgres.TransactionSql,
  changes: TableChange[],
  deadLetters: DeadLetter[] = [],
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  const byTable = new Map<string, TableChange[]>();
  for (const change of changes) {
    const table = change.spec.targetTable;
    const group = byTable.get(table);
    if (group) group.push(change);
    else byTable.set(table, [change]);
  }
  let applied = 0;
  const refused: RefusedChange[] = [];
  for (const table of [...byTable.keys()].sort()) {
    const result = await mergeIsolating(tx, table, byTable.get(table)!, options.cpu);
    applied += result.applied;
    for (const { change, error } of result.refused) {
      refused.push({ change, deadLetter: refusedLetter(change, error) });
    }
  }
  // Not logged here: the caller logs its dead letters once its transaction has committed
  // (dead_letter_writer.ts, logDeadLetters), so no line names a letter rolled back.
  const letters = options.deadLetterRefused === false
    ? deadLetters
    : [...deadLetters, ...refused.map((r) => r.deadLetter)];
  if (letters.length > 0) await recordDeadLetters(tx, letters);
  return { applied, deadLettered: letters.length, refused };
}

/** One merge of one table's changes. */
async function mergeTable(
  tx: postgres.TransactionSql,
  table: string,
  changes: TableChange[],
  cpu?: CpuMeter,
): Promise<number> {
  const encode = () => encodeJson(changes.map((c) => toWire(c.change)));
  const json = cpu ? cpu.measure(encode) : encode();
  const [result] = await tx.unsafe(
    "select applied from sync.merge_changes($1, $2::text::jsonb)",
    [table, json],
  );
  return Number(result.applied);
}

/**
 * Merges one table's changes in a savepoint; when Postgres refuses them for their data,
 * merges each half the same way, down to single changes, which are returned as refused.
 */
async function mergeIsolating(
  tx: postgres.TransactionSql,
  table: string,
  changes: TableChange[],
  cpu?: CpuMeter,
): Promise<{ applied: number; refused: { change: TableChange; error: Error }[] }> {
  try {
    const applied = await tx.savepoint((sp) => mergeTable(sp, table, changes, cpu));
    return { applied: applied as number, refused: [] };
  } catch (error) {
    if (!isDataError(error)) throw error;
    if (changes.length === 1) {
      return { applied: 0, refused: [{ change: changes[0], error: error as Error }] };
    }
    const middle = Math.ceil(changes.length / 2);
    const first = await mergeIsolating(tx, table, changes.slice(0, middle), cpu);
    const second = await mergeIsolating(tx, table, changes.slice(middle), cpu);
    return {
      applied: first.applied + second.applied,
      refused: [...first.refused, ...second.refused],
    };
  }
}

/** `[column="value", ...]` of a change's target key (and range key), for messages. */
function describeChangeKey(change: Change, spec: TableSpec): string {
  const parts = spec.targetKey.map((column) =>
    `${column}=${encodeJson(change.row[column] ?? null)}`
  );
  if (change.rangeKey !== undefined) parts.push(`range key ${change.rangeKey}`);
  return `[${parts.join(", ")}]`;
}

/** The dead letter of a change Postgres refused, naming the table, the key and the cause. */
function refusedLetter({ spec, change, deadLetter }: TableChange, error: Error): DeadLetter {
  const code = (error as { code?: string }).code;
  const reason = `${spec.targetTable} ${describeChangeKey(change, spec)}: Postgres refused ` +
    `the change: ${error.message}${besideTheMessage(error)} (SQLSTATE ${code})`;
  if (deadLetter) return deadLetter(reason);
  const rowKey = Object.fromEntries(spec.targetKey.map((column) => [column, change.row[column]]));
  return {
    sourceTable: spec.sourceTable,
    targetTable: spec.targetTable,
    eventId: null,
    record: {
      sourceTable: spec.sourceTable,
      targetTable: spec.targetTable,
      change: toWire(change),
    },
    reason,
    position: { seq: change.seq, changedAt: change.changedAt, source: change.source },
    rowKey,
  };
}

/**
 * Whether an error means the database cannot be reached right now (so the request may
 * be retried as it is), rather than that the request itself is wrong: a refused or lost
 * connection, a server shutting down or out of connections, any SQLSTATE of class 08
 * (connection exception). PgBouncer reports its own failures as 08P01, e.g.
 * `query_wait_timeout` (no server connection came free, or the server is down) and
 * `server login has been failing, try again later (server_login_retry)` right after
 * the server came back (https://www.pgbouncer.org/config.html). Supavisor, the hosted
 * pooler, reports its own as XX000 with the reason in parentheses first:
 * `(ECHECKOUTTIMEOUT) unable to check out connection from the pool` when no connection
 * came free, `(EMAXCONN...)` for too many clients, `(ECIRCUITBREAKER)` and
 * `(EDBHANDLEREXITED)` (supabase/supavisor, test/integration/proxy_test.exs), and
 * (lib/supavisor/errors/) `(ECHECKOUTRETRIES)` when the server connections kept dying
 * at checkout (Postgres restarting), `(EPOOLCHECKOUT)`, `(ESUBSCRIBERETRIES)`,
 * `(EMAXPOOLSREACHED)`, `(EPROXYSTARTFAILED)` ("failed to start proxy connection") and
 * `(EPROXYSUPERVISORUNAVAILABLE)` ("proxy supervisor unavailable after retries", both in
 * lib/supavisor/errors/, the proxy to a project's pool not up yet), and `(EAUTHQUERY)`
 * when its password lookup could not reach the
 * database (`auth_query connection failed`, `... timed out`, or its query's connection not
 * available). Its other EAUTHQUERY reasons (a user not found, a secret's format) are a
 * configuration's, not to be retried as they are.
 */
const SUPAVISOR_UNAVAILABLE =
  /^\((ECHECKOUTTIMEOUT|EMAXCONN[A-Z]*|EDBHANDLEREXITED|ECHECKOUTRETRIES|EPOOLCHECKOUT|ESUBSCRIBERETRIES|EMAXPOOLSREACHED|EPROXYSTARTFAILED|EPROXYSUPERVISORUNAVAILABLE)\)|^\(EAUTHQUERY\) (auth_query connection failed|auth_query secret check timed out|authentication query failed: connection to database not available)/;

/**
 * Supavisor before 2.9.0 sent the same failures as bare text, no code in parentheses
 * (supabase/supavisor, lib/supavisor/client_handler/error.ex at 71eb86b7^, the commit
 * that added the codes): "Unable to check out connection from the pool due to timeout"
 * (earlier "process"), "Max client connections reached", "MaxClientsInSessionMode: max
 * clients reached - ...", "Max pools count reached", "Failed to start proxy connection.
 * ...", "Proxy supervisor unavailable", "Failed to subscribe to tenant after multiple
 * retries. Terminating.", "Connection to database closed. ..." and "DbHandler exited.
 * ..." (a server connection lost in use), and "Circuit breaker open: <why>". A hosted
 * project may run either.
 */
const SUPAVISOR_UNAVAILABLE_BEFORE_2_9 =
  /^(unable to check out (connection|process) from the pool|max client connections reached|maxclientsinsessionmode: max clients reached|max pools count reached|failed to start proxy connection|proxy supervisor unavailable|failed to subscribe to tenant after multiple retries|connection to database closed|dbhandler exited|circuit breaker open)/i;

/**
 * Supavisor's circuit breaker, open: for authentication failures (10 in 150 s from one
 * address block it for 120 s: lib/supavisor/circuit_breaker.ex), the login's fault, a
 * password to set right; for anything else, the database's, to retry.
 */
const SUPAVISOR_BREAKER = /^(\(ECIRCUITBREAKER\) |circuit breaker open)/i;
const AUTH_BREAKER = /authentication|auth_error/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string; name?: string };
  const codes = [
    "ECONNREFUSED",
    "ECONNRESET",
    "ETIMEDOUT",
    "EPIPE",
    "CONNECT_TIMEOUT",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "57P03", // cannot_connect_now
    "53300", // too_many_connections
  ];
  return codes.includes(e?.code ?? "") || /^08[0-9A-Z]{3}$/.test(e?.code ?? "") ||
    e?.name === "ConnectionRefused" ||
    /connection refused|connection reset|ECONNREFUSED|terminating connection/i.test(
      e?.message ?? "",
    ) || SUPAVISOR_UNAVAILABLE.test(e?.message ?? "") ||
    SUPAVISOR_UNAVAILABLE_BEFORE_2_9.test(e?.message ?? "") && !isAuthBreaker(e?.message) ||
    SUPAVISOR_BREAKER.test(e?.message ?? "") && !isAuthBreaker(e?.message);
}

/** Whether `message` is Supavisor's breaker opened by failed logins. */
function isAuthBreaker(message: string | undefined): boolean {
  return SUPAVISOR_BREAKER.test(message ?? "") && AUTH_BREAKER.test(message ?? "");
}

/**
 * Whether a connection lost with `error` may have been lost after the server took the
 * statement, so that its transaction may have committed and only the answer is gone: a
 * connection reset, closed or ended while in use, a socket timeout, the backend
 * terminated. False for a connection that was never made (refused, a connect timeout,
 * too many connections, the pooler's own refusals), after which nothing was sent.
 */
export function mayHaveCommitted(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  const inFlight = [
    "ECONNRESET",
    "ETIMEDOUT",
    "EPIPE",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "57P01", // admin_shutdown
    "57P02", // crash_shutdown
    "08006", // connection_failure
    "08003", // connection_does_not_exist
    "08007", // transaction_resolution_unknown
  ];
  // The poolers' own words for a server connection lost while a client held it:
  // Supavisor's (EDBHANDLEREXITED) (supabase/supavisor, lib/supavisor/errors), PgBouncer's
  // "server conn crashed?" (08P01, a code it also gives its query_wait_timeout, which
  // sent nothing: the message tells them apart).
  return isDatabaseUnavailable(error) &&
    (inFlight.includes(e?.code ?? "") ||
      /connection reset|terminating connection|\(EDBHANDLEREXITED\)|^connection to database closed|^dbhandler exited|server conn crashed/i
        .test(
          e?.message ?? "",
        ));
}

/**
 * Whether the database refused the function's connection settings, which no retry of the
 * same request fixes but which are the setting's fault, not the request's: a login
 * refused (SQLSTATE class 28: a password reset in the dashboard and not in SYNC_DB_URL), a
 * database that does not exist (3D000), the pooler not knowing the user or tenant
 * (Supavisor's `(ENOTFOUND)`, `(ETENANTNOTFOUND)` and its other `(EAUTHQUERY)` reasons:
 * supabase/supavisor's lib/supavisor/errors), Supavisor's breaker opened by failed logins
 * (it refuses every login for 120 s, the right password's too), or a server certificate
 * that does not verify.
 */
export function isDatabaseMisconfigured(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  const code = e?.code ?? "";
  const message = e?.message ?? "";
  return /^28[0-9A-Z]{3}$/.test(code) || code === "3D000" ||
    /^\((ENOTFOUND|ETENANTNOTFOUND|EAUTHQUERY)\)/.test(message) && !isDatabaseUnavailable(error) ||
    isAuthBreaker(message) ||
    /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_HAS_EXPIRED|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/
      .test(code);
}

/**
 * Whether a statement was refused because the sync is cut over (`write_back` `cutover`):
 * SQLSTATE SY005, raised by sync.enter_merge and sync.start_validation.
 */
export function isCutOver(error: unknown): boolean {
  return (error as { code?: string })?.code === "SY005";
}

/**
 * Whether a statement failed only because it lost to another one: 40001 serialization
 * failure, 40P01 deadlock, 55P03 lock timeout. The same statement, sent again, passes.
 */
export function lostToAnother(error: unknown): boolean {
  return ["40001", "40P01", "55P03"].includes((error as { code?: string })?.code ?? "");
}

/**
 * Whether a write was refused because the database is read-only (SQLSTATE 25006,
 * "cannot execute INSERT in a read-only transaction"): Supabase puts a project's database
 * in read-only mode when its disk is nearly full ("your database can go into read-only
 * mode which can prevent you inserting and deleting data",
 * https://supabase.com/docs/guides/platform/database-size), as
 * `default_transaction_read_only` does. Nothing is wrong with the batch: it passes once
 * the operator has grown the disk or freed space, and the mode is lifted.
 */
export function isReadOnly(error: unknown): boolean {
  return (error as { code?: string })?.code === "25006";
}

/**
 * Whether a failed statement may succeed as it is if sent again later: the database
 * unavailable ({@link isDatabaseUnavailable}) or read-only ({@link isReadOnly}), the
 * statement lost to another ({@link lostToAnother}) or timed out (57014), or the server
 * short of a resource (class 53). The webhook answers these 503 with Retry-After
 * (docs/interfaces.md: a transient failure), not 500.
 */
export function isTransientFailure(error: unknown): boolean {
  const code = (error as { code?: string })?.code ?? "";
  return isDatabaseUnavailable(error) || isReadOnly(error) || lostToAnother(error) ||
    code === "57014" || /^53[0-9A-Z]{3}$/.test(code);
}

/**
 * Keeps the isolate alive when the driver drops a rejection of a lost connection that
 * nothing awaits (postgres.js can, when a pooler answers a connection with a FATAL
 * error such as PgBouncer's `server_login_retry`): it is logged, and the request that
 * met it has answered 503 already. Any other unhandled rejection still ends the isolate,
 * as the runtime does by default. Call once, at cold start.
 */
export function survivePooledConnectionLoss(log: (line: string) => void = console.error): void {
  globalThis.addEventListener("unhandledrejection", (event) => {
    if (!isDatabaseUnavailable(event.reason)) return;
    event.preventDefault();
    log(`database connection lost: ${(event.reason as Error).message}`);
  });
}
