import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_DYNAMODB_FAULTS, ensureStackEnv, readStackEnv } from "./stack_env.ts";

/** Runs `use` on a stack.env (holding `text`) in a folder of its own, removed after. */
async function withEnvFile<T>(text: string | undefined, use: (file: string) => Promise<T>) {
  const dir = Deno.makeTempDirSync({ prefix: "stack-env-test-" });
  try {
    const file = join(dir, "stack.env");
    if (text !== undefined) writeFileSync(file, text);
    return await use(file);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The DYNAMODB_FAULTS that ensureStackEnv leaves of a stack.env holding `text`. */
const faultsAfter = (text: string) =>
  withEnvFile(text, async (file) => (await ensureStackEnv(file)).DYNAMODB_FAULTS);

Deno.test("a fresh stack.env serves DynamoDB with the production-like faults", async () => {
  await withEnvFile(undefined, async (file) => {
    const env = await ensureStackEnv(file);
    assert.equal(env.DYNAMODB_FAULTS, DEFAULT_DYNAMODB_FAULTS);
    assert.equal(readStackEnv(file).DYNAMODB_FAULTS, DEFAULT_DYNAMODB_FAULTS);
  });
});

Deno.test("an empty DYNAMODB_FAULTS (the old default) becomes the strict default; none and a chosen value are kept", async () => {
  assert.equal(await faultsAfter("DYNAMODB_FAULTS=\n"), DEFAULT_DYNAMODB_FAULTS);
  assert.equal(await faultsAfter("DYNAMODB_FAULTS=none\n"), "none");
  assert.equal(await faultsAfter("DYNAMODB_FAULTS=stale_ms=500\n"), "stale_ms=500");
});

Deno.test("secrets and hand-added settings survive; addresses are rewritten", async () => {
  const text =
    "SYNC_WEBHOOK_SECRET=whsec_kept\nEDGE_CPU_SOFT_MS=900\nDATABASE_URL=postgresql://elsewhere/x\n";
  await withEnvFile(text, async (file) => {
    const env = await ensureStackEnv(file);
    assert.equal(env.SYNC_WEBHOOK_SECRET, "whsec_kept");
    assert.match(env.DATABASE_URL, /^postgresql:\/\/postgres:postgres@127\.0\.0\.1:\d+\/postgres$/);
    assert.equal((readStackEnv(file) as unknown as Record<string, string>).EDGE_CPU_SOFT_MS, "900");
  });
});
