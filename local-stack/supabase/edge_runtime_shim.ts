/**
 * Preloaded into every Edge Function process (isolate) of the local stack: the globals
 * that Supabase's Edge Runtime provides and plain Deno does not, and the isolate's side
 * of the lifecycle the gateway enforces (local-stack/supabase/edge_isolates.ts).
 *
 * `EdgeRuntime.waitUntil(promise)` keeps a request's background work alive after the
 * response was sent; a failure is logged, as the hosted runtime does. A user worker's
 * `EdgeRuntime` has nothing else (supabase/edge-runtime, ext/runtime/js/namespaces.js).
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
    const tracked = promise.catch((error) => {
      console.error("EdgeRuntime.waitUntil: background task failed:", error);
    }).finally(() => pending.delete(tracked));
    pending.add(tracked);
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
