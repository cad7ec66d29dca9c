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
 * - the JavaScript of V8 13.0, not of the V8 local Deno embeds (newer): hosted pins the
 *   `v8` crate at 130.0.7 (supabase/edge-runtime's Cargo.lock, through its deno_core
 *   0.324 fork), so what V8 shipped since is absent there, and a function (or one of
 *   its packages) calling it fails with a TypeError on hosted only. Taken away here:
 *   `Atomics.pause` (V8 13.3), `Error.isError`, `DisposableStack`,
 *   `AsyncDisposableStack` and `SuppressedError` (13.4), `Float16Array`, `Math.f16round`
 *   and DataView's float16 methods (13.5), `RegExp.escape` (13.6), Uint8Array's base64
 *   and hex methods (14.0), `Temporal` (14.4), and `Math.sumPrecise`, `Iterator.concat` and Map's and
 *   WeakMap's `getOrInsert` and `getOrInsertComputed` (later still; the same list as
 *   functions-shared/runtime_apis_test.ts, which keeps them out of the functions' own
 *   modules). A package that tests for one first goes on
 *   without it, as on hosted. Syntax newer than 13.0 (a `using` declaration) is no
 *   global to take away: the deploy stand-in refuses a package's or a function's
 *   JavaScript that has it (hosted_syntax.ts).
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

/** What V8 shipped after 13.0, the hosted runtime's (above), as owner and property names. */
const NEWER_THAN_HOSTED: [object, string[]][] = [
  [globalThis, [
    "DisposableStack",
    "AsyncDisposableStack",
    "SuppressedError",
    "Float16Array",
    "Temporal",
  ]],
  [Atomics, ["pause"]],
  [Error, ["isError"]],
  [Math, ["f16round", "sumPrecise"]],
  [Iterator, ["concat"]],
  [DataView.prototype, ["getFloat16", "setFloat16"]],
  [RegExp, ["escape"]],
  [Uint8Array, ["fromBase64", "fromHex"]],
  [Uint8Array.prototype, ["toBase64", "toHex", "setFromBase64", "setFromHex"]],
  [Map.prototype, ["getOrInsert", "getOrInsertComputed"]],
  [WeakMap.prototype, ["getOrInsert", "getOrInsertComputed"]],
];
for (const [owner, names] of NEWER_THAN_HOSTED) {
  for (const name of names) delete (owner as Record<string, unknown>)[name];
}
