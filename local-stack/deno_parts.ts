/**
 * The stack's Deno processes (the stand-ins of S3, the functions' gateway, pg_net, the
 * stream poller, and the DynamoDB proxy), each started, or reused when it runs with the
 * same code and settings, by `up` (stack.ts) and by the tests and scripts that restart
 * one.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { DENO_BIN, DYNAMODB_PORT, FUNCTIONS_PORT, HOST, PID_DIR, ROOT, S3_PORT } from "./config.ts";
import {
  logFile,
  portOpen,
  portTaken,
  runningProcess,
  startDetached,
  stopDetached,
  waitFor,
} from "./processes.ts";
import { type StackEnv, startupSettings } from "./stack_env.ts";

/** One Deno process of the stack. */
export interface DenoPart {
  name: string;
  script: string;
  /** The files and folders of its code (restarted when they change). */
  code: string[];
  /**
   * The variables of the inherited environment it reads (restarted when they change,
   * as when a value of `.local/stack.env` changes).
   */
  variables: string[];
  /**
   * The settings of `.local/stack.env` that name a file it reads at its start (restarted
   * when the file's bytes change: the gateway's `DB_CA_CERT_FILE`, the CA it hands the
   * functions).
   */
  files?: (keyof StackEnv)[];
  /** The port it listens on, when the stack must see it free before and open after. */
  port?: { number: number; what: string };
}

/**
 * The modules both AWS stand-ins run (the proxy and S3): their folder, and the stack's
 * settings, processes and clusters they import.
 */
const AWS_STAND_IN_CODE = [
  "deno.json",
  "local-stack/aws",
  "local-stack/config.ts",
  "local-stack/stack_env.ts",
  "local-stack/processes.ts",
  "local-stack/proc_table.ts",
  "local-stack/supabase/pooler.ts",
  "local-stack/supabase/postgres_cluster.ts",
  "local-stack/supabase/tls_certificates.ts",
];

/** The DynamoDB proxy (local-stack/aws/): it reads DYNAMODB_FAULTS from `.local/stack.env`. */
export const PROXY_PART: DenoPart = {
  name: "dynamodb_proxy",
  script: "local-stack/aws/main.ts",
  // Everything it imports (deno_parts_test.ts checks): a change to any is in force only
  // once it restarts.
  code: [...AWS_STAND_IN_CODE, "functions-shared"],
  variables: ["STACK_PORT_OFFSET"],
  port: { number: DYNAMODB_PORT, what: "the DynamoDB proxy" },
};

/** The Deno processes of the stack. */
export const DENO_PARTS: DenoPart[] = [
  // The S3 stand-in, where the DynamoDB proxy writes exports (local-stack/aws/exports.ts).
  {
    name: "s3",
    script: "local-stack/aws/s3_main.ts",
    // Everything it imports (its checks, policies and signatures too; deno_parts_test.ts
    // checks): a change to any is in force only once it restarts.
    code: [...AWS_STAND_IN_CODE, "functions-shared/aws_signature.ts"],
    variables: ["STACK_PORT_OFFSET"],
    port: { number: S3_PORT, what: "the S3 stand-in" },
  },
  {
    name: "functions",
    script: "local-stack/supabase/functions_gateway.ts",
    port: { number: FUNCTIONS_PORT, what: "the functions gateway" },
    code: [
      "deno.json",
      "local-stack",
      "supabase/functions",
      "supabase/config.toml",
      "functions-shared",
    ],
    variables: ["STACK_PORT_OFFSET", "DENO_DIR"],
    files: ["DB_CA_CERT_FILE"],
  },
  {
    name: "pg_net",
    script: "local-stack/supabase/pg_net_worker.ts",
    code: ["deno.json", "local-stack", "functions-shared/pg_socket.ts"],
    variables: ["STACK_PORT_OFFSET"],
  },
  {
    name: "stream_poller",
    script: "local-stack/aws/stream_poller.ts",
    code: [
      "deno.json",
      "local-stack",
      // The Lambda's handler, which it runs in workers (lambda_environments.ts).
      "lambda/stream_forwarder.ts",
      "lambda/stream_records.ts",
      "lambda/webhook_delivery.ts",
      "lambda/webhook_secret.ts",
      "lambda/retry_after.ts",
      "functions-shared",
    ],
    variables: [
      "STACK_PORT_OFFSET",
      "STREAM_BATCH_SIZE",
      "STREAM_MAX_RETRY_ATTEMPTS",
      "STREAM_BISECT_ON_ERROR",
    ],
  },
];

/** A hash of the names, sizes and mtimes of the files under `paths`. */
function fingerprint(paths: string[]): string {
  const hash = createHash("sha256");
  const visit = (path: string) => {
    if (!existsSync(path)) return;
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path).sort()) visit(join(path, entry));
    } else {
      hash.update(`${path}:${stat.size}:${stat.mtimeMs}\n`);
    }
  };
  for (const path of paths) visit(join(ROOT, path));
  return hash.digest("hex");
}

/**
 * What a part starts with: a hash of its code, of its settings (`.local/stack.env` and the
 * variables it reads) and of the files its settings name ({@link DenoPart.files}). Only
 * the hash is kept, never a secret.
 */
export function startFingerprint(part: DenoPart, env: StackEnv): string {
  const hash = createHash("sha256")
    .update(`code ${fingerprint(part.code)}\n`)
    .update(startupSettings(env, part.variables));
  for (const key of part.files ?? []) {
    const file = env[key];
    hash.update(`${key} ${file && existsSync(file) ? readFileSync(file, "utf8") : "(none)"}\n`);
  }
  return hash.digest("hex");
}

/**
 * Starts a part, or reuses it when it runs with the same code and settings; one that
 * runs with other code or settings (a changed SYNC_WEBHOOK_SECRET, say), or whose
 * upstream was restarted (`restart`), is restarted.
 */
export async function startDenoPart(
  part: DenoPart,
  env: StackEnv,
  restart = false,
): Promise<"started" | "restarted" | "reused"> {
  const print = startFingerprint(part, env);
  const running = runningProcess(part.name);
  if (running !== undefined && running.fingerprint === print && !restart) return "reused";
  await stopDetached(part.name);
  // The fingerprint lived in a file of its own before it moved into the pid file.
  rmSync(join(PID_DIR, `${part.name}.fingerprint`), { force: true });
  if (part.port && await portOpen(HOST, part.port.number)) {
    throw portTaken(part.port.number, part.port.what);
  }
  startDetached({
    name: part.name,
    command: DENO_BIN,
    args: ["run", "-A", "--no-prompt", join(ROOT, part.script)],
    cwd: ROOT,
    fingerprint: print,
  });
  if (part.port) {
    const port = part.port.number;
    await waitFor(part.port.what, () => portOpen(HOST, port), 60_000, logFile(part.name));
  }
  return running === undefined ? "started" : "restarted";
}
