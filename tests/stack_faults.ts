/**
 * Restarts the local stack's DynamoDB proxy with other faults (DYNAMODB_FAULTS,
 * local-stack/aws/faults.ts), for tests that run alone (scripts/e2e_plan.ts).
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { DENO_BIN, ROOT, STACK_ENV_FILE } from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";
import { writeStackEnvFile } from "../local-stack/stack_env.ts";

/** Sets DYNAMODB_FAULTS in stack.env and runs `stack:up`; returns the value it replaced. */
export async function setFaults(value: string): Promise<string> {
  const text = readFileSync(STACK_ENV_FILE, "utf8");
  const old = currentFaults(text);
  if (old === value) return old;
  const next = /^DYNAMODB_FAULTS=/m.test(text)
    ? text.replace(/^DYNAMODB_FAULTS=.*$/m, `DYNAMODB_FAULTS=${value}`)
    : `${text}DYNAMODB_FAULTS=${value}\n`;
  writeStackEnvFile(STACK_ENV_FILE, next);
  await run(DENO_BIN, ["run", "-A", "local-stack/stack.ts", "up"], { cwd: ROOT });
  return old;
}

/** The DYNAMODB_FAULTS of stack.env ("" when unset). */
export function currentFaults(text = readFileSync(STACK_ENV_FILE, "utf8")): string {
  return /^DYNAMODB_FAULTS=(.*)$/m.exec(text)?.[1] ?? "";
}
