/**
 * What the stack's database gets besides the server: our emulations of pg_net and
 * supabase_vault installed as extensions (`sql/extensions`), Supabase's platform objects
 * (`sql/platform`: what a hosted project has and the local Postgres lacks), psql, and the
 * project's migrations pushed with the real Supabase CLI.
 *
 * @module
 */

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { PG_BIN, ROOT } from "../config.ts";
import { run } from "../processes.ts";
import {
  adminDatabaseUrl,
  type Cluster,
  DATABASE_URL,
  dataDir,
  STACK_CLUSTER,
} from "./postgres_cluster.ts";

const EXTENSION_DIR = "/usr/share/postgresql/15/extension";

/**
 * What pg_cron's control file gains: `trusted`, so that `postgres`, not a superuser, can
 * create it, as supautils lets it on a hosted project (sql/platform/01-extensions.sql says
 * how the stand-in does the rest).
 */
const CRON_TRUSTED =
  "\n# Added by the local stack (local-stack/supabase/postgres_migrations.ts): " +
  "supautils' privileged extension, emulated.\ntrusted = true\n";

/**
 * Installs our emulations of pg_net and supabase_vault (sql/extensions) as real
 * extensions of the server, so that `create extension pg_net` works as on a hosted
 * project, and marks Debian's pg_cron trusted (`CRON_TRUSTED`). Writes only when a file
 * differs.
 */
export function installExtensionFiles(): void {
  const source = join(ROOT, "sql", "extensions");
  const files = readdirSync(source).map((name) => ({
    target: join(EXTENSION_DIR, name),
    text: readFileSync(join(source, name), "utf8"),
  }));
  const cron = join(EXTENSION_DIR, "pg_cron.control");
  const cronText = existsSync(cron) ? readFileSync(cron, "utf8") : "";
  if (!/^\s*trusted\s*=/m.test(cronText)) {
    files.push({ target: cron, text: cronText + CRON_TRUSTED });
  }
  for (const { target, text } of files) {
    const name = basename(target);
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
 * Runs SQL (or a file of it) through psql, stopping at the first error. SQL that holds
 * `secrets` is given on stdin (never on the command line, which every local user can
 * read), and a failure's message has them written over (psql quotes the failing line).
 */
export async function psql(
  sql: string,
  file?: string,
  url = DATABASE_URL,
  secrets: string[] = [],
): Promise<string> {
  const args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url];
  if (secrets.length === 0) {
    return await run(join(PG_BIN, "psql"), file ? [...args, "-f", file] : [...args, "-c", sql]);
  }
  try {
    return await run(join(PG_BIN, "psql"), [...args, "-f", "-"], { stdin: sql });
  } catch (error) {
    // psql quotes the failing line (LINE n:, then a ^ under the error), cut to a window
    // that may hold part of a secret: those lines go.
    let message = (error as Error).message.split("\n")
      .filter((line) => !/^(psql:.*)?LINE \d+:|^\s*\^\s*$/.test(line)).join("\n");
    for (const secret of secrets) if (secret) message = message.replaceAll(secret, "***");
    throw new Error(message);
  }
}

/**
 * Why a cluster refused its superuser's login, when it is a cluster made before the
 * stack had a superuser of its own (initdb's user was `postgres`, and the old platform SQL
 * made `supabase_admin` without a password): such a cluster cannot be turned into a
 * hosted-like one in place, so the answer names the way out. Undefined for any other
 * failure (the caller rethrows it).
 */
export function legacyClusterProblem(failure: string, dataDir: string): string | undefined {
  if (!/authentication failed for user "supabase_admin"/.test(failure)) return undefined;
  return `the Postgres cluster in ${dataDir} was made by an older stack, with \`postgres\` as ` +
    "its superuser; hosted Supabase's `postgres` is not one, and neither is the stack's " +
    `now. Make it anew (its local data goes): \`npm run stack:down\`, \`rm -rf ${dataDir}\`, ` +
    "then `npm run stack:up`";
}

/**
 * Applies `sql/platform/*.sql` in name order, as the cluster's superuser (the platform's
 * part, never the project's); every file there is idempotent. A cluster of an older stack
 * is refused with the way out (`legacyClusterProblem`).
 */
export async function applyPlatformSql(cluster: Cluster = STACK_CLUSTER): Promise<string[]> {
  const url = adminDatabaseUrl(cluster);
  try {
    await psql("select 1", undefined, url);
  } catch (error) {
    const problem = legacyClusterProblem(String(error), await dataDir(cluster));
    if (problem) throw new Error(problem);
    throw error;
  }
  const dir = join(ROOT, "sql", "platform");
  const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
  for (const file of files) await psql("", join(dir, file), url);
  return files;
}

/**
 * The versions of the migration files in `dir`, as the Supabase CLI reads them: the digits
 * before the first `_` of each `<version>_<name>.sql` (other files are not migrations).
 */
export function migrationFileVersions(dir = join(ROOT, "supabase", "migrations")): string[] {
  return readdirSync(dir)
    .map((file) => /^([0-9]+)_.*\.sql$/.exec(file)?.[1])
    .filter((version): version is string => version !== undefined)
    .sort();
}

/**
 * The versions in `files` that the database's migration history lacks; and whether the
 * history lists a version no file has (the CLI then refuses to push, and says so).
 */
export function migrationsToPush(
  files: readonly string[],
  applied: readonly string[],
): { missing: string[]; unknown: string[] } {
  const have = new Set(applied);
  const local = new Set(files);
  return {
    missing: files.filter((version) => !have.has(version)),
    unknown: applied.filter((version) => !local.has(version)),
  };
}

/**
 * What to do when the local database's history lists migrations no file has (`unknown`):
 * an unreleased migration was removed or renamed since the database took it (they are
 * edited in place until a release, CHANGELOG "Unreleased"), and `db push` refuses such a
 * database. The local database is rebuilt from the migrations: its data is the tests'.
 */
export function unknownMigrationsProblem(unknown: readonly string[], dataDir: string): string {
  return `the local database has taken migrations this checkout does not have ` +
    `(${unknown.join(", ")}): an unreleased migration was removed or renamed since, and the ` +
    `Supabase CLI refuses to push to it. Rebuild it from the migrations: ` +
    `npm run stack:down && rm -rf ${dataDir} && npm run stack:up`;
}

/**
 * The versions the database's migration history holds: the Supabase CLI records each
 * migration it applied as a row of `supabase_migrations.schema_migrations` (version, name,
 * statements; https://pkg.go.dev/github.com/supabase/cli/internal/migration/history), and
 * `db push` applies the files whose version is not there. None when the table is missing
 * (a new database).
 */
export async function appliedMigrationVersions(url = DATABASE_URL): Promise<string[]> {
  const query = (sql: string) =>
    run(join(PG_BIN, "psql"), ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql], {
      stdoutOnly: true,
    });
  // Two statements: one naming a missing table fails when it is parsed, whatever a CASE
  // around it says.
  const exists = await query(
    "select to_regclass('supabase_migrations.schema_migrations') is not null",
  );
  if (exists.trim() !== "t") return [];
  const out = await query(
    "select coalesce(string_agg(version, ' ' order by version), '') from supabase_migrations.schema_migrations",
  );
  return out.trim().split(/\s+/).filter((version) => version !== "");
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
