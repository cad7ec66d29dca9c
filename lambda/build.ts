/**
 * `npm run build:lambda`: bundles the stream forwarder (lambda/stream_forwarder.ts and
 * what it imports from functions-shared/) with esbuild into one CommonJS file for the
 * Lambda's `nodejs22.x` runtime (`--target=node22`: {@link LAMBDA_NODE_MAJOR}), and zips it
 * as Lambda deploys it: `lambda/dist/stream-forwarder.zip` with `index.js` at its root
 * (handler setting `index.handler`).
 *
 * @module
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { zipSync } from "fflate";
import { ROOT } from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";
import { LAMBDA_NODE_MAJOR } from "./lambda_node.ts";

/** Where the build writes. */
export const DIST = join(ROOT, "lambda", "dist");
/** The deployable archive. */
export const ZIP = join(DIST, "stream-forwarder.zip");

/** Builds the bundle and the zip; returns the zip's path. */
export async function buildLambda(): Promise<string> {
  mkdirSync(DIST, { recursive: true });
  const bundle = join(DIST, "index.js");
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
  writeFileSync(ZIP, zipSync({ "index.js": [readFileSync(bundle), { mtime }] }, { level: 9 }));
  return ZIP;
}

if (import.meta.main) {
  const zip = await buildLambda();
  console.log(`built ${zip} (${readFileSync(zip).byteLength} bytes)`);
}
