/**
 * Preloaded into every Edge Function process (isolate) of the local stack: the globals
 * that Supabase's Edge Runtime provides and plain Deno does not, and the isolate's side
 * of the lifecycle the gateway enforces (local-stack/supabase/edge_isolates.ts).
 *
 * `EdgeRuntime.waitUntil(promise)` keeps a request's background work alive after the
 * response was sent. It only registers the promise, as the hosted runtime's does
 * (supabase/edge-runtime, ext/runtime/js/async_hook.js): a promise that rejects with
 * nothing to handle it is an unhandled rejection, which ends the isolate, every other
 * request and background task in it included, unless an `unhandledrejection` listener
 * prevents it (ext/runtime/js/bootstrap.js, processUnhandledPromiseRejection: "an
 * unhandled promise rejection that is about to terminate the runtime"). A user worker's
 * `EdgeRuntime` has nothing else (ext/runtime/js/namespaces.js).
 *
 * Signals from the gateway, standing for the hosted runtime's events
 * (ext/runtime/js/bootstrap.js: `beforeunload` is a CustomEvent whose `detail` is
 * `{ reason }`, the snake_case `WillTerminateReason` of crates/base/src/runtime/mod.rs):
 * - a retirement (`RETIRE_SIGNALS`, local-stack/supabase/edge_limits.ts: the isolate was
 *   retired for CPU, wall clock or memory): `beforeunload` with `{ reason: "cpu" }`,
 *   `"wall_clock"` or `"memory"`;
 * - a drain (`DRAIN_SIGNAL`: the isolate takes nothing new and has no request in
 *   flight): a `drain` event, then, once every `waitUntil` promise has settled,
 *   `beforeunload` with `{ reason: "early_drop" }`, and exit 0 (Deno dispatches `unload`).
 *
 * `Deno.serve` prints no "Listening on" line, as hosted. Calls between functions
 * (function_calls.ts): each request's handler, and the work it
 * starts, runs in the request's trace (its `traceparent`, as ext/runtime/js/http.js
 * enters a request context); a `fetch` of one of the project's functions carries that
 * trace on and is counted by the gateway, and a refusal throws `Deno.errors.RateLimitError`
 * with `retryAfterMs` (ext/runtime/js/errors.js, vendor/deno_fetch/26_fetch.js). Kinder
 * than hosted: only `fetch` is counted, where hosted counts `node:http` requests too (the
 * sync's functions make none).
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import net from "node:net";
import process from "node:process";
import v8 from "node:v8";
import "./edge_globals.ts";
import { DRAIN_SIGNAL, RETIRE_SIGNALS } from "./edge_limits.ts";
import { afterEachCollection, MemoryWatch } from "./memory_watch.ts";
import {
  FUNCTION_NAME_ENV,
  GATEWAY_PID_ENV,
  OUTBOUND_CALL_HEADER,
  refusalMessage,
  REFUSED_RETRY_HEADER,
  traceIdOf,
  traceparent,
} from "./function_calls.ts";

/**
 * The process's real `cpuUsage`, for the stack's own test functions
 * (local-stack/test-functions/burn-cpu), which never deploy: Deno grants /proc/self to
 * `--allow-all` only.
 */
const REAL_CPU_USAGE = Symbol.for("local-stack.realCpuUsage");
(globalThis as Record<symbol, unknown>)[REAL_CPU_USAGE] = process.cpuUsage.bind(process);
process.cpuUsage = () => {
  console.warn("Warning: Not implemented: process.cpuUsage()");
  return { user: 0, system: 0 };
};

// The gateway is the isolate's parent: should it die without stopping the isolate (killed,
// or the test that ran it ended), the isolate ends too instead of lingering. Its pid is
// given (GATEWAY_PID_ENV): the parent read at boot is already another if it died first.
const givenGateway = envOrEmpty(GATEWAY_PID_ENV);
if (givenGateway) Deno.env.delete(GATEWAY_PID_ENV);
const gateway = Number(givenGateway) || Deno.ppid;
Deno.unrefTimer(setInterval(() => {
  if (Deno.ppid !== gateway) Deno.exit(0);
}, 1_000));

