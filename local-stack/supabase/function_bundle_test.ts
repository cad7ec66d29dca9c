import assert from "node:assert/strict";
import { bundleUpload, infoSizeBytes, uploadPathProblem } from "./function_bundle.ts";

Deno.test("an upload's paths must be clean paths inside the project", () => {
  assert.equal(uploadPathProblem("supabase/functions/x/index.ts"), undefined);
  assert.equal(uploadPathProblem("functions-shared/http.ts"), undefined);
  for (const bad of ["/etc/passwd", "../x.ts", "a/../b.ts", "./a.ts", "a//b.ts", "C:/x.ts", ""]) {
    assert.ok(uploadPathProblem(bad), bad);
  }
});

Deno.test("deno info's size line is read in bytes", () => {
  assert.equal(infoSizeBytes("local: x\nsize: 55B\n"), 55);
  assert.equal(infoSizeBytes("size: 560.29KB"), Math.round(560.29 * 1024));
  assert.equal(infoSizeBytes("size: 13.46MB"), Math.round(13.46 * 1024 ** 2));
  assert.equal(infoSizeBytes("no size here"), undefined);
});

Deno.test("an upload is built from its files alone: a module left out is named", async () => {
  const text = (s: string) => new TextEncoder().encode(s);
  const files = new Map([
    [
      "supabase/functions/f/index.ts",
      text('import { a } from "../../../shared/a.ts";\nconsole.log(a);\n'),
    ],
  ]);
  const upload = { slug: "f", entrypointPath: "supabase/functions/f/index.ts", files };
  const missing = await bundleUpload(upload);
  assert.deepEqual(missing, {
    ok: false,
    problem: 'shared/a.ts: Module not found "shared/a.ts".',
  });
  files.set("shared/a.ts", text("export const a = 1;\n"));
  const built = await bundleUpload(upload);
  assert.ok(built.ok && built.bytes > 0, JSON.stringify(built));
  assert.deepEqual(await bundleUpload({ ...upload, entrypointPath: "nope.ts" }), {
    ok: false,
    problem: "the entry point nope.ts was not uploaded",
  });
});

Deno.test("an upload of 5,000,000 bytes deploys; a byte more is refused, counting files no module imports", async () => {
  const text = (s: string) => new TextEncoder().encode(s);
  const entry = "supabase/functions/f/index.ts";
  const files = new Map([[entry, text("console.log(1);\n")]]);
  const upload = { slug: "f", entrypointPath: entry, files };
  const alone = await bundleUpload(upload);
  assert.ok(alone.ok, JSON.stringify(alone));
  const graph = alone.bytes;
  files.set("supabase/functions/f/data.bin", new Uint8Array(5_000_000 - graph));
  assert.deepEqual(await bundleUpload(upload), { ok: true, bytes: 5_000_000 });
  files.set("supabase/functions/f/data.bin", new Uint8Array(5_000_001 - graph));
  assert.deepEqual(await bundleUpload(upload), {
    ok: false,
    problem: "Function source code exceeds the maximum deployment size: 5.00 MB, " +
      "where bundling on the server allows 5 MB",
  });
});

Deno.test("JavaScript hosted's V8 cannot parse is refused, naming the file", async () => {
  const text = (s: string) => new TextEncoder().encode(s);
  const entry = "supabase/functions/f/index.ts";
  const files = new Map([
    [entry, text('import { f } from "./helper.js";\nconsole.log(f());\n')],
    [
      "supabase/functions/f/helper.js",
      text("export const f = () => ({ [Symbol.dispose]() {} });\n"),
    ],
  ]);
  const upload = { slug: "f", entrypointPath: entry, files };
  const fine = await bundleUpload(upload);
  assert.ok(fine.ok, JSON.stringify(fine));
  files.set(
    "supabase/functions/f/helper.js",
    text("export function f() {\n  using h = g();\n  return h;\n}\n"),
  );
  assert.deepEqual(await bundleUpload(upload), {
    ok: false,
    problem: "supabase/functions/f/helper.js: the hosted Edge Runtime's V8 13.0 cannot parse it " +
      "(Unexpected token (2:8)): JavaScript newer than ES2025, such as a `using` declaration " +
      "(V8 13.4), boots there as a SyntaxError",
  });
});
