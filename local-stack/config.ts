/**
 * Fixed facts of the local stack: where things live and which loopback ports they use
 * (`docs/interfaces.md`, "The local stack").
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root directory. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
/** Everything the stack writes at run time: data, logs, pid files, stack.env. */
export const LOCAL_DIR: string = localDirOf(ROOT);
export const LOG_DIR: string = logDirOf(ROOT);

/** {@link LOCAL_DIR} of the checkout at `root`. */
export function localDirOf(root: string): string {
  return join(root, ".local");
}

/** {@link LOG_DIR} of the checkout at `root` (the parts' logs, and the gateway's isolates log). */
export function logDirOf(root: string): string {
  return join(localDirOf(root), "logs");
}
export const PID_DIR: string = join(LOCAL_DIR, "pids");
export const STACK_ENV_FILE: string = join(LOCAL_DIR, "stack.env");
/**
 * The functions' local secrets, as the Supabase CLI loads them for `supabase functions
 * serve` (and `supabase secrets set --env-file` pushes them to a project): ignored by git.
 */
export const FUNCTIONS_ENV_FILE: string = join(ROOT, "supabase", "functions", ".env");
/**
 * Where this repository's PostgreSQL clusters live instead of `.local/` when the stack runs
 * as root and the `postgres` user cannot reach `.local/` (a clone under /root, or in a
 * `mktemp -d` folder): a folder of this repository's own under /var/tmp, named after a hash
 * of the repository's path, so that two clones never share one.
 */
export const POSTGRES_FALLBACK_DIR: string = postgresFallbackDir(ROOT);

/** {@link POSTGRES_FALLBACK_DIR} of the checkout at `root`. */
export function postgresFallbackDir(root: string): string {
  return `/var/tmp/dynamo-supabase-sync-${
    createHash("sha256").update(root).digest("hex").slice(0, 12)
  }`;
}

export const HOST = "127.0.0.1";

/**
 * Added to every port of the stack: 0 (the fixed ports below) unless
 * `STACK_PORT_OFFSET` says otherwise, so that a second checkout (a developer's git
 * worktree) can run a stack of its own beside the first.
 */
export const PORT_OFFSET: number = (() => {
  const text = Deno.env.get("STACK_PORT_OFFSET") ?? "0";
  const offset = Number(text);
  if (!Number.isInteger(offset) || offset < 0 || offset > 1000) {
    throw new Error(`STACK_PORT_OFFSET must be a whole number from 0 to 1000, not ${text}`);
  }
  return offset;
})();
export const POSTGRES_PORT = 54322 + PORT_OFFSET;
export const FUNCTIONS_PORT = 54321 + PORT_OFFSET;
/**
 * The transaction pooler (PgBouncer, local-stack/supabase/pooler.ts) through which the
 * functions reach Postgres: 6543, Supabase's transaction-mode port, plus the offset.
 */
export const POOLER_PORT = 6543 + PORT_OFFSET;
/**
 * DYNAMODB_ENDPOINT: the DynamoDB proxy (local-stack/aws/proxy.ts) that every client
 * reaches, but for the demo data set's load into new tables (fillNewTable,
 * local-stack/aws/source_tables.ts).
 */
export const DYNAMODB_PORT = 8000 + PORT_OFFSET;
/**
 * DynamoDB Local itself, reached through the proxy, and directly only to fill a new table
 * whose stream is still off, as DynamoDB's import from S3 does (fillNewTable). 18000 +
 * offset rather than
 * DYNAMODB_PORT + 1000: with offsets up to 1000 that would be another checkout's
 * DYNAMODB_PORT.
 */
export const DYNAMODB_INTERNAL_PORT = 18000 + PORT_OFFSET;

/**
 * S3_ENDPOINT: the S3 stand-in (local-stack/aws/s3_server.ts) that exports are written to
 * and read from. 4568 (s3rver's own default) plus the offset stays clear of the others.
 */
export const S3_PORT = 4568 + PORT_OFFSET;
/** Where the S3 stand-in keeps its buckets' objects. */
export const S3_DIR: string = join(LOCAL_DIR, "s3");
/** s3rver's own key pair: it knows no other access key. */
export const S3_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
/** EXPORT_BUCKET: the bucket the stack's DynamoDB exports go to. */
export const EXPORT_BUCKET = "dynamodb-exports";
/**
 * Where the S3 stand-in's buckets are: a request signed for another region is answered
 * `400 AuthorizationHeaderMalformed` (a HeadBucket `301 PermanentRedirect`), as S3 answers it
 * (local-stack/aws/s3_auth.ts).
 */
export const EXPORT_BUCKET_REGION = "us-east-1";

/** PostgreSQL 15's programs, as Debian installs them. */
export const PG_BIN = "/usr/lib/postgresql/15/bin";

/** The Deno binary that npm installed (the `deno` package), so every part uses one version. */
export const DENO_BIN: string = join(ROOT, "node_modules", ".bin", "deno");
