import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  legacyClusterProblem,
  migrationFileVersions,
  migrationsToPush,
  unknownMigrationsProblem,
} from "./postgres_migrations.ts";

Deno.test("a cluster of an older stack is named with the way out; other failures are not", () => {
  const refused = 'psql: error: connection to server at "127.0.0.1", port 54322 failed: ' +
    'FATAL:  password authentication failed for user "supabase_admin"';
  const problem = legacyClusterProblem(refused, "/repo/.local/postgres");
  assert.match(
    problem ?? "",
    /^the Postgres cluster in \/repo\/\.local\/postgres was made by an older stack/,
  );
  assert.match(
    problem ?? "",
    /`npm run stack:down`, `rm -rf \/repo\/\.local\/postgres`, then `npm run stack:up`$/,
  );
  assert.equal(
    legacyClusterProblem("could not connect to server: Connection refused", "/x"),
    undefined,
  );
  assert.equal(
    legacyClusterProblem('password authentication failed for user "postgres"', "/x"),
    undefined,
  );
});

Deno.test("a migration's version is the digits before its first underscore, in order", () => {
  const dir = Deno.makeTempDirSync({ prefix: "migrations-test-" });
  try {
    for (
      const file of [
        "20261128000100_sync_registry.sql",
        "20261128000000_extensions.sql",
        "README.md",
        "notes_20261128000200.sql",
        "20261128000300_merge.sql.bak",
      ]
    ) writeFileSync(join(dir, file), "");
    assert.deepEqual(migrationFileVersions(dir), ["20261128000000", "20261128000100"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the repository's migrations are all read", () => {
  const versions = migrationFileVersions();
  assert.ok(versions.includes("20261128000000"), versions.join(" "));
  assert.equal(new Set(versions).size, versions.length, "each version once");
});

Deno.test("nothing to push only when the history lists exactly the files' versions", () => {
  const files = ["1", "2", "3"];
  assert.deepEqual(migrationsToPush(files, ["1", "2", "3"]), { missing: [], unknown: [] });
  // A new database (no history), a new migration, a history the files do not explain.
  assert.deepEqual(migrationsToPush(files, []), { missing: ["1", "2", "3"], unknown: [] });
  assert.deepEqual(migrationsToPush(files, ["1", "2"]), { missing: ["3"], unknown: [] });
  assert.deepEqual(migrationsToPush(files, ["1", "2", "3", "4"]), {
    missing: [],
    unknown: ["4"],
  });
});

Deno.test("a database that took a migration the checkout no longer has is named, with the rebuild", () => {
  assert.equal(
    unknownMigrationsProblem(["20261128003100"], "/repo/.local/postgres"),
    "the local database has taken migrations this checkout does not have (20261128003100): " +
      "an unreleased migration was removed or renamed since, and the Supabase CLI refuses to " +
      "push to it. Rebuild it from the migrations: npm run stack:down && " +
      "rm -rf /repo/.local/postgres && npm run stack:up",
  );
});
