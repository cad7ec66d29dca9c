/**
 * Running terraform offline, for the checks of `npm test`: whether it is installed,
 * where a local mirror of the AWS provider is (this machine has no registry access), and
 * `terraform init` from it with the working files kept out of the repository.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";

/** The folder of the Terraform configurations. */
export const TERRAFORM_DIR = new URL(".", import.meta.url).pathname.replace(/\/$/, "");

/** Whether `terraform` runs here. */
export async function terraformInstalled(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("terraform", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/**
 * A folder holding the AWS provider as a filesystem mirror (`terraform providers mirror`
 * makes one): `TF_PLUGIN_DIR`, else `/opt/tf-plugins`; undefined when neither has it.
 */
export function providerMirror(): string | undefined {
  const candidates = [Deno.env.get("TF_PLUGIN_DIR"), "/opt/tf-plugins"]
    .filter((dir): dir is string => Boolean(dir));
  return candidates.find((dir) =>
    existsSync(join(dir, "registry.terraform.io", "hashicorp", "aws"))
  );
}

/** The arguments of `terraform init` without a backend, from the mirror when there is one. */
export function initArgs(mirror = providerMirror()): string[] {
  return [
    "init",
    "-backend=false",
    "-input=false",
    "-no-color",
    ...(mirror ? [`-plugin-dir=${mirror}`] : []),
  ];
}

/** Whether a failed init failed only for want of a registry (no mirror, no network). */
export function providerUnreachable(output: string, mirror = providerMirror()): boolean {
  return !mirror && /registry\.terraform\.io|Failed to query available provider/.test(output);
}
