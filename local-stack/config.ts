/**
 * Fixed facts of the local stack: where things live and which loopback ports they use
 * (`../shared/contract/interfaces.md`, "The local stack").
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root directory. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
/** Everything the stack writes at run time: data, logs, pid files, stack.env. */
export const LOCAL_DIR: string = join(ROOT, ".local");
export const LOG_DIR: string = join(LOCAL_DIR, "logs");
export const PID_DIR: string = join(LOCAL_DIR, "pids");
export const STACK_ENV_FILE: string = join(LOCAL_DIR, "stack.env");

export const HOST = "127.0.0.1";
export const POSTGRES_PORT = 54322;
export const FUNCTIONS_PORT = 54321;
export const DYNAMODB_PORT = 8000;
/** Each Edge Function runs in its own Deno process on a port from here upwards. */
export const FIRST_FUNCTION_PORT = 54400;

/** PostgreSQL 15's programs, as Debian installs them. */
export const PG_BIN = "/usr/lib/postgresql/15/bin";

/** The Deno binary that npm installed (the `deno` package), so every part uses one version. */
export const DENO_BIN: string = join(ROOT, "node_modules", ".bin", "deno");