const pending = new Set<Promise<unknown>>();
/** The shim's own clock, set apart from the function's timers (wrapped below). */
const shimInterval = globalThis.setInterval;
const shimTimeout = globalThis.setTimeout;

// The isolate's memory as the hosted supervisor counts it (V8's used heap plus external
// memory) and its pending `waitUntil` promises, for the gateway (edge_limits.ts,
// `memoryReportLine`): written when they change, looked at while the isolate is busy and
// after every garbage collection (memory_watch.ts).
const encoder = new TextEncoder();
const memory = new MemoryWatch({
  memoryMb: () => {
    const { used_heap_size, external_memory } = v8.getHeapStatistics();
    return (used_heap_size + external_memory) / 1048576;
  },
  pendingTasks: () => pending.size,
  write: (line) => Deno.stderr.writeSync(encoder.encode(`${line}\n`)),
  now: Date.now,
  every: (fn, ms) => {
    const id = shimInterval(fn, ms);
    Deno.unrefTimer(id);
    return () => clearInterval(id);
  },
  after: (fn, ms) => Deno.unrefTimer(shimTimeout(fn, ms)),
});
afterEachCollection(() => memory.report());

// The function's own timers: the isolate is looked at after one runs, as hosted looks
// after every turn of the event loop (the shim's own use `shimInterval` and
// `shimTimeout`).
for (const name of ["setTimeout", "setInterval"] as const) {
  const original = globalThis[name] as unknown as (...args: unknown[]) => unknown;
  const wrapped = (callback: unknown, ms?: number, ...args: unknown[]) => {
    if (typeof callback !== "function") return original(callback, ms, ...args);
    return original(
      function (this: unknown, ...given: unknown[]) {
        try {
          return callback.apply(this, given);
        } finally {
          memory.timerRan();
        }
      },
      ms,
      ...args,
    );
  };
  // Its own properties too (`util.promisify.custom`, its name and length).
  Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(original));
  // deno-lint-ignore no-explicit-any
  (globalThis as any)[name] = wrapped;
}

const edgeRuntime = {
  // As hosted's (supabase/edge-runtime, ext/runtime/js/async_hook.js): it answers its
  // argument, and keeps the isolate alive only for a promise.
  waitUntil<T>(promise: T): T {
    if (!(promise instanceof Promise)) return promise;
    pending.add(promise);
    memory.tasksChanged();
    // The promise `finally` returns rejects as `promise` does, with nothing to handle it:
    // a failure stays an unhandled rejection, as on the hosted runtime.
    promise.finally(() => {
      pending.delete(promise);
      memory.tasksChanged();
    });
    return promise;
  },
};

Object.defineProperty(globalThis, "EdgeRuntime", { value: edgeRuntime, writable: false });

function beforeunload(reason: string): void {
  globalThis.dispatchEvent(
    new CustomEvent("beforeunload", { cancelable: true, detail: { reason } }),
  );
}

for (const { signal, unload } of Object.values(RETIRE_SIGNALS)) {
  Deno.addSignalListener(signal, () => beforeunload(unload));
}

let draining = false;
Deno.addSignalListener(DRAIN_SIGNAL, async () => {
  if (draining) return;
  draining = true;
  globalThis.dispatchEvent(new Event("drain"));
  while (pending.size > 0) await Promise.allSettled([...pending]);
  beforeunload("early_drop");
  Deno.exit(0); // Deno dispatches `unload` on exit.
});

/** The hosted runtime's error for a call between functions over its chain's budget. */
class RateLimitError extends Error {
  /** Milliseconds until the chain's budget resets. */
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super(message);
    this.name = "RateLimitError";
    this.retryAfterMs = retryAfterMs;
  }
}
(Deno.errors as Record<string, unknown>).RateLimitError ??= RateLimitError;

/** An environment variable, or "" where the process may not read the environment. */
function envOrEmpty(name: string): string {
  try {
    return Deno.env.get(name) ?? "";
  } catch {
    return "";
  }
}

/** `input`'s URL as `fetch` resolves it, or null if it is none. */
function urlOf(input: string | URL | Request): string | null {
  try {
    return input instanceof Request ? input.url : new URL(String(input)).href;
  } catch {
    return null;
  }
}

