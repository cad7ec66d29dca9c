/**
 * The Edge Functions' own `deno.json` and `deno.lock` against the repository's: `npm test`
 * (scripts/check_lanes.ts) type-checks the functions' entry points in the one `deno check`
 * of the repository, under its `deno.json`, instead of once per function under each
 * function's (which type-checked the shared modules five times over). That proves the
 * same only while each function resolves exactly the packages the repository does: every
 * import a function maps is mapped to the same package by the repository, and every
 * entry of a function's lock (the packages and versions it resolves) is the repository
 * lock's entry. {@link configDrift} names each place where that is not so; the unit test
 * beside it fails on any. That each function's own import map resolves everything its
 * code imports, under its own lock unchanged, is `deno cache --frozen` with the
 * function's config (check_lanes.ts, "functions resolve"), which loads the module graph
 * without type-checking it.
 *
 * @module
 */

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The parts of a `deno.json` and a `deno.lock` (version 5) compared here. */
interface Config {
  imports?: Record<string, string>;
}
interface Lock {
  specifiers?: Record<string, string>;
  npm?: Record<string, unknown>;
  jsr?: Record<string, unknown>;
  remote?: Record<string, unknown>;
}

/** The folders of `supabase/functions/` that hold a function (an `index.ts`), sorted. */
export function functionDirs(root: string): string[] {
  const functions = join(root, "supabase", "functions");
  if (!existsSync(functions)) return [];
  return readdirSync(functions).sort()
    .map((name) => join(functions, name))
    .filter((dir) => existsSync(join(dir, "index.ts")));
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

/**
 * Where a function's `deno.json` or `deno.lock` differs from the repository's: an import
 * the repository maps elsewhere or not at all, a lock entry (a specifier's resolution, a
 * package with its integrity and dependencies) that the repository's lock lacks or holds
 * otherwise, or a missing file. Empty when every function resolves as the repository does.
 */
export function configDrift(root: string, dirs = functionDirs(root)): string[] {
  const rootConfig = readJson<Config>(join(root, "deno.json"));
  const rootLock = readJson<Lock>(join(root, "deno.lock"));
  const problems: string[] = [];
  for (const dir of dirs) {
    const name = dir.slice(dir.lastIndexOf("/") + 1);
    for (const file of ["deno.json", "deno.lock"]) {
      if (!existsSync(join(dir, file))) problems.push(`${name}: has no ${file}`);
    }
    if (problems.some((p) => p.startsWith(`${name}: has no`))) continue;
    const config = readJson<Config>(join(dir, "deno.json"));
    for (const [specifier, target] of Object.entries(config.imports ?? {})) {
      const rootTarget = rootConfig.imports?.[specifier];
      if (rootTarget !== target) {
        problems.push(
          `${name}: deno.json maps ${specifier} to ${target}, the repository's deno.json to ` +
            `${rootTarget ?? "nothing"}`,
        );
      }
    }
    const lock = readJson<Lock>(join(dir, "deno.lock"));
    for (const section of ["specifiers", "npm", "jsr", "remote"] as const) {
      for (const [key, entry] of Object.entries(lock[section] ?? {})) {
        const rootEntry = rootLock[section]?.[key];
        if (JSON.stringify(rootEntry) !== JSON.stringify(entry)) {
          problems.push(
            `${name}: deno.lock's ${section} entry ${key} is ` +
              `${
                rootEntry === undefined ? "missing from" : "otherwise in"
              } the repository's deno.lock`,
          );
        }
      }
    }
  }
  return problems;
}
