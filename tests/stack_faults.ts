/**
 * Restarts the local stack's DynamoDB proxy with other faults (DYNAMODB_FAULTS,
 * local-stack/aws/faults.ts), or its S3 stand-in (S3_FAULTS, local-stack/aws/s3_faults.ts),
 * for tests that run alone (scripts/e2e_plan.ts).
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { DENO_BIN, ROOT, STACK_ENV_FILE } from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";
import { writeStackEnvFile } from "../local-stack/stack_env.ts";

/** Sets DYNAMODB_FAULTS in stack.env and runs `stack:up`; returns the value it replaced. */
export function setFaults(value: string): Promise<string> {
  return setSetting("DYNAMODB_FAULTS", value);
}

/**
 * Sets S3_FAULTS (the S3 stand-in's, local-stack/aws/s3_faults.ts) in stack.env and runs
 * `stack:up`; returns the value it replaced.
 */
export function setS3Faults(value: string): Promise<string> {
  return setSetting("S3_FAULTS", value);
}

async function setSetting(name: string, value: string): Promise<string> {
  const text = readFileSync(STACK_ENV_FILE, "utf8");
  const old = currentSetting(name, text);
  if (old === value) return old;
  const line = new RegExp(`^${name}=.*$`, "m");
  const next = line.test(text)
    ? text.replace(line, `${name}=${value}`)
    : `${text}${name}=${value}\n`;
  writeStackEnvFile(STACK_ENV_FILE, next);
  await run(DENO_BIN, ["run", "-A", "local-stack/stack.ts", "up"], { cwd: ROOT });
  return old;
}

/** The DYNAMODB_FAULTS of stack.env ("" when unset). */
export function currentFaults(text = readFileSync(STACK_ENV_FILE, "utf8")): string {
  return currentSetting("DYNAMODB_FAULTS", text);
}

/** The S3_FAULTS of stack.env ("" when unset). */
export function currentS3Faults(text = readFileSync(STACK_ENV_FILE, "utf8")): string {
  return currentSetting("S3_FAULTS", text);
}

function currentSetting(name: string, text: string): string {
  return new RegExp(`^${name}=(.*)$`, "m").exec(text)?.[1] ?? "";
}
