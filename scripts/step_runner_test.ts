import assert from "node:assert/strict";
import { runCaptured } from "./step_runner.ts";

Deno.test("runCaptured returns a step's exit code and its output, both streams", async () => {
  const result = await runCaptured("sh", ["-c", "echo out; echo err >&2; exit 3"]);
  assert.equal(result.code, 3);
  assert.match(result.output, /out/);
  assert.match(result.output, /err/);
});
