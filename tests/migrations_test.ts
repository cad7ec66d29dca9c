/**
 * Migrations are safe to push to a database that already holds an earlier version:
 * a released migration (listed with its SHA-256 in `supabase/released_migrations.sha256`)
 * is never edited afterwards, and the newest migrations apply with `supabase db push`
 * on top of the ones before them without losing data. Until the first release the
 * baseline may still be edited, so that every SQL object is defined in one place.
 */

import assert from "node:assert/strict";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { PORT_OFFSET, ROOT } from "../local-stack/config.ts";
import postgres from "postgres";
import { destroyPostgres, startPostgres } from "../local-stack/supabase/postgres.ts";
import { databaseUrl } from "../local-stack/supabase/postgres_cluster.ts";
import { applyPlatformSql, pushMigrations } from "../local-stack/supabase/postgres_migrations.ts";

const MIGRATIONS = join(ROOT, "supabase", "migrations");
const RELEASED = join(ROOT, "supabase", "released_migrations.sha256");

/** `sha256  file` lines of the released migrations. */
function releasedMigrations(): Map<string, string> {
  const released = new Map<string, string>();
  if (!existsSync(RELEASED)) return released;
  for (const line of readFileSync(RELEASED, "utf8").split("\n")) {
    const m = line.trim().match(/^([0-9a-f]{64})\s+(\S+\.sql)$/);
    if (m) released.set(m[2], m[1]);
  }
  return released;
}

Deno.test("an unreleased migration that locks a table waits at most 5 s for it", () => {
  // Pushed onto a live project, an index, a trigger or an ALTER of a mirror table, of
  // sync_checksums or of the sync schema's tables that every merge writes (tombstones,
  // observations) waits for the merges in flight and holds every later one behind it:
  // with lock_timeout the push fails instead, and is pushed again. (A table the same
  // migration creates has nothing to wait for; the line costs nothing there.)
  const released = releasedMigrations();
  const locks =
    /(create\s+(unique\s+)?index|create\s+(or\s+replace\s+)?(constraint\s+)?trigger|alter\s+table|drop\s+(trigger|index))[^;]*?\b(public|sync)\./i;
  const unbounded = readdirSync(MIGRATIONS)
    .filter((f) => f.endsWith(".sql") && !released.has(f))
    .filter((f) => {
      const sql = readFileSync(join(MIGRATIONS, f), "utf8").replace(/--[^\n]*/g, "");
      return locks.test(sql) && !/set_config\('lock_timeout', '5s', true\)/.test(sql);
    });
  assert.deepEqual(unbounded, [], "these lock a table with no lock_timeout");
});

Deno.test("a released migration is never edited, and none is added before the last release", () => {
  const released = releasedMigrations();
  const files = readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).sort();
  const problems: string[] = [];
  for (const [file, sum] of released) {
    if (!files.includes(file)) {
      problems.push(`${file} was released but is gone`);
      continue;
    }
    const now = createHash("sha256").update(readFileSync(join(MIGRATIONS, file))).digest("hex");
    if (now !== sum) problems.push(`${file} was released and has changed since`);
  }
  const lastReleased = [...released.keys()].sort().at(-1) ?? "";
  for (const file of files) {
    if (!released.has(file) && file < lastReleased) {
      problems.push(`${file} is not released but sorts before the released ${lastReleased}`);
    }
  }
  assert.deepEqual(
    problems,
    [],
    `released migrations must stay as they were; add a new migration instead:\n${
      problems.join("\n")
    }`,
  );
});

/**
 * The SQL objects a migration defines, each as "kind name": functions, procedures, views,
 * tables (unlogged too), types, indexes, triggers, policies and pg_cron jobs, on a line of
 * their own or opening a dynamic definition (`$f$create or replace function ...`,
 * `'create unlogged table ...`). Objects whose name is built by dynamic SQL (`%I`) are
 * not counted.
 */
function definedObjects(sql: string): string[] {
  const ident = String.raw`(?:"[^"]+"|[a-z_][a-z0-9_]*)`;
  const qualified = String.raw`${ident}\.${ident}`;
  const kinds: [RegExp, (m: RegExpExecArray) => string][] = [
    [
      new RegExp(
        String
          .raw`^\s*(?:\$\w*\$|')?create\s+(?:or\s+replace\s+)?(function|procedure|view|materialized\s+view|(?:unlogged\s+)?table|type)\s+(?:if\s+not\s+exists\s+)?(${qualified})`,
        "i",
      ),
      (m) => `${m[1].toLowerCase().replace(/\s+/g, " ").replace("unlogged ", "")} ${m[2]}`,
    ],
    [
      new RegExp(
        String
          .raw`^\s*create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?(${ident})\s+on\s+(?:only\s+)?(${ident})\.`,
        "i",
      ),
      (m) => `index ${m[2]}.${m[1]}`,
    ],
    [
      new RegExp(
        String.raw`^\s*create\s+(?:or\s+replace\s+)?(?:constraint\s+)?trigger\s+(${ident})`,
        "i",
      ),
      (m) => `trigger ${m[1]}`,
    ],
    [
      new RegExp(String.raw`^\s*create\s+policy\s+(${ident})\s+on\s+(${qualified})`, "i"),
      (m) => `policy ${m[1]} on ${m[2]}`,
    ],
    [/\bcron\.schedule\(\s*'([^']+)'/i, (m) => `pg_cron job ${m[1]}`],
  ];
  const found: string[] = [];
  for (const line of sql.split("\n")) {
    for (const [pattern, name] of kinds) {
      const m = pattern.exec(line);
      if (m) found.push(name(m));
    }
  }
  return found;
}

