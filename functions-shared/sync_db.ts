/**
 * The Edge Functions' way into Postgres: a small pool per isolate on the connection
 * string of `SYNC_DB_URL` / `SUPABASE_DB_URL` (db_url.ts, settings.ts), and the one call
 * that applies changes: `sync.merge_changes` per table, plus the dead letters, in one
 * transaction. The dead letters are written by dead_letter_writer.ts; what a failure
 * means (retry, the request's fault, the settings') is db_errors.ts's.
 *
 * @module
 */

import { toWire } from "./change_wire.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import { isIPv4 } from "node:net";
import postgres from "postgres";
import { type DbTarget, parseDbUrl } from "./db_url.ts";
import { isDatabaseUnavailable, isDataError } from "./db_errors.ts";
import { recordDeadLetters } from "./dead_letter_writer.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import { NO_DELAY } from "./pg_socket.ts";
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
 * - Nagle's algorithm off, as libpq has it (pg_socket.ts): a long statement's last TCP
 *   segment no longer waits up to 40 ms for the server's acknowledgement.
 */
export function poolOptions(target: DbTarget, pool: PoolSettings): postgres.Options<never> {
  const ssl = target.tls === "disable" ? false : target.tls === "verify-full"
    ? {
      rejectUnauthorized: true,
      ...verifiedHost(target.host),
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
    ...NO_DELAY,
  };
}

/**
 * What `verify-full` checks the server's certificate against: its host name, sent as SNI
 * (`servername`) too; or its IPv4 address, which TLS may not send as SNI. Node's
 * `tls.connect` throws on an address as `servername` ("must not be an IP address": thrown
 * out of the driver's socket handler, it ended the isolate), and with neither given it
 * checks the certificate against the name `localhost` (the driver hands it a socket, not
 * a host), so that a certificate for `localhost` passed for any address. `host` makes it
 * check the address against the certificate's IP entries, as libpq's `verify-full` does.
 */
function verifiedHost(host: string): { servername: string } | { host: string } {
  return isIPv4(host) ? { host } : { servername: host };
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
