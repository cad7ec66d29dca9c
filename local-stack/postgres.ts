/**
 * The stack's own PostgreSQL 15 cluster: data under `.local/postgres`, loopback port
 * 54322, pg_cron preloaded, Supabase's platform objects (`sql/platform`) applied, and the
 * project's migrations pushed with the real Supabase CLI.
 *
 * Every function takes the cluster it works on, defaulting to the stack's; tests start
 * throwaway clusters of their own (another name and port) the same way.
 *
 * As root, the server runs as the `postgres` user, which must reach every file it reads or
 * writes. When it cannot reach the repository's `.local/` (a clone under /root, or in a
 * `mktemp -d` folder), the clusters and their logs live in `POSTGRES_FALLBACK_DIR` under
 * /var/tmp instead, and `.local/logs/<name>.log` is a symlink to the log there.
 *
 * @module
 */

import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  type Stats,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import {
  HOST,
  LOCAL_DIR,
  LOG_DIR,
  PG_BIN,
  POSTGRES_FALLBACK_DIR,
  POSTGRES_PORT,
  ROOT,
} from "./config.ts";
import { portOpen, portTaken, run } from "./processes.ts";

const PASSWORD = "postgres";
const EXTENSION_DIR = "/usr/share/postgresql/15/extension";

/** A PostgreSQL cluster of ours: its folder under `.local/` is named `name`. */
export interface Cluster {
  name: string;
  port: number;
}

/** The stack's cluster. */
export const STACK_CLUSTER: Cluster = { name: "postgres", port: POSTGRES_PORT };

/** The superuser URL of a cluster's `postgres` database. */
export function databaseUrl(cluster: Cluster = STACK_CLUSTER): string {
  return `postgresql://postgres:${PASSWORD}@${HOST}:${cluster.port}/postgres`;
}

/** The superuser URL of the stack's database. */
export const DATABASE_URL: string = databaseUrl();

/** PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user. */
const asRoot = Deno.uid() === 0;

/**
 * Runs a PostgreSQL program, as the `postgres` user when we are root. From `/`: initdb and
 * pg_ctl change back to their working directory after finding their own binary, and fail
 * when that is a folder postgres cannot enter (a root-only clone).
 */
async function pg(program: string, args: string[]): Promise<string> {
  const path = join(PG_BIN, program);
  return asRoot
    ? await run("runuser", ["-u", "postgres", "--", path, ...args], { cwd: "/" })
    : await run(path, args);
}

/** Gives a file or folder to the `postgres` user when we run as root. */
async function chownToPostgres(path: string): Promise<void> {
  if (asRoot) await run("chown", ["-R", "postgres:postgres", path]);
}

/** Whether the `postgres` user passes `test <flag> <path>` (e.g. `-x`: can enter a folder). */
async function postgresCan(flag: "-r" | "-w" | "-x", path: string): Promise<boolean> {
  try {
    await run("runuser", ["-u", "postgres", "--", "test", flag, path], { cwd: "/" });
    return true;
  } catch {
    return false;
  }
}

/** `lstat` of a path, or undefined when nothing (not even a dangling symlink) is there. */
function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Where a cluster's files are. */
export interface ClusterPaths {
  /** The data directory (initdb's `-D`): `.local/<name>`, or `<fallback>/<name>`. */
  data: string;
  /** The server's own log (pg_ctl's `-l`): `.local/logs/<name>.log`, or `<fallback>/<name>.log`. */
  log: string;
  /**
   * Set when the cluster lives outside the repository because the `postgres` user cannot
   * reach `.local/`: the folder under /var/tmp (`POSTGRES_FALLBACK_DIR`), and the symlink in
   * `.local/logs/` that leads the operator to the log.
   */
  fallback?: { dir: string; logLink: string };
}

/**
 * Where a cluster's files live: under `.local/`, unless we are root and the `postgres` user
 * cannot enter `.local/` or `.local/logs/` (the repository sits in a root-only folder); then
 * in this repository's folder under /var/tmp (`POSTGRES_FALLBACK_DIR`).
 */
export async function clusterPaths(cluster: Cluster = STACK_CLUSTER): Promise<ClusterPaths> {
  const inRepo = {
    data: join(LOCAL_DIR, cluster.name),
    log: join(LOG_DIR, `${cluster.name}.log`),
  };
  if (!asRoot) return inRepo;
  mkdirSync(LOG_DIR, { recursive: true });
  if (await postgresCan("-x", LOCAL_DIR) && await postgresCan("-x", LOG_DIR)) return inRepo;
  return {
    data: join(POSTGRES_FALLBACK_DIR, cluster.name),
    log: join(POSTGRES_FALLBACK_DIR, `${cluster.name}.log`),
    fallback: { dir: POSTGRES_FALLBACK_DIR, logLink: inRepo.log },
  };
}

/** A cluster's data directory (see `clusterPaths`). */
export async function dataDir(cluster: Cluster = STACK_CLUSTER): Promise<string> {
  return (await clusterPaths(cluster)).data;
}

/**
 * Creates (or checks) the folder under /var/tmp that holds the clusters of a root-only
 * clone: a real folder (not a symlink: /var/tmp is writable by everyone), belonging to root
 * or postgres, then given to postgres with mode 0700. /var/tmp itself is open to everyone.
 */
