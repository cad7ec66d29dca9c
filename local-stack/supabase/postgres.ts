/**
 * The stack's own PostgreSQL 15 cluster, started and stopped: data under `.local/postgres`
 * (or the root-only fallback, postgres_cluster.ts), loopback port 54322, pg_cron
 * preloaded. Supabase's platform objects and the project's migrations are applied by
 * postgres_migrations.ts.
 *
 * Every function takes the cluster it works on, defaulting to the stack's; tests start
 * throwaway clusters of their own (another name and port) the same way.
 *
 * @module
 */

import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { HOST } from "../config.ts";
import { portOpen, portTaken, sleep } from "../processes.ts";
import {
  ADMIN_ROLE,
  checkPostgresReaches,
  chownToPostgres,
  type Cluster,
  clusterPaths,
  dataDir,
  linkLog,
  lstatOrUndefined,
  PASSWORD,
  pg,
  prepareFallbackDir,
  STACK_CLUSTER,
} from "./postgres_cluster.ts";
import { ensureServerCertificate, type ServerCertificate } from "./tls_certificates.ts";

/**
 * The settings the stack adds to postgresql.conf (rewritten at every start). `sockets`:
 * the folder of the server's one Unix socket, inside its data directory (only the OS user
 * the server runs as, `postgres` when the stack runs as root, and root can reach it),
 * where pg_cron's jobs connect.
 */
function stackConf(cluster: Cluster, sockets: string, tls: ServerCertificate): string {
  return [
    "# Written by local-stack/supabase/postgres.ts at every start.",
    `listen_addresses = '${HOST}'`,
    `port = ${cluster.port}`,
    // TLS offered, as on every hosted database (tls_certificates.ts), not required: a
    // project accepts connections without it unless its "Enforce SSL" toggle is on. The
    // functions reach Postgres through the pooler, which requires it (pooler.ts).
    "ssl = on",
    `ssl_cert_file = '${tls.certFile}'`,
    `ssl_key_file = '${tls.keyFile}'`,
    `unix_socket_directories = '${sockets}'`,
    "unix_socket_permissions = 0700",
    // The smallest hosted compute's: "Nano (free) ... Connections: Direct 60"
    // (https://supabase.com/docs/guides/platform/compute-add-ons). Peaks measured: 19
    // backends in `npm start`, 18 on each stack in `npm test` (pg_stat_activity, 0.4 s).
    "max_connections = 60",
    "shared_preload_libraries = 'pg_cron'",
    "cron.database_name = 'postgres'",
    // pg_net's response retention, as hosted (the local pg_net worker reads it).
    "pg_net.ttl = '6 hours'",
    // pg_cron runs each job over a connection of its own (libpq), as on a hosted project,
    // where `cron.use_background_workers` is off: a job takes one of the 60 connections
    // while it runs, and fails as any client when none is free. It connects through the
    // socket above (initdb's local trust), so it needs no password; `cron.host` is also
    // the `nodename` cron.schedule gives the jobs.
    `cron.host = '${sockets}'`,
    "max_worker_processes = 32",
    // As on hosted Supabase, `extensions` is on every role's search path.
    `search_path = '"$user", public, extensions'`,
    "password_encryption = 'scram-sha-256'",
    // Hosted, every statement is cut at 2 minutes unless its role says otherwise: "postgres:
    // none (capped by default global timeout to be 2min)"
    // (https://supabase.com/docs/guides/database/postgres/timeouts, "Role level"). The
    // functions, pg_cron's jobs and migrations run as postgres, so they meet this limit.
    "statement_timeout = '2min'",
    // As hosted (supabase/postgres, ansible/files/postgresql_config/postgresql.conf.j2):
    // floats print with 15 significant digits unless a client asks for more.
    "extra_float_digits = 0",
    // Hosted, "every Supabase database is set to UTC timezone by default", and an admin may
    // change it ("alter database postgres set timezone to ...",
    // https://supabase.com/docs/guides/database/postgres/configuration, "Managing
    // timezones"); Supavisor does not pass a client's TimeZone on (functions-shared/
    // sync_db.ts). Here the sessions get a zone far from UTC, with a 45-minute offset, so
    // that anything reading a time in the session's zone instead of UTC fails the tests.
    "timezone = 'Pacific/Chatham'",
    "log_min_messages = warning",
    "log_line_prefix = '%m [%p] %q%u@%d '",
    // Diagnostics of the stand-in's own log, not a platform limit: a wait for a lock past
    // deadlock_timeout (1 s) is logged with the sessions it waits for, and a statement
    // over 5 s with its text (parameters cut at 200 bytes: a page's JSON is a megabyte;
    // the webhook's batch is in its statement's text, logged whole, up to 1 MB a line).
    // Twice in rounds 80 and 81 a validation stood still for a minute with nothing in
    // any log to say where (docs/performance.md, "Validation").
    "log_lock_waits = on",
    "log_min_duration_statement = '5s'",
    "log_parameter_max_length = 200",
    // And the plan of such a statement, a function's own statements included (its dynamic
    // SQL, its cached plans: round 82's 70× batches were a plan cached while a table was
    // empty), without timing each node (no `log_analyze`): below 5 s, a timer per
    // statement, well under a microsecond.
    // Hosted has auto_explain too: its settings are among those the `postgres` role may
    // set ("Superuser settings",
    // https://supabase.com/docs/guides/database/custom-postgres-config).
    "session_preload_libraries = 'auto_explain'",
    "auto_explain.log_min_duration = '5s'",
    "auto_explain.log_nested_statements = on",
    "",
  ].join("\n");
}

