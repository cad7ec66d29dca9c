import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { step, TEST_LOG_DIR } from "./step_runner.ts";

Deno.test("a failed step's command line and output show no password, printed or kept", async () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (...parts: unknown[]) => void printed.push(parts.join(" "));
  try {
    const url = "postgresql://postgres:hunter2@127.0.0.1:54322/postgres";
    const ok = await step("step_runner_test-passwords", "sh", ["-c", `echo ${url}; exit 1`, url]);
    assert.equal(ok, false);
  } finally {
    console.log = log;
  }
  const file = join(TEST_LOG_DIR, "step_runner_test-passwords.log");
  const kept = readFileSync(file, "utf8");
  rmSync(file);
  assert.match(printed.join("\n"), /FAILED: sh -c .* postgresql:\/\/postgres:\*\*\*@127/);
  for (const text of [printed.join("\n"), kept]) {
    assert.doesNotMatch(text, /hunter2/);
    assert.match(text, /postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:54322\/postgres/);
  }
});
