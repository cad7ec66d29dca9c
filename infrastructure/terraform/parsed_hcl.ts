/**
 * The Terraform's parsed HCL (`@cdktf/hcl2json`, HashiCorp's own parser built to
 * WebAssembly), for the offline checks of terraform_test.ts and lambda_runtime_test.ts:
 * the root configuration and the stream-sync module, each read as terraform reads its
 * .tf files together.
 *
 * @module
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
// @ts-types="./hcl2json.d.ts"
import { parse } from "@cdktf/hcl2json";

/** This directory, and the two configurations the tests parse. */
export const HERE = new URL(".", import.meta.url).pathname;
export const ROOT_CONFIG = join(HERE, "mmp-toledo-sync");
export const MODULE = join(HERE, "modules", "stream-sync");

/** Parsed HCL, as hcl2json gives it. */
// deno-lint-ignore no-explicit-any
export type Hcl = Record<string, any>;

/** Parses every .tf file of a directory into one object, as terraform reads them together. */
async function loadConfig(dir: string): Promise<Hcl> {
  const merged: Hcl = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".tf")).sort()) {
    const parsed = await parse(file, readFileSync(join(dir, file), "utf8"));
    for (const [kind, blocks] of Object.entries(parsed)) {
      if (Array.isArray(blocks)) merged[kind] = [...(merged[kind] ?? []), ...blocks];
      else {
        merged[kind] ??= {};
        // `module.NAME: [..]`, `variable.NAME: [..]`, or `resource.TYPE.NAME: [..]`.
        for (const [key, value] of Object.entries(blocks as Hcl)) {
          merged[kind][key] = Array.isArray(value)
            ? [...(merged[kind][key] ?? []), ...value]
            : { ...merged[kind][key], ...value };
        }
      }
    }
  }
  return merged;
}

/** The root configuration, infrastructure/terraform/mmp-toledo-sync. */
export const root = await loadConfig(ROOT_CONFIG);
/** The stream-sync module, infrastructure/terraform/modules/stream-sync. */
export const module = await loadConfig(MODULE);

/** The value of a block that appears once (hcl2json gives every block as a list). */
export function only<T = Hcl>(blocks: T[] | undefined, what: string): T {
  assert.equal(blocks?.length, 1, `exactly one ${what}`);
  return blocks![0];
}