async function prepareFallbackDir(dir: string): Promise<void> {
  if (lstatOrUndefined(dir) === undefined) mkdirSync(dir, { mode: 0o700 });
  const stat = lstatSync(dir);
  if (stat.isSymbolicLink() || !stat.isDirectory()) {
    throw new Error(
      `${dir} is not a folder (a symlink or a file is in its place); it is where this ` +
        "clone's Postgres files go: remove it and start again",
    );
  }
  const postgresUid = Number((await run("id", ["-u", "postgres"], { stdoutOnly: true })).trim());
  if (stat.uid !== 0 && stat.uid !== postgresUid) {
    throw new Error(
      `${dir} belongs to uid ${stat.uid}, neither root nor postgres; it is where this ` +
        "clone's Postgres files go: remove it and start again",
    );
  }
  await run("chown", ["postgres:postgres", dir]);
  chmodSync(dir, 0o700);
}

/**
 * Makes `link` (in `.local/logs/`) a symlink to the log at `target`. A log file already at
 * `link` (from a run before the cluster moved) is kept as `<link>.old` unless it is empty.
 */
function linkLog(target: string, link: string): void {
  const stat = lstatOrUndefined(link);
  if (stat?.isSymbolicLink() && readlinkSync(link) === target) return;
  if (stat?.isFile() && stat.size > 0) renameSync(link, `${link}.old`);
  else if (stat !== undefined) rmSync(link, { force: true });
  symlinkSync(target, link);
}

/**
 * Throws, naming the path, when the `postgres` user cannot use a file it must read or
 * write: checked before initdb and pg_ctl, whose own errors name only one symptom.
 */
async function checkPostgresReaches(checks: [path: string, flag: "-r" | "-w"][]): Promise<void> {
  if (!asRoot) return;
  for (const [path, flag] of checks) {
    if (await postgresCan(flag, path)) continue;
    throw new Error(
      `the postgres user cannot ${flag === "-r" ? "read" : "write"} ${path}: it must belong ` +
        "to postgres and every folder above it must be open to postgres (x); " +
        `\`ls -ld\` each level of ${dirname(path)} to find the one that is not`,
    );
  }
}

/** The settings the stack adds to postgresql.conf (rewritten at every start). */
function stackConf(cluster: Cluster): string {
  return [
    "# Written by local-stack/postgres.ts at every start.",
    `listen_addresses = '${HOST}'`,
    `port = ${cluster.port}`,
    "unix_socket_directories = ''",
    "max_connections = 200",
    "shared_preload_libraries = 'pg_cron'",
    "cron.database_name = 'postgres'",
    // pg_net's response retention, as hosted (the local pg_net worker reads it).
    "pg_net.ttl = '6 hours'",
    // Jobs run in background workers, so pg_cron needs no password to connect back.
    "cron.use_background_workers = on",
    "max_worker_processes = 32",
    // As on hosted Supabase, `extensions` is on every role's search path.
    `search_path = '"$user", public, extensions'`,
    "password_encryption = 'scram-sha-256'",
    "log_min_messages = warning",
    "log_line_prefix = '%m [%p] %q%u@%d '",
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
 * Installs our emulations of pg_net and supabase_vault (sql/extensions) as real
 * extensions of the server, so that `create extension pg_net` works as on a hosted
 * project. Writes only when a file differs.
 */
export function installExtensionFiles(): void {
  const source = join(ROOT, "sql", "extensions");
  for (const name of readdirSync(source)) {
    const text = readFileSync(join(source, name), "utf8");
    const target = join(EXTENSION_DIR, name);
    if (existsSync(target) && readFileSync(target, "utf8") === text) continue;
    try {
      writeFileSync(target, text);
    } catch (error) {
      throw new Error(
        `cannot install ${name} into ${EXTENSION_DIR} (${(error as Error).message}): ` +
          "run `npm run stack:up` once as root",
      );
    }
  }
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
  if (ours && await isReady(cluster)) return "reused";
  if (!ours && await portOpen(HOST, cluster.port)) throw portTaken(cluster.port, "Postgres");
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
        "postgres",
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
  writeFileSync(join(dir, "stack.conf"), stackConf(cluster));
  await chownToPostgres(join(dir, "stack.conf"));
  await pg("pg_ctl", ["-D", dir, "-l", paths.log, "-w", "-t", "60", "start"]);
  return "started";
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

/** Runs SQL (or a file of it) through psql, stopping at the first error. */
export async function psql(sql: string, file?: string, url = DATABASE_URL): Promise<string> {
  const args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url];
  return await run(join(PG_BIN, "psql"), file ? [...args, "-f", file] : [...args, "-c", sql]);
}

/** Applies `sql/platform/*.sql` in name order; every file there is idempotent. */
export async function applyPlatformSql(url = DATABASE_URL): Promise<string[]> {
  const dir = join(ROOT, "sql", "platform");
  const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  for (const file of files) await psql("", join(dir, file), url);
  return files;
}

/**
 * Pushes the migrations of `workdir`/supabase/migrations with the real Supabase CLI;
 * returns what it printed.
 */
export async function pushMigrations(url = DATABASE_URL, workdir = ROOT): Promise<string> {
  return await run(join(ROOT, "node_modules", ".bin", "supabase"), [
    "db",
    "push",
    `--remote=${url}`,
    "--include-all",
    "--yes",
    "--workdir",
    workdir,
  ], { env: { SUPABASE_YES: "1", DO_NOT_TRACK: "1" } });
}
