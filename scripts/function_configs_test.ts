/**
 * Each Edge Function resolves exactly the packages the repository does, so the one
 * `deno check` of `npm test` types the functions as their own configs would
 * (scripts/function_configs.ts); and the check names a drift when there is one.
 */

import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../local-stack/config.ts";
import { configDrift, functionDirs } from "./function_configs.ts";

Deno.test("every function's deno.json and deno.lock agree with the repository's", () => {
  assert.deepEqual(
    functionDirs(ROOT).map((d) => d.slice(d.lastIndexOf("/") + 1)),
    ["data-checksum-validator", "import-worker", "mmp-toledo-sync", "stream-check", "write-back"],
  );
  assert.deepEqual(configDrift(ROOT), []);
});

/** A copy of the repository's configs and one function's, to break. */
function copy() {
  const dir = mkdtempSync(join(tmpdir(), "function-configs-"));
  for (const file of ["deno.json", "deno.lock"]) cpSync(join(ROOT, file), join(dir, file));
  const fn = join(dir, "supabase", "functions", "import-worker");
  cpSync(join(ROOT, "supabase", "functions", "import-worker"), fn, { recursive: true });
  const edit = (file: string, change: (json: Record<string, Record<string, unknown>>) => void) => {
    const json = JSON.parse(readFileSync(file, "utf8"));
    change(json);
    writeFileSync(file, JSON.stringify(json));
  };
  return { dir, fn, edit, remove: () => rmSync(dir, { recursive: true }) };
}

Deno.test("a function mapping a package to another version is named", () => {
  const c = copy();
  try {
    assert.deepEqual(configDrift(c.dir), []);
    c.edit(join(c.fn, "deno.json"), (json) => {
      json.imports.postgres = "npm:postgres@3.4.0";
    });
    assert.deepEqual(configDrift(c.dir), [
      "import-worker: deno.json maps postgres to npm:postgres@3.4.0, the repository's " +
      "deno.json to npm:postgres@3.4.9",
    ]);
  } finally {
    c.remove();
  }
});

Deno.test("a function's lock resolving a package the repository's does not is named", () => {
  const c = copy();
  try {
    c.edit(join(c.fn, "deno.lock"), (json) => {
      json.npm["left-pad@1.3.0"] = { integrity: "sha512-x" };
    });
    c.edit(join(c.dir, "deno.lock"), (json) => {
      json.npm["postgres@3.4.9"] = { integrity: "sha512-other" };
    });
    assert.deepEqual(configDrift(c.dir), [
      "import-worker: deno.lock's npm entry postgres@3.4.9 is otherwise in the repository's " +
      "deno.lock",
      "import-worker: deno.lock's npm entry left-pad@1.3.0 is missing from the repository's " +
      "deno.lock",
    ]);
  } finally {
    c.remove();
  }
});

Deno.test("a function without its own deno.lock is named", () => {
  const c = copy();
  try {
    rmSync(join(c.fn, "deno.lock"));
    assert.deepEqual(configDrift(c.dir), ["import-worker: has no deno.lock"]);
  } finally {
    c.remove();
  }
});

Deno.test("no shared module imports the AWS SDK or zod: they would weigh down every function", () => {
  // Server-side bundling allows 5 MB a function, every file of every npm package counted
  // (tests/functions_deploy_test.ts); these two alone weigh about 13 MB.
  const dir = join(ROOT, "functions-shared");
  const offenders = readdirSync(dir)
    .filter((name) => name.endsWith(".ts") && !name.endsWith("_test.ts"))
    .filter((name) =>
      /from\s+["'](npm:)?(@aws-sdk\/|zod\b)/.test(readFileSync(join(dir, name), "utf8"))
    );
  assert.deepEqual(offenders, []);
});
