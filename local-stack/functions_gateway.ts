/**
 * The local stand-in for Supabase's Edge Functions gateway and Edge Runtime: serves every
 * function of `supabase/functions` at http://127.0.0.1:54321/functions/v1/NAME.
 *
 * Each function runs in a Deno process of its own (as each gets an isolate of its own on
 * the hosted runtime) with its own `deno.json`, the environment Supabase injects
 * (SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY, SUPABASE_SECRET_KEYS,
 * SUPABASE_DB_URL) plus the project's secrets, 256 MB of heap, and the `EdgeRuntime` global
 * (edge_runtime_shim.ts). This process routes requests to them, emulating the hosted
 * gateway's documented behaviour:
 * - the function sees the path without the `/functions/v1` prefix (`/NAME/...`);
 * - `verify_jwt = true` in config.toml requires a JWT signed with the project's secret
 *   (401 otherwise); all of ours set it false and authenticate callers themselves;
 * - an unknown function is a 404, a function that cannot start a 503, and a request
 *   that has no response after the 150 s idle limit a 504.
 * The 2 s CPU limit of the hosted runtime is not enforced here.
 *
 * Run by `stack:up`; not meant to be started by hand.
 *
 * @module
 */

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { DENO_BIN, FIRST_FUNCTION_PORT, FUNCTIONS_PORT, HOST, ROOT } from "./config.ts";
import { portOpen, sleep } from "./processes.ts";
import { readStackEnv, type StackEnv, verifyJwt } from "./stack_env.ts";

const FUNCTIONS_DIR = join(ROOT, "supabase", "functions");
const IDLE_TIMEOUT_MS = 150_000;

interface EdgeFunction {
  name: string;
  port: number;
  verifyJwt: boolean;
  process?: Deno.ChildProcess;
}

/** The functions to serve: every folder of supabase/functions with an index.ts. */
export function discoverFunctions(): EdgeFunction[] {
  const config = parseToml(readFileSync(join(ROOT, "supabase", "config.toml"), "utf8")) as {
    functions?: Record<string, { verify_jwt?: boolean; enabled?: boolean }>;
  };
  return readdirSync(FUNCTIONS_DIR)
    .filter((name) => !name.startsWith("_") && existsSync(join(FUNCTIONS_DIR, name, "index.ts")))
    .filter((name) => config.functions?.[name]?.enabled !== false)
    .sort()
    .map((name, i) => ({
      name,
      port: FIRST_FUNCTION_PORT + i,
      // Supabase's default is to verify.
      verifyJwt: config.functions?.[name]?.verify_jwt ?? true,
    }));
}

/** The stack's addresses and keys, read when the gateway starts. */
let stackEnv: StackEnv;

/** The environment of a function: what Supabase injects, plus the project's secrets. */
function functionEnv(fn: EdgeFunction): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
    DENO_SERVE_ADDRESS: `tcp:${HOST}:${fn.port}`,
    DENO_NO_UPDATE_CHECK: "1",
    SUPABASE_URL: stackEnv.SUPABASE_URL,
    SUPABASE_ANON_KEY: stackEnv.SUPABASE_ANON_KEY,
    SUPABASE_SERVICE_ROLE_KEY: stackEnv.SUPABASE_SERVICE_ROLE_KEY,
    // As hosted: "the secret keys JSON dictionary" (docs: functions/secrets).
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: stackEnv.SUPABASE_SECRET_KEY }),
    SUPABASE_DB_URL: stackEnv.DATABASE_URL,
    SB_REGION: "us-east-1",
    // Secrets (`supabase secrets set` on a hosted project).
    SYNC_WEBHOOK_SECRET: stackEnv.SYNC_WEBHOOK_SECRET,
    DYNAMODB_ENDPOINT: stackEnv.DYNAMODB_ENDPOINT,
    AWS_REGION: stackEnv.AWS_REGION,
    AWS_ACCESS_KEY_ID: stackEnv.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: stackEnv.AWS_SECRET_ACCESS_KEY,
  };
}

/** Copies a child's output into ours, each line prefixed with the function's name. */
async function relay(name: string, stream: ReadableStream<Uint8Array>, out: typeof console.log) {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) out(`[${name}] ${line}`);
  }
  if (buffered) out(`[${name}] ${buffered}`);
}

function start(fn: EdgeFunction): void {
  const dir = join(FUNCTIONS_DIR, fn.name);
  const child = new Deno.Command(DENO_BIN, {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      "--no-prompt",
      "--config",
      join(dir, "deno.json"),
      "--v8-flags=--max-old-space-size=256",
      "--preload",
      join(ROOT, "local-stack", "edge_runtime_shim.ts"),
      join(dir, "index.ts"),
    ],
    env: functionEnv(fn),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  fn.process = child;
  relay(fn.name, child.stdout, console.log);
  relay(fn.name, child.stderr, console.error);
  child.status.then((status) => {
    console.error(`[gateway] ${fn.name} exited with code ${status.code}`);
    if (fn.process === child) fn.process = undefined;
  });
}

/** Starts the function if it is not running and waits until it listens. */
async function ensureRunning(fn: EdgeFunction): Promise<boolean> {
  if (!fn.process) start(fn);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await portOpen(HOST, fn.port)) return true;
    if (!fn.process) return false;
    await sleep(50);
  }
  return false;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

async function route(req: Request, functions: Map<string, EdgeFunction>): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/_stack/health") {
    return json(200, {
      functions: [...functions.values()].map((f) => ({
        name: f.name,
        port: f.port,
        running: f.process !== undefined,
      })),
    });
  }
  const match = url.pathname.match(/^\/functions\/v1\/([^/]+)(\/.*)?$/);
  const fn = match ? functions.get(match[1]) : undefined;
  if (!match || !fn) {
    return json(404, { code: "NOT_FOUND", message: "Requested function was not found" });
  }
  if (fn.verifyJwt) {
    const token = req.headers.get("authorization")?.replace(/^Bearer\s+/i, "") ?? "";
    if (!(await verifyJwt(token, stackEnv.SUPABASE_JWT_SECRET))) {
      return json(401, { code: 401, message: "Invalid JWT" });
    }
  }
  if (!(await ensureRunning(fn))) {
    return json(503, {
      code: "BOOT_ERROR",
      message: `Function ${fn.name} failed to start (see .local/logs/functions.log)`,
    });
  }
  const target = `http://${HOST}:${fn.port}/${fn.name}${match[2] ?? ""}${url.search}`;
  try {
    return await fetch(target, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: "manual",
      signal: AbortSignal.timeout(IDLE_TIMEOUT_MS),
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "TimeoutError") {
      return json(504, { code: "IDLE_TIMEOUT", message: "Function did not respond in 150 s" });
    }
    return json(502, { code: "FUNCTION_ERROR", message: String(error) });
  }
}

if (import.meta.main) {
  stackEnv = readStackEnv();
  const functions = new Map(discoverFunctions().map((fn) => [fn.name, fn]));
  for (const fn of functions.values()) start(fn);
  await Promise.all([...functions.values()].map(ensureRunning));
  const server = Deno.serve(
    { hostname: HOST, port: FUNCTIONS_PORT, onListen: () => {} },
    (req) => route(req, functions),
  );
  console.log(
    `[gateway] serving ${
      [...functions.keys()].join(", ")
    } at http://${HOST}:${FUNCTIONS_PORT}/functions/v1/`,
  );
  const stop = async () => {
    for (const fn of functions.values()) fn.process?.kill("SIGTERM");
    await server.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
