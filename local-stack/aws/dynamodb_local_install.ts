/**
 * Installs AWS's DynamoDB Local (its jar and native libraries) for the stack, from the
 * `amplify-dynamodb-simulator` package on the npm registry, which ships them in its
 * `emulator/` folder. Only that folder is taken: the package's own dependencies (the AWS
 * CDK, TypeScript, the Amplify CLI's core: 260 packages) are never installed, which took
 * `npm ci` from 11 to 26 s and 14 to 34 s of CPU on this machine, for nothing the stack runs.
 *
 * `npm pack` fetches the package's tarball (through npm's cache), which is checked against
 * the pinned sha512 before anything is extracted; a marker beside the files names what was
 * installed, so a later run that finds it does nothing.
 *
 *   deno run -A local-stack/aws/dynamodb_local_install.ts     (scripts/bootstrap.sh runs it)
 *
 * @module
 */

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../config.ts";
import { run } from "../processes.ts";

/** The package that ships the jar, pinned with its registry integrity. */
export const DYNAMODB_LOCAL_PACKAGE = {
  name: "amplify-dynamodb-simulator",
  version: "2.9.30",
  integrity:
    "sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ==",
} as const;

/** Where DynamoDB Local's jar and its `DynamoDBLocal_lib/` are installed. */
export const DYNAMODB_LOCAL_DIR = join(ROOT, "node_modules", ".dynamodb-local");

const MARKER = ".installed";

/** What the installer runs: fakes in the tests. */
export interface InstallDeps {
  /** Fetches the package's tarball into `dir`; returns the tarball's path. */
  pack(spec: string, dir: string): Promise<string>;
  /** Extracts the package's `emulator/` folder from `tarball` into `dest`. */
  extract(tarball: string, dest: string): Promise<void>;
  log(line: string): void;
}

/** The sha512 integrity (`sha512-<base64>`) of `bytes`, as npm writes it. */
export async function integrityOf(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", bytes));
  return `sha512-${btoa(String.fromCharCode(...digest))}`;
}

/**
 * Installs DynamoDB Local into `dir` unless its marker names the pinned package already.
 * Returns whether it installed. Throws an Error naming the package and the cause when the
 * tarball cannot be fetched, does not match the pinned integrity, or lacks the jar.
 */
export async function installDynamoLocal(
  deps: InstallDeps = realDeps,
  dir = DYNAMODB_LOCAL_DIR,
  pinned: { name: string; version: string; integrity: string } = DYNAMODB_LOCAL_PACKAGE,
): Promise<boolean> {
  const spec = `${pinned.name}@${pinned.version}`;
  const marker = join(dir, MARKER);
  if (existsSync(marker) && readFileSync(marker, "utf8").trim() === pinned.integrity) {
    return false;
  }
  deps.log(`bootstrap: installing DynamoDB Local from ${spec}`);
  const work = mkdtempSync(join(tmpdir(), "dynamodb-local-"));
  try {
    const tarball = await deps.pack(spec, work);
    const found = await integrityOf(new Uint8Array(readFileSync(tarball)));
    if (found !== pinned.integrity) {
      throw new Error(
        `DynamoDB Local: ${spec} from the npm registry has integrity ${found}, ` +
          `not the pinned ${pinned.integrity}; nothing was installed`,
      );
    }
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await deps.extract(tarball, dir);
    if (!existsSync(join(dir, "DynamoDBLocal.jar"))) {
      throw new Error(`DynamoDB Local: ${spec} has no emulator/DynamoDBLocal.jar`);
    }
    writeFileSync(marker, `${pinned.integrity}\n`);
    return true;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** `step`'s result; its failure thrown again as DynamoDB Local's, naming `what`. */
async function named<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw new Error(`DynamoDB Local: ${what} failed: ${(error as Error).message}`);
  }
}

const realDeps: InstallDeps = {
  async pack(spec, dir) {
    const name = await named(`npm pack ${spec}`, () =>
      run("npm", [
        "pack",
        spec,
        "--pack-destination",
        dir,
        // From npm's cache when it has the tarball (npm ci may have just run offline): the
        // tarball is checked against the pinned sha512 either way.
        "--prefer-offline",
        "--loglevel=error",
      ], { cwd: dir, stdoutOnly: true }));
    return join(dir, name.trim().split("\n").at(-1)!);
  },
  async extract(tarball, dest) {
    await named(
      "extracting its emulator/ folder",
      () => run("tar", ["-xzf", tarball, "-C", dest, "--strip-components=2", "package/emulator"]),
    );
  },
  log: (line) => console.log(line),
};

if (import.meta.main) {
  try {
    await installDynamoLocal();
  } catch (error) {
    console.error(`bootstrap: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
