/**
 * `npm run build:lambda`: bundles the stream forwarder (lambda/stream_forwarder.ts and
 * what it imports from functions-shared/) with esbuild into one CommonJS file for the
 * Lambda's `nodejs22.x` runtime (`--target=node22`: {@link LAMBDA_NODE_MAJOR}), and zips it
 * as Lambda deploys it: `lambda/dist/stream-forwarder.zip` with `index.js` at its root
 * (handler setting `index.handler`).
 *
 * @module
 */

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { zipSync } from "fflate";
import { ROOT } from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";
import { LAMBDA_NODE_MAJOR } from "./lambda_node.ts";

/** Where the build writes. */
export const DIST = join(ROOT, "lambda", "dist");
/** The deployable archive. */
export const ZIP = join(DIST, "stream-forwarder.zip");

/**
 * Builds the bundle and the zip; returns the zip's path. Safe to run while another build
 * runs or while Terraform reads the zip (`npm test` does both): each build bundles into a
 * file of its own, and the zip appears whole, by a rename.
 */
export async function buildLambda(): Promise<string> {
  mkdirSync(DIST, { recursive: true });
  const own = `${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const bundle = join(DIST, `index.${own}.js`);
  try {
    await run(join(ROOT, "node_modules", ".bin", "esbuild"), [
      join(ROOT, "lambda", "stream_forwarder.ts"),
      "--bundle",
      "--platform=node",
      // The runtime's Node.js major; the runtime itself is set in the Terraform module.
      `--target=node${LAMBDA_NODE_MAJOR}`,
      "--format=cjs",
      "--minify-syntax",
      `--outfile=${bundle}`,
      "--log-level=warning",
    ]);
    // A fixed date keeps the archive's bytes the same for the same code.
    const mtime = new Date("2026-01-01T00:00:00Z");
    const zip = zipSync({ "index.js": [readFileSync(bundle), { mtime }] }, { level: 9 });
    writeFileSync(`${ZIP}.${own}`, zip);
    renameSync(`${ZIP}.${own}`, ZIP);
  } finally {
    rmSync(bundle, { force: true });
    rmSync(`${ZIP}.${own}`, { force: true });
  }
  return ZIP;
}

if (import.meta.main) {
  const zip = await buildLambda();
  console.log(`built ${zip} (${readFileSync(zip).byteLength} bytes)`);
}
