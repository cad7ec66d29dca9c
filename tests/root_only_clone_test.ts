/**
 * A clone in a folder that only root can enter (under /root, or a `mktemp -d` folder, as
 * CI makes) still gets a working PostgreSQL cluster when the stack runs as root: the
 * `postgres` user, which runs the server, cannot reach the clone's `.local/`, so its data,
 * password file and log go to the clone's own folder under /var/tmp.
 *
 * The test copies the working tree (tracked and new files, as `git ls-files` lists them)
 * into a fresh 0700 folder and runs the copy's own `local-stack/postgres*.ts` there, with
 * the copy as working directory: a throwaway cluster on port 54331 is created and started,
 * the platform SQL applied, the migrations pushed with the Supabase CLI, a query run, and
 * the cluster destroyed. node_modules is a symlink to this repository's: only root uses it
 * (the Supabase CLI, Deno), never the `postgres` user.
 */

import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { DENO_BIN, PG_BIN, PORT_OFFSET, ROOT } from "../local-stack/config.ts";

const asRoot = Deno.uid() === 0;
const CLUSTER = { name: "postgres-root-only-test", port: 54331 + PORT_OFFSET };

/** What the probe (run in the copy) prints as its last line. */
interface ProbeReport {
  paths: { data: string; log: string; fallback?: { dir: string; logLink: string } };
  start: string;
  dataDirMode: string;
  logLinkTarget: string | null;
  logBytes: number;
  pwfileLeft: boolean;
  dataDirectorySetting: string;
  migrationsApplied: number;
  migrationFiles: number;
  leftAfterDestroy: string[];
}

/**
 * The probe: imports the copy's own local-stack code (relative to its working directory,
 * the copy) and does what `stack:up` does to Postgres, on a throwaway cluster.
 */
const PROBE = `
import { existsSync, lstatSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { PG_BIN, ROOT } from "./local-stack/config.ts";
import { run } from "./local-stack/processes.ts";
import { destroyPostgres, startPostgres } from "./local-stack/supabase/postgres.ts";
import { clusterPaths, databaseUrl } from "./local-stack/supabase/postgres_cluster.ts";
import {
  applyPlatformSql,
  installExtensionFiles,
  pushMigrations,
} from "./local-stack/supabase/postgres_migrations.ts";

const cluster = ${JSON.stringify(CLUSTER)};
const url = databaseUrl(cluster);
const paths = await clusterPaths(cluster);
// First line: where the files go, so that the test can clean up even if the probe dies.
console.log(JSON.stringify({ paths }));
const query = async (sql: string) =>
  (await run(join(PG_BIN, "psql"), ["-X", "-tA", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
    { stdoutOnly: true })).trim();
const report: Record<string, unknown> = { paths };
try {
  await destroyPostgres(cluster);
  report.start = await startPostgres(cluster);
  report.dataDirMode = (statSync(paths.data).mode & 0o777).toString(8);
  const link = paths.fallback?.logLink;
  report.logLinkTarget = link && lstatSync(link).isSymbolicLink() ? readlinkSync(link) : null;
  report.logBytes = statSync(paths.log).size;
  report.pwfileLeft = existsSync(paths.data + ".pwfile");
  installExtensionFiles();
  await applyPlatformSql(cluster);
  await pushMigrations(url);
  report.dataDirectorySetting = await query("show data_directory");
  report.migrationsApplied = Number(
    await query("select count(*) from supabase_migrations.schema_migrations"),
  );
  report.migrationFiles = readdirSync(join(ROOT, "supabase", "migrations"))
    .filter((f) => f.endsWith(".sql")).length;
} finally {
  await destroyPostgres(cluster);
}
report.leftAfterDestroy = [
  paths.data,
  paths.log,
  paths.data + ".pwfile",
  ...(paths.fallback ? [paths.fallback.dir, paths.fallback.logLink] : []),
].filter((p) => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
});
console.log(JSON.stringify(report));
`;

