import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { migrationFileVersions, migrationsToPush } from "./postgres_migrations.ts";

Deno.test("a migration's version is the digits before its first underscore, in order", () => {
  const dir = Deno.makeTempDirSync();
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
