/**
 * The functions the local gateway (functions_gateway.ts) serves: every folder of
 * `supabase/functions` with an `index.ts` (a folder starting with `_` is shared code) that
 * `supabase/config.toml` does not disable, each verifying JWTs unless its `verify_jwt` is
 * false (Supabase's default is to verify), and, for tests/edge_limits_test.ts, those of
 * `local-stack/test-functions`.
 *
 * @module
 */

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { ROOT } from "../config.ts";
import type { IsolatePool } from "./edge_isolates.ts";

const FUNCTIONS_DIR = join(ROOT, "supabase", "functions");
const TEST_FUNCTIONS_DIR = join(ROOT, "local-stack", "test-functions");

/** A function the gateway serves. */
export interface EdgeFunction {
  name: string;
  dir: string;
  verifyJwt: boolean;
  pool?: IsolatePool;
}

/** Folders of `parent` with an index.ts (those starting with `_` are shared code). */
function functionFolders(parent: string): string[] {
  return readdirSync(parent)
    .filter((name) => !name.startsWith("_") && existsSync(join(parent, name, "index.ts")))
    .sort();
}

/**
 * The functions to serve: every folder of supabase/functions with an index.ts, and the
 * test functions when `withTestFunctions`.
 */
export function discoverFunctions(withTestFunctions = false): EdgeFunction[] {
  const config = parseToml(readFileSync(join(ROOT, "supabase", "config.toml"), "utf8")) as {
    functions?: Record<string, { verify_jwt?: boolean; enabled?: boolean }>;
  };
  const functions = functionFolders(FUNCTIONS_DIR)
    .filter((name) => config.functions?.[name]?.enabled !== false)
    .map((name) => ({
      name,
      dir: join(FUNCTIONS_DIR, name),
      // Supabase's default is to verify.
      verifyJwt: config.functions?.[name]?.verify_jwt ?? true,
    }));
  if (!withTestFunctions) return functions;
  return [
    ...functions,
    ...functionFolders(TEST_FUNCTIONS_DIR).map((name) => ({
      name,
      dir: join(TEST_FUNCTIONS_DIR, name),
      verifyJwt: false,
    })),
  ];
}
