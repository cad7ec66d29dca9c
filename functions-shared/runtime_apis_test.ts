/**
 * The functions run on hosted Supabase's Edge Runtime: Deno 2.1.4 on V8 13.0
 * (supabase/edge-runtime's Cargo.toml: `deno` 2.1.4, rusty_v8 `v130.0.7`), with Supabase's
 * own patches. The local isolates run the tools' newer Deno (functions-shared/crc32.ts
 * says why not a plain 2.1.4), which has JavaScript the hosted runtime lacks: a function
 * using it would pass every local test and fail on hosted with a TypeError. This keeps
 * the functions' modules off the APIs V8 gained after 13.0 (Chrome 130).
 */

import assert from "node:assert/strict";

/** APIs newer than V8 13.0, each with the Chrome release that brought it. */
const NEWER_THAN_HOSTED: [RegExp, string][] = [
  [/\bUint8Array\.fromBase64\b|\.(toBase64|setFromBase64)\(/, "Uint8Array base64 (Chrome 140)"],
  [/\bUint8Array\.fromHex\b|\.(toHex|setFromHex)\(/, "Uint8Array hex (Chrome 140)"],
  [/\bRegExp\.escape\b/, "RegExp.escape (Chrome 136)"],
  [/\bFloat16Array\b|\bMath\.f16round\b|\.[gs]etFloat16\(/, "Float16Array (Chrome 135)"],
  [/\bError\.isError\b/, "Error.isError (Chrome 134)"],
  [/\b(Async)?DisposableStack\b|\bSuppressedError\b/, "explicit resource management (Chrome 134)"],
  // Syntax, kept out whether or not hosted's TypeScript emit would lower it (in a
  // package's JavaScript, local-stack/supabase/hosted_syntax.ts refuses it at deploy).
  [/\b(await\s+)?using\s+[A-Za-z_$][\w$]*\s*=/, "using declarations (Chrome 134)"],
  [/\bAtomics\.pause\b/, "Atomics.pause (Chrome 133)"],
  [/\bTemporal\./, "Temporal (Chrome 144)"],
  [/\bMath\.sumPrecise\b/, "Math.sumPrecise"],
  [/\bIterator\.concat\b/, "Iterator.concat"],
  [/\.getOrInsert(Computed)?\(/, "Map upsert"],
];

/**
 * What the hosted runtime does not have at all (supabase/edge-runtime's
 * ext/runtime/js/bootstrap.js; "Web Worker API (or Node vm API) are not available",
 * https://supabase.com/docs/guides/functions/limits). The local isolates take the globals
 * away too (local-stack/supabase/edge_globals.ts), but not `node:vm`; they take away what
 * V8 gained after 13.0 (above) as well, which a package may call.
 */
const NOT_ON_HOSTED: [RegExp, string][] = [
  [/["'](node:)?vm["']/, "node:vm"],
  [/\bnew Worker\(/, "Web Workers"],
  [/\bSharedArrayBuffer\b/, "SharedArrayBuffer"],
];

/** The modules a deployed function is made of: functions-shared and the entry points. */
function functionModules(): string[] {
  const shared = new URL(".", import.meta.url);
  const modules = [...Deno.readDirSync(shared)]
    .filter((e) => e.name.endsWith(".ts") && !/_test\.ts$|fakes\.ts$/.test(e.name))
    .map((e) => new URL(e.name, shared).pathname);
  const functions = new URL("../supabase/functions/", import.meta.url);
  for (const entry of Deno.readDirSync(functions)) {
    if (entry.isDirectory) modules.push(new URL(`${entry.name}/index.ts`, functions).pathname);
  }
  return modules;
}

/** Each use of one of `apis` in the functions' modules: the module and what it uses. */
function usesOf(apis: [RegExp, string][]): string[] {
  const found: string[] = [];
  for (const path of functionModules()) {
    const text = Deno.readTextFileSync(path);
    for (const [api, what] of apis) {
      if (api.test(text)) found.push(`${path.split("/").slice(-2).join("/")}: ${what}`);
    }
  }
  return found;
}

Deno.test("the functions use no JavaScript newer than the hosted Edge Runtime's V8 13.0", () => {
  assert.deepEqual(usesOf(NEWER_THAN_HOSTED), []);
  assert.ok(functionModules().length > 60, "it read the functions' modules");
});

Deno.test("the functions use nothing the hosted Edge Runtime takes away", () => {
  assert.deepEqual(usesOf(NOT_ON_HOSTED), []);
  const sample = 'import vm from "node:vm"; new Worker(url); new SharedArrayBuffer(8);';
  assert.equal(NOT_ON_HOSTED.filter(([api]) => api.test(sample)).length, 3);
});

Deno.test("the check finds what it looks for", () => {
  const sample = "const b = Uint8Array.fromBase64(text); const e = RegExp.escape(x);" +
    " { await using conn = await pool.connect(); }";
  const hits = NEWER_THAN_HOSTED.filter(([api]) => api.test(sample)).map(([, what]) => what);
  assert.deepEqual(hits, [
    "Uint8Array base64 (Chrome 140)",
    "RegExp.escape (Chrome 136)",
    "using declarations (Chrome 134)",
  ]);
});