async function command(
  program: string,
  args: string[],
  cwd: string,
): Promise<{ ok: boolean; out: string }> {
  const result = await new Deno.Command(program, {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { ok: result.success, out: text.decode(result.stdout) + text.decode(result.stderr) };
}

/** Whether the `postgres` user can enter a folder. */
async function postgresCanEnter(dir: string): Promise<boolean> {
  return (await command("runuser", ["-u", "postgres", "--", "test", "-x", dir], "/")).ok;
}

/**
 * Copies the working tree (tracked files as they are now, plus new files git does not
 * ignore) into `target`; files deleted from the working tree are left out.
 */
async function copyWorkingTree(target: string): Promise<number> {
  const listed = await command(
    "git",
    ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    ROOT,
  );
  assert.ok(
    listed.ok,
    `git ls-files failed in ${ROOT}; this test needs a git checkout:\n${listed.out}`,
  );
  let copied = 0;
  for (const file of listed.out.split("\0").filter(Boolean)) {
    const from = join(ROOT, file);
    const to = join(target, file);
    let stat;
    try {
      stat = lstatSync(from);
    } catch {
      continue; // deleted in the working tree
    }
    mkdirSync(dirname(to), { recursive: true });
    if (stat.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else if (stat.isFile()) {
      copyFileSync(from, to);
      chmodSync(to, stat.mode & 0o777);
    } else continue;
    copied++;
  }
  return copied;
}

/** Stops and deletes a cluster the probe left behind (it died before its own cleanup). */
async function removeLeftovers(report: Pick<ProbeReport, "paths">): Promise<void> {
  const { data, fallback } = report.paths;
  if (existsSync(join(data, "postmaster.pid"))) {
    await command(
      "runuser",
      ["-u", "postgres", "--", join(PG_BIN, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
      "/",
    );
  }
  if (fallback) rmSync(fallback.dir, { recursive: true, force: true });
}

Deno.test({
  name: asRoot
    ? "a clone in a root-only folder starts, migrates and destroys its own cluster"
    : "a clone in a root-only folder starts its own cluster (ignored: needs root, to make " +
      "a folder the postgres user cannot enter)",
  ignore: !asRoot,
  fn: async () => {
    const parent = Deno.makeTempDirSync({ prefix: "root-only-clone-" });
    let first: Pick<ProbeReport, "paths"> | undefined;
    try {
      chmodSync(parent, 0o700);
      assert.equal(statSync(parent).mode & 0o777, 0o700);
      assert.ok(
        !(await postgresCanEnter(parent)),
        `the postgres user can enter ${parent} (mode 0700, owned by root): nothing to prove`,
      );
      const copy = join(parent, "clone");
      const copied = await copyWorkingTree(copy);
      assert.ok(copied > 0, `nothing was copied into ${copy}`);
      // A worktree whose node_modules is itself a symlink lists it among its files (the
      // ignore rule `node_modules/` matches folders only): the copy's link replaces it.
      rmSync(join(copy, "node_modules"), { force: true });
      symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
      const probe = join(copy, "root_only_probe.ts");
      writeFileSync(probe, PROBE);

      const ran = await command(DENO_BIN, ["run", "-A", "--no-prompt", probe], copy);
      const lines = ran.out.split("\n").filter((l) => l.startsWith("{"));
      if (lines.length > 0) first = JSON.parse(lines[0]);
      assert.ok(
        ran.ok,
        `the copy in ${copy} failed to start, migrate or destroy its cluster (an error ` +
          "saying the postgres user cannot read or write a path means that path is out of " +
          `its reach); the copy's output:\n${ran.out}`,
      );
      const report: ProbeReport = JSON.parse(lines.at(-1)!);

      const { paths } = report;
      assert.ok(paths.fallback, `the cluster stayed in the root-only copy: ${paths.data}`);
      assert.ok(
        paths.data.startsWith("/var/tmp/") && !paths.data.startsWith(parent),
        `data directory ${paths.data} is not under /var/tmp`,
      );
      assert.equal(report.start, "started");
      assert.equal(report.dataDirMode, "700", `initdb needs ${paths.data} to be 0700`);
      assert.equal(
        report.logLinkTarget,
        paths.log,
        `${paths.fallback.logLink} should be a symlink to the log ${paths.log}`,
      );
      assert.ok(report.logBytes > 0, `postgres wrote nothing to its log ${paths.log}`);
      assert.equal(report.pwfileLeft, false, "the password file was left after initdb");
      assert.equal(report.dataDirectorySetting, paths.data);
      assert.ok(report.migrationFiles > 0);
      assert.equal(report.migrationsApplied, report.migrationFiles, "every migration applied");
      assert.deepEqual(report.leftAfterDestroy, [], "destroyPostgres left files behind");
    } finally {
      if (first) await removeLeftovers(first);
      rmSync(parent, { recursive: true, force: true });
    }
  },
});
