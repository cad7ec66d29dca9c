import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostedSyntaxProblem, packageSyntaxProblem } from "./hosted_syntax.ts";

Deno.test("using declarations do not parse on hosted; V8 13.0's own syntax does", () => {
  assert.match(hostedSyntaxProblem("{ using handle = open(); }")!, /Unexpected token \(1:8\)/);
  assert.match(
    hostedSyntaxProblem("export async function f() { await using h = open(); }")!,
    /Unexpected token/,
  );
  for (
    const fine of [
      'import data from "./a.json" with { type: "json" };', // import attributes
      "export const r = /(?i:a)b/;", // RegExp modifiers
      "export const r = /(?<y>a)|(?<y>b)/;", // duplicate named groups
      "var using = 1; using = 2;", // `using` as a name
      "#!/usr/bin/env node\nmodule.exports = 1; return;", // CommonJS
      "with (o) { x; }", // sloppy script
      "await Promise.resolve(); class A { #x = 1; static {} }",
    ]
  ) {
    assert.equal(hostedSyntaxProblem(fine), undefined, fine);
  }
});

Deno.test("a package's first file hosted cannot parse is named, its nested packages left to their own check", () => {
  const dir = mkdtempSync(join(tmpdir(), "package-"));
  try {
    mkdirSync(join(dir, "lib"));
    mkdirSync(join(dir, "node_modules", "dep"), { recursive: true });
    writeFileSync(join(dir, "index.js"), "module.exports = require('./lib/a.js');\n");
    writeFileSync(join(dir, "lib", "a.js"), "exports.a = 1;\n");
    writeFileSync(join(dir, "node_modules", "dep", "x.js"), "{ using h = f(); }\n");
    writeFileSync(join(dir, "types.d.ts"), "export declare const a: number;\n");
    assert.equal(packageSyntaxProblem(dir), undefined);
    writeFileSync(join(dir, "lib", "b.mjs"), "export function f() {\n  using h = g();\n}\n");
    assert.deepEqual(packageSyntaxProblem(dir), {
      file: "lib/b.mjs",
      reason: "Unexpected token (2:8)",
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