/** The tables a migration alters (`alter table [if exists] [only] x`), as "table x". */
function alteredTables(sql: string): string[] {
  const pattern =
    /^\s*alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?([a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*)/i;
  return sql.split("\n").flatMap((line) => {
    const m = pattern.exec(line);
    return m ? [`table ${m[1]}`] : [];
  });
}

Deno.test("definedObjects names each kind of definition", () => {
  const sql = [
    "create or replace function sync.f(p integer) returns void",
    "    $f$create or replace function sync.is_newer(",
    "create unlogged table sync.staging (",
    "    'create unlogged table sync.staged (",
    "create unique index if not exists t_idx on sync.t (a);",
    "create trigger t_touched",
    'create policy "admins: all" on public.t for all',
    "select cron.schedule('sync-retention', '* * * * *', 'select 1');",
    "create or replace function sync.%I(p_changes jsonb)",
  ].join("\n");
  assert.deepEqual(definedObjects(sql), [
    "function sync.f",
    "function sync.is_newer",
    "table sync.staging",
    "table sync.staged",
    "index sync.t_idx",
    "trigger t_touched",
    'policy "admins: all" on public.t',
    "pg_cron job sync-retention",
  ]);
});

Deno.test("no SQL object is defined in two unreleased migrations", () => {
  // One place per object: a released migration is never edited, so a later one may
  // replace what it defined (once); among the unreleased ones, edited in place until the
  // next release, an object's one definition is edited where it is, and a migration that
  // changes it says so in a comment there. Two definitions left a reader to find which
  // `create or replace` came last (three of sync.claim_write_backs, of them two dead).
  const released = releasedMigrations();
  const where = new Map<string, string[]>();
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).sort()) {
    if (released.has(file)) continue;
    const sql = readFileSync(join(MIGRATIONS, file), "utf8").replace(/--[^\n]*/g, "");
    for (const key of new Set(definedObjects(sql))) {
      where.set(key, [...(where.get(key) ?? []), file]);
    }
  }
  // A table made in an unreleased migration gets its columns, compression and the rest
  // there too: an ALTER of it in another left its definition in two places.
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).sort()) {
    if (released.has(file)) continue;
    const sql = readFileSync(join(MIGRATIONS, file), "utf8").replace(/--[^\n]*/g, "");
    for (const key of new Set(alteredTables(sql))) {
      const made = where.get(key);
      if (made && !made.includes(file)) where.set(key, [...made, `${file} (alter table)`]);
    }
  }
  const twice = [...where].filter(([, files]) => files.length > 1)
    .map(([key, files]) => `${key}: ${files.join(", ")}`);
  assert.deepEqual(
    twice,
    [],
    `defined in more than one unreleased migration:\n${twice.join("\n")}`,
  );
});

Deno.test("no migration makes, changes or drops a role, or runs ALTER SYSTEM", () => {
  // Hosted, supautils reserves Supabase's roles (anon, authenticated, service_role,
  // authenticator, ...) against postgres, whose CREATEROLE would let such a statement
  // pass on the stand-in (which has no supautils) and fail on Supabase (README, "The
  // local stack"); ALTER SYSTEM is the platform's. So none may be in a migration.
  const forbidden = /\b(create|alter|drop)\s+(role|user|group)\b|\balter\s+system\b/i;
  const problems: string[] = [];
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).sort()) {
    readFileSync(join(MIGRATIONS, file), "utf8").split("\n").forEach((line, i) => {
      const code = line.replace(/--.*$/, "");
      if (forbidden.test(code)) problems.push(`${file}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(
    problems,
    [],
    `statements hosted Supabase refuses to postgres:\n${problems.join("\n")}`,
  );
});

Deno.test("a batch claimed with FOR UPDATE SKIP LOCKED is picked once", () => {
  // `x in (select ... limit n for update skip locked)` may be planned as a nested loop
  // that runs the subquery again for every row: a claim of 2 then took 3 (pgTAP 090, once
  // the table's statistics changed); a subquery in FROM may be rescanned the same way. A
  // CTE (never inlined with FOR UPDATE), an array (`= any (array(...))`, an init plan)
  // or a scalar subquery (`= (select ...)`) is evaluated once.
  const problems: string[] = [];
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).sort()) {
    const sql = readFileSync(join(MIGRATIONS, file), "utf8").replace(/--[^\n]*/g, "");
    for (const m of sql.matchAll(/\bskip\s+locked\b/gi)) {
      // The parenthesis that opens the locking SELECT, and the word before it.
      let depth = 0;
      let at = m.index!;
      while (at > 0 && !(sql[at] === "(" && depth === 0)) {
        if (sql[at] === ")") depth++;
        if (sql[at] === "(" && depth > 0) depth--;
        at--;
      }
      const before = /(\w+)\s*$/.exec(sql.slice(Math.max(0, at - 40), at))?.[1]?.toLowerCase();
      if (before === "in" || before === "from" || before === "join") {
        const line = sql.slice(0, at).split("\n").length;
        problems.push(`${file}:${line}: ${before} (select ... skip locked)`);
      }
    }
  }
  assert.deepEqual(problems, [], "these claims may take more than their batch");
});

Deno.test("the newest migration applies on top of the previous version", async () => {
  const files = readdirSync(MIGRATIONS).filter((f) => f.endsWith(".sql")).sort();
  assert.ok(files.length >= 2, "there is a previous version to upgrade from");
  // A cluster of its own: pg_cron lives only in a cluster's `postgres` database.
  const cluster = { name: "postgres-upgrade-test", port: 54329 + PORT_OFFSET };
  const url = databaseUrl(cluster);
  const workdir = mkdtempSync(join(tmpdir(), "migrations-"));
  const db = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await destroyPostgres(cluster);
    await startPostgres(cluster);
    await applyPlatformSql(cluster);
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
