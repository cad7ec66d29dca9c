/**
 * Running terraform offline, for the checks of `npm test`: whether it is installed,
 * where a local mirror of the AWS provider is (this machine has no registry access), and
 * `terraform init` from it with the working files kept out of the repository.
 *
 * @module
 */

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** The folder of the Terraform configurations. */
export const TERRAFORM_DIR = new URL(".", import.meta.url).pathname.replace(/\/$/, "");

/**
 * The environment of the checks' terraform runs that start the AWS provider (init, test,
 * plan, show), given `TF_DATA_DIR`, the folder of their working files. `GOGC=400` unless
 * GOGC is set already: terraform and the AWS provider are Go programs, and the
 * provider, started three times per plan, spends much of its start collecting the garbage
 * of building its schemas. Collecting at 400 % heap growth instead of Go's 100 % took
 * `terraform test` of mmp-toledo-sync from 21.2 to 15.9 CPU seconds and a one-table plan
 * from 14.4 to 10.8 on a 2-core machine, each provider peaking at about 420 MB
 * instead of 315 MB (`npm test` is CPU-bound; GOGC=off took 2.2 GB).
 */
export function terraformEnv(dataDir: string): Record<string, string> {
  return { TF_DATA_DIR: dataDir, TF_IN_AUTOMATION: "1", GOGC: Deno.env.get("GOGC") ?? "400" };
}

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
 * The oldest AWS provider the configurations accept (`required_providers` in both
 * versions.tf; lambda_runtime_test.ts keeps them equal): the one the offline checks run
 * with (the image's mirror), as early 5.x releases refuse the Lambda's `nodejs22.x`.
 * Moving the Lambda to `nodejs24.x` raises it to 6.19.0, the first release that accepts
 * that runtime.
 */
export const AWS_PROVIDER_MIN = "5.100.0";

/** Whether version `a` (`6.19.0`) is at least version `b`, comparing the numbers in turn. */
export function versionAtLeast(a: string, b: string): boolean {
  const left = a.split(".").map(Number);
  const right = b.split(".").map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const x = left[i] ?? 0;
    const y = right[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/**
 * The versions of the AWS provider in a filesystem mirror: the folders of the unpacked
 * layout (`hashicorp/aws/5.100.0/linux_amd64/`) and the archives of the packed one
 * (`hashicorp/aws/terraform-provider-aws_5.100.0_linux_amd64.zip`).
 */
export function mirroredVersions(dir: string): string[] {
  const aws = join(dir, "registry.terraform.io", "hashicorp", "aws");
  if (!existsSync(aws)) return [];
  const versions: string[] = [];
  for (const entry of readdirSync(aws)) {
    const version = entry.match(/^(\d+\.\d+\.\d+)$/)?.[1] ??
      entry.match(/^terraform-provider-aws_(\d+\.\d+\.\d+)_/)?.[1];
    if (version !== undefined) versions.push(version);
  }
  return versions;
}

/**
 * A folder holding the AWS provider as a filesystem mirror (`terraform providers mirror`
 * makes one): `TF_PLUGIN_DIR`, else `/opt/tf-plugins`; undefined when neither has a
 * version the configurations accept ({@link AWS_PROVIDER_MIN} or newer). A mirror of
 * older versions only counts as none: `terraform init` could not install from it, so the
 * checks that need the provider are skipped as without a mirror.
 */
export function providerMirror(): string | undefined {
  const candidates = [Deno.env.get("TF_PLUGIN_DIR"), "/opt/tf-plugins"]
    .filter((dir): dir is string => Boolean(dir));
  return candidates.find((dir) =>
    mirroredVersions(dir).some((version) => versionAtLeast(version, AWS_PROVIDER_MIN))
  );
}

/**
 * The arguments of `terraform init` without a backend, from the mirror when there is one.
 * `-upgrade`: a provider lock left by an earlier init (not committed, see .gitignore) may
 * pin a version the configuration no longer accepts; the newest
 * acceptable version is chosen instead of failing on it.
 */
export function initArgs(mirror = providerMirror()): string[] {
  return [
    "init",
    "-upgrade",
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