const functionName = envOrEmpty(FUNCTION_NAME_ENV);
if (functionName) Deno.env.delete(FUNCTION_NAME_ENV);
const supabaseUrl = envOrEmpty("SUPABASE_URL");
const functionsUrl = supabaseUrl ? urlOf(`${supabaseUrl.replace(/\/$/, "")}/functions/v1/`) : null;
/** The trace of the request being served, for the work it starts. */
const requestTrace = new AsyncLocalStorage<string | null>();

type Handler = (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;
/**
 * The handler, run with its request's trace, the isolate counted busy (memory_watch.ts)
 * until the response's body has been sent (`info.completed`; an answer that never came
 * ends it too): a body streamed after the handler returned is the function's JavaScript
 * running.
 */
const traced = (handler: Handler): Handler => (request, info) => {
  const ended = memory.requestStarted();
  try {
    const answer = requestTrace.run(
      traceIdOf(request.headers.get("traceparent")),
      () => handler(request, info),
    );
    const sent = () => info.completed.then(ended, ended);
    if (answer instanceof Promise) answer.then(sent, ended);
    else sent();
    return answer;
  } catch (error) {
    ended();
    throw error;
  }
};

// Deno prints "Listening on …" when a server starts; the hosted runtime prints nothing
// (a line each isolate's boot would add to the function's log events).
const quiet = () => {};
const serve = Deno.serve;
// deno-lint-ignore no-explicit-any
(Deno as any).serve = (first: any, second?: any) => {
  if (typeof first === "function") return serve({ onListen: quiet }, traced(first));
  if (typeof second === "function") {
    return serve({ ...first, onListen: first?.onListen ?? quiet }, traced(second));
  }
  if (typeof first?.handler === "function") {
    return serve({ ...first, onListen: first.onListen ?? quiet, handler: traced(first.handler) });
  }
  return serve(first, second);
};

/**
 * "Outgoing connections to ports 25 and 587 are not allowed"
 * (https://supabase.com/docs/guides/functions/limits): refused here as a connection that
 * cannot be made, naming why (the hosted error's wording is not documented).
 */
const BLOCKED_PORTS = new Set([25, 587]);
function blockedPort(port: number | string): Error | undefined {
  if (!BLOCKED_PORTS.has(Number(port))) return undefined;
  return new TypeError(
    `error sending request: outgoing connections to port ${port} are not allowed on Supabase Edge Functions`,
  );
}
for (const name of ["connect", "connectTls"] as const) {
  const open = Deno[name] as (options: { port: number }) => Promise<unknown>;
  // deno-lint-ignore no-explicit-any
  (Deno as any)[name] = (options: { port: number }) => {
    const refused = blockedPort(options.port);
    return refused ? Promise.reject(refused) : open(options);
  };
}
// node:net (and node:tls and node:http over it) connects through Socket#connect, not
// Deno.connect: refused there as well, as an 'error' on the socket, as a connection
// refused is. Its arguments: options, a port (and host), or net.connect's normalized
// [options, callback].
const connectSocket = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const port = typeof first === "object" && first !== null
    ? (first as { port?: unknown }).port
    : first;
  const refused = typeof port === "number" || typeof port === "string"
    ? blockedPort(port)
    : undefined;
  if (!refused) return (connectSocket as (...a: unknown[]) => net.Socket).apply(this, args);
  queueMicrotask(() => this.destroy(refused));
  return this;
} as typeof connectSocket;

const send = globalThis.fetch;
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
  const url = urlOf(input);
  const refused = url ? blockedPort(new URL(url).port) : undefined;
  if (refused) throw refused;
  if (!functionsUrl || !url?.startsWith(functionsUrl)) return await send(input, init);
  const request = new Request(input, init);
  // The chain is the runtime's own record of the request being served, never a header
  // the function set: outside any request, the call counts against the function's own key.
  const traceId = requestTrace.getStore() ?? null;
  if (traceId) request.headers.set("traceparent", traceparent(traceId));
  else request.headers.delete("traceparent");
  request.headers.set(OUTBOUND_CALL_HEADER, functionName);
  const response = await send(request);
  const retry = response.headers.get(REFUSED_RETRY_HEADER);
  if (response.status !== 429 || retry === null) return response;
  await response.body?.cancel();
  throw new RateLimitError(refusalMessage(traceId, Number(retry)), Number(retry));
};
