/**
 * The JavaScript globals of the hosted Edge Runtime that differ from plain Deno's, set
 * in every local isolate (imported by edge_runtime_shim.ts, which the isolates preload),
 * so that a function that leans on what hosted takes away fails here first. From
 * supabase/edge-runtime's ext/runtime/js/bootstrap.js:
 * - no `Worker`: the runtime's global scope defines none ("Web Worker API (or Node vm
 *   API) are not available", https://supabase.com/docs/guides/functions/limits);
 * - `SharedArrayBuffer` is `ArrayBuffer`, and a shared `WebAssembly.Memory` throws
 *   "Creating a shared memory is not supported" (shared memory escapes the isolate's
 *   memory count);
 * - `navigator.hardwareConcurrency` is 1 ("explicitly setting no of CPUs to 1 (since we
 *   don't allow workers)").
 *
 * Kinder than hosted: `node:vm` stays importable (a preload cannot take a built-in module
 * away); the sync's functions import none, which functions-shared/runtime_apis_test.ts
 * checks.
 *
 * @module
 */

delete (globalThis as { Worker?: unknown }).Worker;

(globalThis as { SharedArrayBuffer: unknown }).SharedArrayBuffer = globalThis.ArrayBuffer;

const WasmMemory = WebAssembly.Memory;
function Memory(descriptor: WebAssembly.MemoryDescriptor): WebAssembly.Memory {
  if (typeof descriptor === "object" && descriptor?.shared === true) {
    throw new TypeError("Creating a shared memory is not supported");
  }
  return new WasmMemory(descriptor);
}
Memory.prototype = WasmMemory.prototype;
WebAssembly.Memory = Memory as unknown as typeof WebAssembly.Memory;

Object.defineProperty(navigator, "hardwareConcurrency", { get: () => 1, configurable: true });
