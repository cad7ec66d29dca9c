/**
 * The local stand-in for Supabase's Edge Functions gateway and Edge Runtime: serves every
 * function of `supabase/functions` at http://127.0.0.1:54321/functions/v1/NAME.
 *
 * Each function runs in isolates (local-stack/supabase/edge_isolates.ts): Deno processes
 * of its own, started on demand, each serving several requests, with the function's own
 * `deno.json`, the environment Supabase injects (SUPABASE_URL, SUPABASE_ANON_KEY,
 * SUPABASE_SERVICE_ROLE_KEY, SUPABASE_SECRET_KEYS, SUPABASE_DB_URL) plus the project's
 * secrets, a 256 MB V8 heap, and the `EdgeRuntime` global (edge_runtime_shim.ts). This
 * process routes requests to them, emulating the hosted gateway's documented behaviour:
 * - the function sees the path without the `/functions/v1` prefix (`/NAME/...`);
 * - `verify_jwt = true` in config.toml requires a JWT signed with the project's secret
 *   (401 otherwise); all of ours set it false and authenticate callers themselves;
 * - an unknown function is a 404, a method Edge Functions do not take a 405, a function
 *   that cannot start a 503 `BOOT_ERROR`, one whose isolate failed under the request
 *   (exited on an unhandled rejection, say) a 500 `WORKER_ERROR`, and a request that has
 *   no response 150 s after it came (the idle limit, the isolate's boot included) a 504;
 *   each with its `sb-error-code` header (gateway_errors.ts);
 * - the hosted runtime's limits per isolate (local-stack/supabase/edge_limits.ts): CPU
 *   (user + system of the process, boot included, read from /proc every EDGE_POLL_MS)
 *   retires the isolate at EDGE_CPU_SOFT_MS and kills it at EDGE_CPU_HARD_MS; the wall
 *   clock retires it at half of EDGE_WALL_CLOCK_LIMIT_MS and kills it at the limit;
 *   memory likewise with EDGE_MEMORY_MB. A killed isolate's in-flight requests answer
 *   546 `WORKER_RESOURCE_LIMIT`. Each isolate that ends is one line of
 *   `.local/logs/edge-isolates.jsonl`;
 * - every request runs in a trace (`traceparent`: its own, or a new one), and the calls
 *   functions make to functions take from their chain's budget, EDGE_CALLS_PER_MINUTE;
 *   past it the calling function's `fetch` throws a `RateLimitError`
 *   (local-stack/supabase/function_calls.ts).
 *
 * The limits are read once, at start, from the environment, then `.local/stack.env`,
 * else the hosted defaults. EDGE_TEST_FUNCTIONS=1 also serves local-stack/test-functions
 * (for tests/edge_limits_test.ts); EDGE_GATEWAY_PORT and EDGE_ISOLATES_LOG let such a test
 * run a gateway of its own beside the stack's.
 *
 * Run by `stack:up`; not meant to be started by hand.
 *
 * @module
 */

import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { FUNCTIONS_PORT, HOST, STACK_ENV_FILE } from "../config.ts";
import { sleep } from "../processes.ts";
import { parseEnvFile, readStackEnv, type StackEnv, verifyJwt } from "../stack_env.ts";
import { type EdgeLimits, readEdgeLimits } from "./edge_limits.ts";
import {
  bootError,
  FUNCTION_METHODS,
  idleTimeout,
  jwtRefusal,
  methodNotAllowed,
  notFound,
  unauthorized,
  workerError,
  workerResourceLimit,
} from "./gateway_errors.ts";
import { type Isolate, type IsolateLine, IsolatePool } from "./edge_isolates.ts";
import { discoverFunctions, type EdgeFunction } from "./function_folders.ts";
import { answerHeaders, releasingBody, small } from "./gateway_bodies.ts";
import { admitCall, CallBudget } from "./function_calls.ts";
import { logLine, spawnIsolate, supervise } from "./isolate_process.ts";
import { ISOLATES_LOG } from "./isolate_log.ts";
import { projectSecrets, secretProblems } from "./project_secrets.ts";
import { SupervisionClock } from "./supervision_clock.ts";

