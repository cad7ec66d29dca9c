import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { runCaptured } from "./step_runner.ts";

Deno.test("runCaptured returns a step's exit code and its output, both streams", async () => {
  const result = await runCaptured("sh", ["-c", "echo out; echo err >&2; exit 3"]);
  assert.equal(result.code, 3);
  assert.match(result.output, /out/);
  assert.match(result.output, /err/);
});

Deno.test({
  name: "a step given `nice` runs at that lower priority, its children too",
  ignore: !existsSync("/usr/bin/nice"),
  fn: async () => {
    // `nice` with no command prints the niceness it runs at.
    const niced = await runCaptured("sh", ["-c", "nice"], { nice: 7 });
    const plain = await runCaptured("sh", ["-c", "nice"]);
    assert.equal(niced.code, 0);
    assert.equal(Number(niced.output.trim()), Number(plain.output.trim()) + 7);
  },
});
