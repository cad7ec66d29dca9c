/**
 * Starts and stops the DynamoDB proxy (local-stack/aws/main.ts) as a part of the stack,
 * logging to `.local/logs/dynamodb_proxy.log`. It is restarted when its code or its
 * DYNAMODB_FAULTS changed, or when DynamoDB Local was started anew (its remembered
 * versions would describe a database that is gone).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DENO_BIN, DYNAMODB_PORT, HOST, PID_DIR, ROOT } from "../config.ts";
import {
  logFile,
  portOpen,
  portTaken,
  runningPid,
  startDetached,
  stopDetached,
  waitFor,
} from "../processes.ts";
import { describeFaults, parseFaults } from "./faults.ts";

/** The proxy's name in `.local/pids` and `.local/logs`. */
export const PROXY_NAME = "dynamodb_proxy";

function fingerprint(faults: string): string {
  const hash = createHash("sha256").update(`DYNAMODB_FAULTS=${faults}\n`);
  const dir = join(ROOT, "local-stack", "aws");
  for (const file of readdirSync(dir).sort()) hash.update(readFileSync(join(dir, file)));
  hash.update(readFileSync(join(ROOT, "local-stack", "config.ts")));
  return hash.digest("hex");
}

/**
 * Starts the proxy unless it runs with the same code and faults; throws, naming the
 * setting and the value, when DYNAMODB_FAULTS is invalid.
 */
export async function startProxy(
  faultsText: string,
  dynamoRestarted: boolean,
): Promise<string> {
  const faults = parseFaults(faultsText);
  const print = fingerprint(faultsText);
  const printFile = join(PID_DIR, `${PROXY_NAME}.fingerprint`);
  const same = existsSync(printFile) && readFileSync(printFile, "utf8") === print;
  if (runningPid(PROXY_NAME) !== undefined && same && !dynamoRestarted) {
    return `reused (faults: ${describeFaults(faults)})`;
  }
  await stopDetached(PROXY_NAME);
  if (await portOpen(HOST, DYNAMODB_PORT)) throw portTaken(DYNAMODB_PORT, "the DynamoDB proxy");
  startDetached({
    name: PROXY_NAME,
    command: DENO_BIN,
    args: ["run", "-A", "--no-prompt", join(ROOT, "local-stack", "aws", "main.ts")],
    env: { DYNAMODB_FAULTS: faultsText },
    cwd: ROOT,
  });
  writeFileSync(printFile, print);
  await waitFor(
    "the DynamoDB proxy",
    () => portOpen(HOST, DYNAMODB_PORT),
    60_000,
    logFile(PROXY_NAME),
  );
  return `started (faults: ${describeFaults(faults)})`;
}

/** Stops the proxy; returns whether it was running. */
export async function stopProxy(): Promise<boolean> {
  return await stopDetached(PROXY_NAME);
}
