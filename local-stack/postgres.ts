/**
 * The stack's own PostgreSQL 15 cluster: data under `.local/postgres`, loopback port
 * 54322, pg_cron preloaded, Supabase's platform objects (`sql/platform`) applied, and the
 * project's migrations pushed with the real Supabase CLI.
 *
 * Every function takes the cluster it works on, defaulting to the stack's; tests start
 * throwaway clusters of their own (another name and port) the same way.
 *
 * @module
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { HOST, LOCAL_DIR, LOG_DIR, PG_BIN, POSTGRES_PORT, ROOT } from "./config.ts";
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

async function pg(program: string, args: string[]): Promise<string> {
  const path = join(PG_BIN, program);
  return asRoot
    ? await run("runuser", ["-u", "postgres", "--", path, ...args])
    : await run(path, args);
}

/** Gives a file or folder to the `postgres` user when we run as root. */
async function chownToPostgres(path: string): Promise<void> {
  if (asRoot) await run("chown", ["-R", "postgres:postgres", path]);
}

/**
 * Where a cluster's files live: `.local/<name>`, unless the repository sits where the
 * `postgres` user cannot reach it (a root-only home directory), then a folder of ours
 * under /var/tmp named after the repository's path.
 */
export async function dataDir(cluster: Cluster = STACK_CLUSTER): Promise<string> {
  const inRepo = join(LOCAL_DIR, cluster.name);
  if (!asRoot) return inRepo;
  mkdirSync(LOCAL_DIR, { recursive: true });
  try {
    await run("runuser", ["-u", "postgres", "--", "test", "-x", LOCAL_DIR]);
    return inRepo;
  } catch {
    const tag = createHash("sha256").update(ROOT).digest("hex").slice(0, 12);
    return `/var/tmp/dynamo-supabase-sync-${tag}/${cluster.name}`;
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

/** Creates a cluster if needed and starts it; a running cluster is left as it is. */
export async function startPostgres(
  cluster: Cluster = STACK_CLUSTER,
): Promise<"started" | "reused"> {
  const dir = await dataDir(cluster);
  const ours = existsSync(join(dir, "postmaster.pid"));
  if (ours && await isReady(cluster)) return "reused";
  if (!ours && await portOpen(HOST, cluster.port)) throw portTaken(cluster.port, "Postgres");
  const log = join(LOG_DIR, `${cluster.name}.log`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(LOG_DIR, { recursive: true });
  if (!existsSync(log)) writeFileSync(log, "");
  await chownToPostgres(dir);
  await chownToPostgres(log);
  if (!existsSync(join(dir, "PG_VERSION"))) {
    const pwfile = `${dir}.pwfile`;
    writeFileSync(pwfile, PASSWORD + "\n");
    await chownToPostgres(pwfile);
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
    rmSync(pwfile);
    const conf = join(dir, "postgresql.conf");
    writeFileSync(conf, readFileSync(conf, "utf8") + "\ninclude 'stack.conf'\n");
  }
  writeFileSync(join(dir, "stack.conf"), stackConf(cluster));
  await chownToPostgres(join(dir, "stack.conf"));
  await pg("pg_ctl", ["-D", dir, "-l", log, "-w", "-t", "60", "start"]);
  return "started";
}

/** Stops a cluster (fast shutdown); returns whether it was running. */
export async function stopPostgres(cluster: Cluster = STACK_CLUSTER): Promise<boolean> {
  const dir = await dataDir(cluster);
  if (!existsSync(join(dir, "postmaster.pid"))) return false;
  await pg("pg_ctl", ["-D", dir, "-m", "fast", "-w", "stop"]);
  return true;
}

/** Stops a cluster and deletes its files. */
export async function destroyPostgres(cluster: Cluster): Promise<void> {
  await stopPostgres(cluster);
  rmSync(await dataDir(cluster), { recursive: true, force: true });
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