/** Whether a cluster answers on its port. */
export async function isReady(cluster: Cluster = STACK_CLUSTER): Promise<boolean> {
  try {
    await pg("pg_isready", ["-h", HOST, "-p", String(cluster.port), "-d", "postgres"]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws, before anything is made, when the server's Unix socket (where pg_cron's jobs
 * connect) would have a path longer than the 107 bytes of Linux's sockaddr_un, which
 * Postgres refuses.
 */
function checkSocketPath(socket: string): void {
  if (new TextEncoder().encode(socket).length <= 107) return;
  throw new Error(
    `the Postgres server's Unix socket (where pg_cron's jobs connect) would be ${socket}, ` +
      "longer than the 107 bytes a Unix socket's path may have: clone the repository into " +
      "a shorter path",
  );
}

/**
 * Creates a cluster if needed and starts it; a running cluster is left as it is. As root,
 * everything the server reads or writes (data directory, password file, log) belongs to the
 * `postgres` user and sits where it can reach it (see `clusterPaths`).
 */
export async function startPostgres(
  cluster: Cluster = STACK_CLUSTER,
): Promise<"started" | "reused"> {
  const paths = await clusterPaths(cluster);
  const dir = paths.data;
  const ours = existsSync(join(dir, "postmaster.pid"));
  if (ours && await isReady(cluster)) {
    // Certificates made again (unreadable, or near their end) are read at a reload.
    if ((await ensureServerCertificate(dir)).made) await pg("pg_ctl", ["-D", dir, "reload"]);
    return "reused";
  }
  if (!ours && await portOpen(HOST, cluster.port)) throw portTaken(cluster.port, "Postgres");
  checkSocketPath(join(dir, "sockets", `.s.PGSQL.${cluster.port}`));
  if (paths.fallback) await prepareFallbackDir(paths.fallback.dir);
  // initdb wants the data directory 0700 (or 0750) and its own.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(dirname(paths.log), { recursive: true });
  if (!existsSync(paths.log)) writeFileSync(paths.log, "");
  await chownToPostgres(dir);
  await chownToPostgres(paths.log);
  if (paths.fallback) linkLog(paths.log, paths.fallback.logLink);
  await checkPostgresReaches([[dir, "-w"], [paths.log, "-w"]]);
  if (!existsSync(join(dir, "PG_VERSION"))) {
    const pwfile = `${dir}.pwfile`;
    writeFileSync(pwfile, PASSWORD + "\n", { mode: 0o600 });
    try {
      await chownToPostgres(pwfile);
      await checkPostgresReaches([[pwfile, "-r"]]);
      await pg("initdb", [
        "-D",
        dir,
        "-U",
        ADMIN_ROLE,
        "--pwfile",
        pwfile,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
      ]);
    } finally {
      rmSync(pwfile, { force: true });
    }
    const conf = join(dir, "postgresql.conf");
    writeFileSync(conf, readFileSync(conf, "utf8") + "\ninclude 'stack.conf'\n");
  }
  const sockets = join(dir, "sockets");
  mkdirSync(sockets, { recursive: true, mode: 0o700 });
  await chownToPostgres(sockets);
  writeFileSync(
    join(dir, "stack.conf"),
    stackConf(cluster, sockets, await ensureServerCertificate(dir)),
  );
  await chownToPostgres(join(dir, "stack.conf"));
  await pgCtlStart(dir, paths.log, cluster.port);
  return "started";
}

/**
 * `pg_ctl start`, tried again while the port is held by one end of a connection rather
 * than by a server. The stack's Postgres port (54322 plus the offset) lies in Linux's
 * ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`: 32768-60999), which the
 * kernel hands to outgoing connections, so on a busy machine (npm test's second stack
 * starting, or Postgres started again by database_down_test.ts) a client's socket may hold
 * it for a moment, and Postgres stops with "could not bind IPv4 address: Address already
 * in use". A server listening there is another matter: refused at once (portTaken).
 */
async function pgCtlStart(dir: string, log: string, port: number): Promise<void> {
  // A client's end of a closed connection stays in TIME_WAIT for 60 s (Linux's
  // TCP_TIMEWAIT_LEN) and keeps the port from a server's bind all that while.
  const deadline = Date.now() + 75_000;
  for (;;) {
    const logged = statSync(log).size;
    try {
      await pg("pg_ctl", ["-D", dir, "-l", log, "-w", "-t", "60", "start"]);
      return;
    } catch (error) {
      const said = readFileSync(log).subarray(logged).toString("utf8");
      if (!/could not bind .*Address already in use/.test(said)) throw error;
      if (await portOpen(HOST, port)) throw portTaken(port, "Postgres");
      if (Date.now() > deadline) {
        throw new Error(
          `Postgres could not bind port ${port} for 75 s: no server listens there, so one end ` +
            `of a connection holds it (see \`ss -tan 'sport = :${port}'\`); stop what holds ` +
            `it, or move the stack with STACK_PORT_OFFSET`,
        );
      }
      console.error(`stack: port ${port} is held by a connection's end; starting Postgres again`);
      await sleep(1_000);
    }
  }
}

/** Stops a cluster (fast shutdown); returns whether it was running. */
export async function stopPostgres(cluster: Cluster = STACK_CLUSTER): Promise<boolean> {
  const dir = await dataDir(cluster);
  if (!existsSync(join(dir, "postmaster.pid"))) return false;
  await pg("pg_ctl", ["-D", dir, "-m", "fast", "-w", "stop"]);
  return true;
}

/**
 * Stops a cluster and deletes its files. Outside the repository (see `clusterPaths`) that
 * includes its log and the symlink to it, and the folder under /var/tmp once it is empty.
 */
export async function destroyPostgres(cluster: Cluster): Promise<void> {
  await stopPostgres(cluster);
  const paths = await clusterPaths(cluster);
  rmSync(paths.data, { recursive: true, force: true });
  rmSync(`${paths.data}.pwfile`, { force: true });
  if (!paths.fallback) return;
  rmSync(paths.log, { force: true });
  if (lstatOrUndefined(paths.fallback.logLink)?.isSymbolicLink()) {
    rmSync(paths.fallback.logLink, { force: true });
  }
  if (existsSync(paths.fallback.dir) && readdirSync(paths.fallback.dir).length === 0) {
    rmdirSync(paths.fallback.dir);
  }
}
