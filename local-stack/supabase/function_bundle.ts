/**
 * What Supabase's servers do with an Edge Function deployed with `--use-api` (bundling
 * on the server, which the CLI also falls back to when Docker is not running): they
 * build the function from the files the CLI uploaded, and nothing else, and refuse it
 * when it is larger than server-side bundling allows.
 *
 * - Only the uploaded files exist: the CLI finds the files to upload by reading import
 *   statements with a regular expression (the CLI 3.1.0 this repository pins, and the Go
 *   CLI before it, `WalkImportPaths` in pkg/function/deno.go of github.com/supabase/cli,
 *   use the same one), so a module it does not see (an import it cannot read, such as
 *   ``import(`./x.ts`)``) is missing on the server. Hosted may accept such a function
 *   and fail at its boot ("worker boot error: failed to read path", supabase/cli#2837);
 *   this stand-in refuses it at once, naming the module, which is never kinder. (`deno
 *   info` also follows type-only imports, which hosted skips; the CLI uploads them too.)
 * - Size: the Edge Runtime's bundle holds every file of every npm package the function
 *   resolves (`build_npm_vfs` adds each package folder whole, crates/deno_facade/eszip/vfs.rs
 *   of github.com/supabase/edge-runtime), and Supabase measures a function's size as
 *   `deno info` prints it; bundles made on its servers may weigh 5 MB, those made by the
 *   CLI 20 MB ("Edge Function bundle size issues",
 *   https://supabase.com/docs/guides/troubleshooting/edge-function-bundle-size-issues).
 *   Counted here as 5,000,000 bytes (`deno info`'s MB are 1,048,576), with every uploaded
 *   file that is no module of the graph added (an import map, a static file).
 * - Syntax: hosted's V8 13.0 cannot parse JavaScript newer than ES2025, such as a `using`
 *   declaration, in an npm package's files or a function's own `.js` module
 *   (hosted_syntax.ts). Hosted deploys such a function and fails at its boot with a
 *   SyntaxError; this stand-in refuses it at once, naming the file.
 *
 * The module graph is built by the real Deno (`deno info`) in a folder holding only the
 * upload, with the uploaded import map, from the entry point.
 *
 * @module
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DENO_BIN } from "../config.ts";
import { hostedSyntaxProblem, isJavaScript, packageSyntaxProblem } from "./hosted_syntax.ts";

/** The largest function Supabase's servers bundle, in bytes (the stricter reading of 5 MB). */
export const SERVER_BUNDLE_MAX_BYTES = 5_000_000;

/** How long one `deno info` may take (it may download the npm packages first). */
const DENO_INFO_TIMEOUT_MS = 120_000;

/** What was uploaded for one function. */
export interface Upload {
  slug: string;
  entrypointPath: string;
  importMapPath?: string;
  /** The files by their path relative to the project, as the CLI named them. */
  files: Map<string, Uint8Array>;
}

/** What building an upload found: its size, or why it cannot be built. */
export type BundleOutcome = { ok: true; bytes: number } | { ok: false; problem: string };

/** Why a path named in an upload cannot be a file of the project, or undefined. */
export function uploadPathProblem(path: string): string | undefined {
  if (path === "" || path.startsWith("/") || /^[A-Za-z]:/.test(path)) {
    return `${JSON.stringify(path)} is not a path relative to the project`;
  }
  if (path.split("/").some((part) => part === ".." || part === "." || part === "")) {
    return `${JSON.stringify(path)} is not a clean path inside the project`;
  }
  return undefined;
}

/** `deno info`'s size line (`560.29KB`) in bytes. */
export function infoSizeBytes(text: string): number | undefined {
  const match = /^size: ([\d.]+)(B|KB|MB|GB)$/m.exec(text);
  if (!match) return undefined;
  const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[match[2]]!;
  return Math.round(Number(match[1]) * unit);
}

async function denoInfo(dir: string, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(DENO_BIN, {
    args: ["info", "--no-lock", ...args],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(DENO_INFO_TIMEOUT_MS),
  }).output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) {
    throw new Error(`deno info failed: ${new TextDecoder().decode(stderr).trim() || text}`);
  }
  return text;
}

/**
 * The first JavaScript of `upload` hosted's V8 cannot parse (its own `.js` modules, then
 * each npm package's files), named with the reason; or undefined.
 */
function syntaxProblem(
  upload: Upload,
  packages: Record<string, { localPath: string }>,
): string | undefined {
  const unparsable = (where: string, why: string) =>
    `${where}: the hosted Edge Runtime's V8 13.0 cannot parse it (${why}): JavaScript newer ` +
    "than ES2025, such as a `using` declaration (V8 13.4), boots there as a SyntaxError";
  for (const [path, bytes] of upload.files) {
    const why = isJavaScript(path)
      ? hostedSyntaxProblem(new TextDecoder().decode(bytes))
      : undefined;
    if (why) return unparsable(path, why);
  }
  for (const [id, { localPath }] of Object.entries(packages)) {
    const problem = packageSyntaxProblem(localPath);
    if (problem) return unparsable(`npm:${id} ${problem.file}`, problem.reason);
  }
  return undefined;
}

/**
 * Builds `upload` as the servers would: its module graph from the uploaded files alone,
 * every module found, and its size within {@link SERVER_BUNDLE_MAX_BYTES}.
 */
export async function bundleUpload(upload: Upload): Promise<BundleOutcome> {
  for (const path of upload.files.keys()) {
    const problem = uploadPathProblem(path);
    if (problem) return { ok: false, problem };
  }
  if (!upload.files.has(upload.entrypointPath)) {
    return { ok: false, problem: `the entry point ${upload.entrypointPath} was not uploaded` };
  }
  if (upload.importMapPath && !upload.files.has(upload.importMapPath)) {
    return { ok: false, problem: `the import map ${upload.importMapPath} was not uploaded` };
  }
  const dir = mkdtempSync(join(tmpdir(), `bundle-${upload.slug}-`));
  try {
    for (const [path, bytes] of upload.files) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), bytes);
    }
    const config = upload.importMapPath ? ["--config", upload.importMapPath] : [];
    const graph = JSON.parse(
      await denoInfo(dir, ["--json", ...config, upload.entrypointPath]),
    ) as {
      modules: { specifier: string; error?: string }[];
      npmPackages?: Record<string, { localPath: string }>;
    };
    const broken = graph.modules.find((m) => m.error !== undefined);
    if (broken) {
      const where = broken.specifier.replace(`file://${dir}/`, "");
      return { ok: false, problem: `${where}: ${broken.error!.replaceAll(`file://${dir}/`, "")}` };
    }
    const syntax = syntaxProblem(upload, graph.npmPackages ?? {});
    if (syntax) return { ok: false, problem: syntax };
    const graphSize = infoSizeBytes(await denoInfo(dir, [...config, upload.entrypointPath]));
    if (graphSize === undefined) return { ok: false, problem: "deno info printed no size" };
    const modules = new Set(graph.modules.map((m) => m.specifier.replace(`file://${dir}/`, "")));
    const bytes = graphSize + [...upload.files].filter(([path]) => !modules.has(path))
      .reduce((sum, [, content]) => sum + content.length, 0);
    if (bytes > SERVER_BUNDLE_MAX_BYTES) {
      return {
        ok: false,
        problem: `Function source code exceeds the maximum deployment size: ${
          (bytes / 1e6).toFixed(2)
        } MB, where bundling on the server allows ${SERVER_BUNDLE_MAX_BYTES / 1e6} MB`,
      };
    }
    return { ok: true, bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