const IDLE_TIMEOUT_MS = 150_000;
/** The stack's addresses and keys, read when the gateway starts. */
let stackEnv: StackEnv;
/** The limits, read when the gateway starts. */
let limits: EdgeLimits;
/** Where ended isolates are recorded. */
let isolatesLog: string;
/** The address functions reach this gateway at (their SUPABASE_URL). */
let ownUrl: string;
/** What the calls between functions have left of their budgets. */
let callBudget: CallBudget;
/** The project's secrets, read and checked when the gateway starts. */
let secrets: Record<string, string>;

/**
 * The environment of a function: the project's secrets, then what Supabase injects,
 * which no secret replaces.
 */
function functionEnv(port: number): Record<string, string> {
  return {
    ...secrets,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
    DENO_SERVE_ADDRESS: `tcp:${HOST}:${port}`,
    DENO_NO_UPDATE_CHECK: "1",
    SUPABASE_URL: ownUrl,
    SUPABASE_ANON_KEY: stackEnv.SUPABASE_ANON_KEY,
    SUPABASE_SERVICE_ROLE_KEY: stackEnv.SUPABASE_SERVICE_ROLE_KEY,
    // As hosted: "the secret keys JSON dictionary" (docs: functions/secrets).
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: stackEnv.SUPABASE_SECRET_KEY }),
    // As hosted, SUPABASE_DB_URL is the direct connection; the project sets SYNC_DB_URL
    // to the transaction pooler (README, "Connections"), here PgBouncer (supabase/pooler.ts).
    SUPABASE_DB_URL: stackEnv.DATABASE_URL,
    SB_REGION: "us-east-1",
  };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The answer to a request whose isolate failed under it. */
async function failure(fn: EdgeFunction, isolate: Isolate, error: unknown): Promise<Response> {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return idleTimeout(IDLE_TIMEOUT_MS / 1000);
  }
  // A V8 heap overflow is noticed when the process has exited: give it a moment.
  if (!isolate.killed) await Promise.race([isolate.process.exited, sleep(1_000)]);
  if (isolate.killed) {
    console.error(
      logLine("gateway", `${fn.name}#${isolate.id}: a request answered 546 (${isolate.killed})`),
    );
    return workerResourceLimit();
  }
  // As the hosted gateway (the Supabase CLI's serve template, internal/functions/serve/
  // templates/main.ts: InvalidWorkerResponse): the cause goes to the log, not the caller.
  console.error(logLine("gateway", `${fn.name}#${isolate.id}: a request failed: ${error}`));
  return workerError();
}

async function route(req: Request, functions: Map<string, EdgeFunction>): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/_stack/health") {
    return json(200, {
      functions: [...functions.values()].map((f) => ({
        name: f.name,
        isolates: f.pool!.live().map((i) => ({
          id: i.id,
          pid: i.process.pid,
          requests: i.requests,
          in_flight: i.inFlight,
          cpu_ms: Math.round(i.cpuMs),
          memory_mb: i.process.memory?.()?.memoryMb ?? null,
          retired: i.retired ?? null,
          successor: i.successor,
        })),
      })),
    });
  }
  // Hosted refuses a call over its chain's budget in the caller, before it is sent.
  const admitted = admitCall(req.headers, callBudget);
  if ("refused" in admitted) return admitted.refused;
  const match = url.pathname.match(/^\/functions\/v1\/([^/]+)(\/.*)?$/);
  const fn = match ? functions.get(match[1]) : undefined;
  if (!match || !fn) return notFound();
  if (!(FUNCTION_METHODS as readonly string[]).includes(req.method)) {
    return methodNotAllowed(req.method);
  }
  if (fn.verifyJwt) {
    const authorization = req.headers.get("authorization");
    const token = authorization?.replace(/^Bearer\s+/i, "") ?? "";
    if (!(await verifyJwt(token, stackEnv.SUPABASE_JWT_SECRET))) {
      return unauthorized(jwtRefusal(authorization));
    }
  }
  // The idle limit counts from the request's arrival, as the hosted gateway's: a slow
  // boot comes out of it.
  const idle = AbortSignal.timeout(IDLE_TIMEOUT_MS);
  const pool = fn.pool!;
  // Its isolates read first: an idle one past its soft CPU limit is retired before a
  // request could be routed to it (supervision_clock.ts reads idle isolates seldom).
  try {
    supervise([pool], limits);
  } catch (error) {
    console.error(logLine("gateway", `${fn.name}: a supervisor pass failed: ${error}`));
  }
  const isolate = pool.acquire();
  if (!(await isolate.process.ready)) {
    pool.release(isolate);
    if (isolate.killed) return workerResourceLimit();
    // Not listening after 30 s: no further request waits for it.
    pool.stop(isolate, "boot failed");
    return bootError(`Function ${fn.name} failed to start (see .local/logs/functions.log)`);
  }
  const target = `http://${HOST}:${isolate.process.port}/${fn.name}${match[2] ?? ""}${url.search}`;
  let response: Response;
  try {
    response = await fetch(target, {
      method: req.method,
      headers: admitted.forward,
      body: req.body && small(req.headers) ? await req.arrayBuffer() : req.body,
      redirect: "manual",
      signal: idle,
    });
    if (response.body && small(response.headers)) {
      const whole = await response.arrayBuffer();
      pool.release(isolate);
      return new Response(whole, {
        status: response.status,
        statusText: response.statusText,
        headers: answerHeaders(req.method, response.headers),
      });
    }
  } catch (error) {
    pool.release(isolate);
    return await failure(fn, isolate, error);
  }
  if (!response.body) pool.release(isolate);
  const body = response.body && releasingBody(response.body, () => pool.release(isolate));
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: answerHeaders(req.method, response.headers),
  });
}

