/**
 * Migrations are safe to push to a database that already holds an earlier version:
 * a committed migration is never edited afterwards, and the newest migrations apply
 * with `supabase db push` on top of the ones before them without losing data.
 */

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { ROOT } from "../local-stack/config.ts";
import postgres from "postgres";
import {
  applyPlatformSql,
  databaseUrl,
  destroyPostgres,
  pushMigrations,
  startPostgres,
} from "../local-stack/postgres.ts";

const MIGRATIONS = join(ROOT, "supabase", "migrations");

async function git(...args: string[]): Promise<string | undefined> {
  const out = await new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "null" })
    .output();
  return out.success ? new TextDecoder().decode(out.stdout) : undefined;
}

Deno.test("a committed migration is never edited", async (t) => {
  if ((await git("rev-parse", "--git-dir")) === undefined) {
    t.step({ name: "not a git checkout: nothing to compare", ignore: true, fn: () => {} });
    return;
  }
  const edited: string[] = [];
  for (const file of readdirSync(MIGRATIONS).sort()) {
    const path = `supabase/migrations/${file}`;
    const commits = (await git("log", "--format=%H", "--", path))?.trim().split("\n")
      .filter(Boolean) ?? [];
    if (commits.length === 0) continue; // new, not committed yet
    const first = await git("show", `${commits.at(-1)}:${path}`);
    if (commits.length > 1 || first !== readFileSync(join(MIGRATIONS, file), "utf8")) {
      edited.push(`${file} (first committed in ${commits.at(-1)?.slice(0, 8)})`);
    }
  }
  assert.deepEqual(
    edited,
    [],
    `these migrations changed after they were committed; add a new migration instead:\n${
      edited.join("\n")
    }`,
  );
});

Deno.test("the newest migration applies on top of the previous version", async () => {
  const files = readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).sort();
  assert.ok(files.length >= 2, "there is a previous version to upgrade from");
  // A cluster of its own: pg_cron lives only in a cluster's `postgres` database.
  const cluster = { name: "postgres-upgrade-test", port: 54329 };
  const url = databaseUrl(cluster);
  const workdir = mkdtempSync(join(tmpdir(), "migrations-"));
  const db = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await destroyPostgres(cluster);
    await startPostgres(cluster);
    await applyPlatformSql(url);
    mkdirSync(join(workdir, "supabase", "migrations"), { recursive: true });
    copyFileSync(join(ROOT, "supabase", "config.toml"), join(workdir, "supabase", "config.toml"));
    const install = (file: string) =>
      copyFileSync(join(MIGRATIONS, file), join(workdir, "supabase", "migrations", file));
    files.slice(0, -1).forEach(install);
    await pushMigrations(url, workdir);
    await db`insert into public.toledo_dashboard (pk, sk, metrics, sync_changed_at, sync_source)
             values ('kept', 'row', '{"visits": 3}', now(), 'direct')`;

    install(files.at(-1)!);
    const output = await pushMigrations(url, workdir);
    assert.match(output, new RegExp(`Applying migration ${files.at(-1)}`));
    const [row] = await db`select metrics from public.toledo_dashboard where pk = 'kept'`;
    assert.deepEqual(row.metrics, { visits: 3 }, "the upgrade kept the data");
    const versions = await db`select version from supabase_migrations.schema_migrations order by 1`;
    assert.deepEqual(versions.map((v) => `${v.version}`), files.map((f) => f.split("_")[0]));
  } finally {
    await db.end();
    rmSync(workdir, { recursive: true, force: true });
    await destroyPostgres(cluster);
  }
});
