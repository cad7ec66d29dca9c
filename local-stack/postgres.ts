/**
 * The stack's own PostgreSQL 15 cluster: data under `.local/postgres`, loopback port
 * 54322, pg_cron preloaded, Supabase's platform objects (`sql/platform`) applied, and the
 * project's migrations pushed with the real Supabase CLI.
 *
 * @module
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { HOST, LOCAL_DIR, LOG_DIR, PG_BIN, POSTGRES_PORT, ROOT } from "./config.ts";
import { run } from "./processes.ts";

const PASSWORD = "postgres";
const EXTENSION_DIR = "/usr/share/postgresql/15/extension";
const LOG = join(LOG_DIR, "postgres.log");

/** The superuser URL of the stack's database. */
export const DATABASE_URL = `postgresql://postgres:${PASSWORD}@${HOST}:${POSTGRES_PORT}/postgres`;

/** PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user. */
const asRoot = Deno.uid() === 0;

function pgCommand(program: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, program);
  return asRoot ? ["runuser", ["-u", "postgres", "--", path, ...args]] : [path, args];
}

async function pg(program: string, args: string[]): Promise<string> {
  const [command, fullArgs] = pgCommand(program, args);
  return await run(command, fullArgs);
}

/**
 * Where the cluster's files live: `.local/postgres`, unless the repository sits where the
 * `postgres` user cannot reach it (a root-only home directory), then a folder of ours
 * under /var/tmp named after the repository's path.
 */
export async function dataDir(): Promise<string> {
  const inRepo = join(LOCAL_DIR, "postgres");
  if (!asRoot) return inRepo;
  mkdirSync(LOCAL_DIR, { recursive: true });
  try {
    await run("runuser", ["-u", "postgres", "--", "test", "-x", LOCAL_DIR]);
    return inRepo;
  } catch {
    const tag = createHash("sha256").update(ROOT).digest("hex").slice(0, 12);
    return `/var/tmp/dynamo-supabase-sync-${tag}/postgres`;
  }
}

/** The settings the stack adds to postgresql.conf (rewritten at every start). */
function stackConf(): string {
  return [
    "# Written by local-stack/postgres.ts at every `stack:up`.",
    `listen_addresses = '${HOST}'`,
    `port = ${POSTGRES_PORT}`,
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

/** Whether the cluster answers on its port. */
export async function isReady(): Promise<boolean> {
  try {
    await pg("pg_isready", ["-h", HOST, "-p", String(POSTGRES_PORT), "-d", "postgres"]);
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

/** Creates the cluster if needed and starts it; a running cluster is left as it is. */
export async function startPostgres(): Promise<"started" | "reused"> {
  if (await isReady()) return "reused";
  const dir = await dataDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(LOG_DIR, { recursive: true });
  if (!existsSync(LOG)) writeFileSync(LOG, "");
  if (asRoot) {
    await run("chown", ["-R", "postgres:postgres", dir]);
    await run("chown", ["postgres:postgres", LOG]);
  }
  if (!existsSync(join(dir, "PG_VERSION"))) {
    const pwfile = join(dir, "..", "pwfile");
    writeFileSync(pwfile, PASSWORD + "\n");
    if (asRoot) await run("chown", ["postgres:postgres", pwfile]);
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
    const conf = join(dir, "postgresql.conf");
    writeFileSync(conf, readFileSync(conf, "utf8") + "\ninclude 'stack.conf'\n");
  }
  writeFileSync(join(dir, "stack.conf"), stackConf());
  if (asRoot) await run("chown", ["postgres:postgres", join(dir, "stack.conf")]);
  await pg("pg_ctl", ["-D", dir, "-l", LOG, "-w", "-t", "60", "start"]);
  return "started";
}

/** Stops the cluster (fast shutdown); returns whether it was running. */
export async function stopPostgres(): Promise<boolean> {
  const dir = await dataDir();
  if (!existsSync(join(dir, "postmaster.pid"))) return false;
  await pg("pg_ctl", ["-D", dir, "-m", "fast", "-w", "stop"]);
  return true;
}

/** Runs SQL through psql as the superuser, stopping at the first error. */
export async function psql(sql: string, file?: string): Promise<string> {
  const args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", DATABASE_URL];
  return await run(join(PG_BIN, "psql"), file ? [...args, "-f", file] : [...args, "-c", sql]);
}

/** Applies `sql/platform/*.sql` in name order; every file there is idempotent. */
export async function applyPlatformSql(): Promise<string[]> {
  const dir = join(ROOT, "sql", "platform");
  const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  for (const file of files) await psql("", join(dir, file));
  return files;
}

/** Pushes `supabase/migrations` with the real Supabase CLI; returns what it printed. */
export async function pushMigrations(): Promise<string> {
  return await run(join(ROOT, "node_modules", ".bin", "supabase"), [
    "db",
    "push",
    `--remote=${DATABASE_URL}`,
    "--include-all",
    "--yes",
    "--workdir",
    ROOT,
  ], { env: { SUPABASE_YES: "1", DO_NOT_TRACK: "1" } });
}
