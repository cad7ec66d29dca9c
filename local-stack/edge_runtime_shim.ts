/**
 * Preloaded into every Edge Function process of the local stack: the globals that
 * Supabase's Edge Runtime provides and plain Deno does not.
 *
 * `EdgeRuntime.waitUntil(promise)` keeps a request's background work alive after the
 * response was sent. In Deno an open server keeps the process (and so the promise)
 * alive anyway; this only makes sure a failure is logged, as the hosted runtime does.
 *
 * @module
 */

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
