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
 * @module
 */

import { DRAIN_SIGNAL, RETIRE_SIGNALS } from "./edge_limits.ts";

const pending = new Set<Promise<unknown>>();

const edgeRuntime = {
  waitUntil(promise: Promise<unknown>): void {
    pending.add(promise);
    // The promise `finally` returns rejects as `promise` does, with nothing to handle it:
    // a failure stays an unhandled rejection, as on the hosted runtime.
    promise.finally(() => pending.delete(promise));
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
