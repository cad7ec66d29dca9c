/**
 * Which PostgreSQL cluster, and where its files are: a cluster of ours is a name and a
 * port; its data and log live under `.local/`, except as root when the `postgres` user
 * cannot reach `.local/` (a clone under /root, or in a `mktemp -d` folder): then the
 * clusters and their logs live in `POSTGRES_FALLBACK_DIR` under /var/tmp, and
 * `.local/logs/<name>.log` is a symlink to the log there (README, "The local stack").
 * Also how PostgreSQL's programs run as the `postgres` user when we are root.
 * postgres.ts starts and stops clusters with these.
 *
 * @module
 */

import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  type Stats,
  symlinkSync,
} from "node:fs";
import { dirname, join } from "node:path";
import {
  HOST,
  LOCAL_DIR,
  LOG_DIR,
  PG_BIN,
  POSTGRES_FALLBACK_DIR,
  POSTGRES_PORT,
} from "../config.ts";
import { run } from "../processes.ts";

/** The password of both roles that log in to a cluster of ours (below). */
export const PASSWORD = "postgres";

/**
 * The cluster's superuser, the one initdb creates: `supabase_admin`, as on a hosted
 * project, where it is the platform's role and `postgres` is not a superuser
 * (https://supabase.com/docs/guides/database/postgres/roles-superuser; supabase/postgres's
 * migrate.sh runs its setup as supabase_admin, and demote-postgres.sql turns `postgres`
 * into `NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION BYPASSRLS`). Only the stand-ins
 * of the platform's own parts log in as it: the platform SQL (sql/platform) and the
 * pg_net worker, as pg_net's background worker runs as the bootstrap superuser; and the
 * export bench's baselines, which copy through the server's files.
 */
export const ADMIN_ROLE = "supabase_admin";

/** A PostgreSQL cluster of ours: its folder under `.local/` is named `name`. */
export interface Cluster {
  name: string;
  port: number;
}

/** The stack's cluster. */
export const STACK_CLUSTER: Cluster = { name: "postgres", port: POSTGRES_PORT };

/**
 * The URL of a cluster's `postgres` database as the `postgres` role: the project's role,
 * what migrations, functions, tests and operators use, not a superuser (see `ADMIN_ROLE`).
 */
export function databaseUrl(cluster: Cluster = STACK_CLUSTER): string {
  return `postgresql://postgres:${PASSWORD}@${HOST}:${cluster.port}/postgres`;
}

/** The stack's database as the `postgres` role (see `databaseUrl`). */
export const DATABASE_URL: string = databaseUrl();

/** The URL of a cluster's `postgres` database as its superuser (see `ADMIN_ROLE`). */
export function adminDatabaseUrl(cluster: Cluster = STACK_CLUSTER): string {
  return asAdminUrl(databaseUrl(cluster));
}

/** A cluster's URL (as `postgres`, say `DATABASE_URL` of stack.env) as its superuser. */
export function asAdminUrl(url: string): string {
  const admin = new URL(url);
  admin.username = ADMIN_ROLE;
  return admin.href;
}

/** PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user. */
export const asRoot = Deno.uid() === 0;

/**
 * Runs a PostgreSQL program, as the `postgres` user when we are root. From `/`: initdb and
 * pg_ctl change back to their working directory after finding their own binary, and fail
 * when that is a folder postgres cannot enter (a root-only clone).
 */
export async function pg(program: string, args: string[]): Promise<string> {
  const path = join(PG_BIN, program);
  return asRoot
    ? await run("runuser", ["-u", "postgres", "--", path, ...args], { cwd: "/" })
    : await run(path, args);
}

/** Gives a file or folder to the `postgres` user when we run as root. */
export async function chownToPostgres(path: string): Promise<void> {
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
export function lstatOrUndefined(path: string): Stats | undefined {
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
export async function prepareFallbackDir(dir: string): Promise<void> {
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
export function linkLog(target: string, link: string): void {
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
export async function checkPostgresReaches(
  checks: [path: string, flag: "-r" | "-w"][],
): Promise<void> {
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
