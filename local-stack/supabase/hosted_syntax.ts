/**
 * JavaScript the hosted Edge Runtime cannot parse. Hosted runs V8 13.0 (its `v8` crate
 * is 130.0.7: supabase/edge-runtime's Cargo.lock), the local isolates the newer V8 of
 * the tools' Deno, so a module with syntax V8 gained since parses here and is a
 * SyntaxError there, at the function's boot: an npm package's files, or a function's own
 * `.js` module, which run as they are (the functions' own TypeScript modules are kept
 * off such syntax by functions-shared/runtime_apis_test.ts). The syntax V8 13.0 has is
 * ES2025's (import attributes, Chrome 123; RegExp modifiers and duplicate named capture
 * groups, Chrome 125) and not what came after: `using` and `await using` declarations
 * (explicit resource management, Chrome 134). So a file is parsed as ES2025, by acorn,
 * as a module or else as a CommonJS script.
 *
 * edge_globals.ts takes the newer APIs away in the local isolates; this is the syntax,
 * which no deleted global can stand in for.
 *
 * @module
 */

import { parse } from "acorn";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** The ECMAScript edition whose syntax hosted's V8 13.0 parses. */
export const HOSTED_ECMA_VERSION = 2025;

/** What keeps `text` from parsing on hosted (acorn's message, with its line and column), or undefined. */
export function hostedSyntaxProblem(text: string): string | undefined {
  let moduleError: Error | undefined;
  for (const sourceType of ["module", "script"] as const) {
    try {
      parse(text, {
        ecmaVersion: HOSTED_ECMA_VERSION,
        sourceType,
        allowHashBang: true,
        // CommonJS runs in a function: a return at its top is allowed.
        allowReturnOutsideFunction: sourceType === "script",
      });
      return undefined;
    } catch (error) {
      moduleError ??= error as Error;
    }
  }
  return moduleError!.message;
}

/** Whether a file is JavaScript V8 runs as it is (not TypeScript, not JSON). */
export function isJavaScript(path: string): boolean {
  return /\.(js|mjs|cjs)$/.test(path);
}

/** A file hosted cannot parse: its path from the package's folder, and why. */
export interface FileSyntaxProblem {
  file: string;
  reason: string;
}

/**
 * The first JavaScript file under `dir` (an npm package's folder, whole, as hosted
 * bundles it) that hosted cannot parse: its path from `dir` and why; or undefined.
 */
export function packageSyntaxProblem(dir: string): FileSyntaxProblem | undefined {
  const walk = (folder: string): FileSyntaxProblem | undefined => {
    for (const name of readdirSync(folder).sort()) {
      const path = join(folder, name);
      const problem = statSync(path).isDirectory()
        ? name === "node_modules" ? undefined : walk(path)
        : isJavaScript(name)
        ? fileProblem(path)
        : undefined;
      if (problem) return problem;
    }
    return undefined;
  };
  const fileProblem = (path: string) => {
    const reason = hostedSyntaxProblem(readFileSync(path, "utf8"));
    return reason ? { file: relative(dir, path), reason } : undefined;
  };
  return walk(dir);
}
