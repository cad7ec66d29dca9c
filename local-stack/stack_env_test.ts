import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_DYNAMODB_FAULTS, ensureStackEnv, readStackEnv } from "./stack_env.ts";

function tempEnvFile(text?: string): string {
  const file = join(Deno.makeTempDirSync(), "stack.env");
  if (text !== undefined) writeFileSync(file, text);
  return file;
}

Deno.test("a fresh stack.env serves DynamoDB with the production-like faults", async () => {
  const file = tempEnvFile();
  const env = await ensureStackEnv(file);
  assert.equal(env.DYNAMODB_FAULTS, DEFAULT_DYNAMODB_FAULTS);
  assert.equal(readStackEnv(file).DYNAMODB_FAULTS, DEFAULT_DYNAMODB_FAULTS);
});

Deno.test("an empty DYNAMODB_FAULTS (the old default) becomes the strict default; none and a chosen value are kept", async () => {
  assert.equal(
    (await ensureStackEnv(tempEnvFile("DYNAMODB_FAULTS=\n"))).DYNAMODB_FAULTS,
    DEFAULT_DYNAMODB_FAULTS,
  );
  assert.equal(
    (await ensureStackEnv(tempEnvFile("DYNAMODB_FAULTS=none\n"))).DYNAMODB_FAULTS,
    "none",
  );
  assert.equal(
    (await ensureStackEnv(tempEnvFile("DYNAMODB_FAULTS=stale_ms=500\n"))).DYNAMODB_FAULTS,
    "stale_ms=500",
  );
});

Deno.test("secrets and hand-added settings survive; addresses are rewritten", async () => {
  const file = tempEnvFile(
    "SYNC_WEBHOOK_SECRET=whsec_kept\nEDGE_CPU_SOFT_MS=900\nDATABASE_URL=postgresql://elsewhere/x\n",
  );
  const env = await ensureStackEnv(file);
  assert.equal(env.SYNC_WEBHOOK_SECRET, "whsec_kept");
  assert.match(env.DATABASE_URL, /^postgresql:\/\/postgres:postgres@127\.0\.0\.1:\d+\/postgres$/);
  assert.equal((readStackEnv(file) as unknown as Record<string, string>).EDGE_CPU_SOFT_MS, "900");
});