/** The limits: the environment first, then `.local/stack.env`, else the hosted defaults. */
function readLimits(): EdgeLimits {
  const fromFile = existsSync(STACK_ENV_FILE)
    ? parseEnvFile(readFileSync(STACK_ENV_FILE, "utf8"))
    : {};
  return readEdgeLimits({ ...fromFile, ...Deno.env.toObject() });
}

/** Appends an ended isolate's line to the log. */
function record(line: IsolateLine): void {
  mkdirSync(dirname(isolatesLog), { recursive: true });
  appendFileSync(isolatesLog, `${JSON.stringify(line)}\n`);
}

if (import.meta.main) {
  stackEnv = readStackEnv();
  secrets = projectSecrets(stackEnv);
  const refused = secretProblems(secrets);
  if (refused.length > 0) {
    console.error(logLine(
      "gateway",
      `the project's secrets would be refused by hosted Supabase: ${refused.join("; ")}`,
    ));
    Deno.exit(1);
  }
  limits = readLimits();
  isolatesLog = Deno.env.get("EDGE_ISOLATES_LOG") || ISOLATES_LOG;
  const port = Number(Deno.env.get("EDGE_GATEWAY_PORT") || FUNCTIONS_PORT);
  // A test's gateway of its own is its functions' SUPABASE_URL, as the stack's is theirs.
  ownUrl = Deno.env.get("EDGE_GATEWAY_PORT") ? `http://${HOST}:${port}` : stackEnv.SUPABASE_URL;
  callBudget = new CallBudget(limits.callsPerMinute);
  const functions = new Map(
    discoverFunctions(Deno.env.get("EDGE_TEST_FUNCTIONS") === "1").map((fn) => [fn.name, fn]),
  );
  const pools: IsolatePool[] = [];
  const supervisor = new SupervisionClock(() => supervise(pools, limits), limits.pollMs, {
    now: Date.now,
    after: (fn, ms) => {
      const id = setTimeout(fn, ms);
      return () => clearTimeout(id);
    },
  });
  const changed = () => supervisor.poke();
  for (const fn of functions.values()) {
    const pool: IsolatePool = new IsolatePool(fn.name, {
      spawn: (id) =>
        spawnIsolate({
          ...fn,
          pool,
          env: functionEnv,
          memoryMb: limits.memoryMb,
          reported: changed,
        }, id),
      now: () => Date.now(),
      record,
      changed,
    });
    fn.pool = pool;
    pools.push(pool);
  }
  const server = Deno.serve(
    { hostname: HOST, port, onListen: () => {} },
    (req) => route(req, functions),
  );
  console.log(
    `[gateway] serving ${
      [...functions.keys()].join(", ")
    } at http://${HOST}:${port}/functions/v1/` +
      ` (limits: ${JSON.stringify(limits)})`,
  );
  const stop = async () => {
    supervisor.stop();
    const exits: Promise<number>[] = [];
    for (const fn of functions.values()) {
      for (const isolate of [...fn.pool!.live()]) {
        fn.pool!.stop(isolate);
        exits.push(isolate.process.exited);
      }
    }
    await Promise.race([Promise.allSettled(exits), sleep(5_000)]);
    await server.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
