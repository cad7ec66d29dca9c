import assert from "node:assert/strict";
import { join } from "node:path";
import { definitionOf, type RunDeps, runTests, type TestDefinition } from "./e2e_runner.ts";
import { denoTestCounts } from "./test_counts.ts";

/** Runs `tests` with a clock that moves 1 ms a reading; `uncaught` is handed out once. */
async function run(tests: TestDefinition[], uncaught: unknown[] = []) {
  const lines: string[] = [];
  let now = 0;
  const deps: RunDeps = {
    print: (line) => lines.push(line),
    now: () => now++,
    takeUncaught: () => uncaught.shift(),
    turn: () => Promise.resolve(),
  };
  const summary = await runTests(tests, deps);
  return { summary, text: lines.join("\n") };
}

const pass = () => {};
const fail = () => {
  throw new Error("the row is missing");
};

Deno.test("Deno.test's forms all give a name and a function", () => {
  const named = function named() {};
  assert.equal(definitionOf("a", pass).name, "a");
  assert.equal(definitionOf("b", { ignore: true }, pass).ignore, true);
  assert.equal(definitionOf({ name: "c", fn: pass, only: true }).only, true);
  assert.equal(definitionOf(named).name, "named");
  assert.equal(definitionOf({ ignore: false }, named).name, "named");
  assert.throws(() => definitionOf({ name: "d" }), /needs a name and a function/);
  assert.throws(
    () => definitionOf({ name: "e", fn: pass, permissions: { net: false } }),
    /e: "permissions" is not supported/,
  );
});

Deno.test("passed, failed and ignored tests are counted, and the summary reads as deno test's", async () => {
  const { summary, text } = await run([
    { name: "first", fn: pass },
    { name: "second", fn: fail },
    { name: "third", fn: pass, ignore: true },
    { name: "fourth", fn: async () => await Promise.resolve() },
  ]);
  assert.deepEqual([summary.passed, summary.failed, summary.ignored], [2, 1, 1]);
  assert.match(text, /^second \.\.\.\nFAILED \(\d+ms\)$/m);
  assert.match(text, /ERRORS\n\nsecond\nError: the row is missing/);
  assert.match(summary.line, /^FAILED \| 2 passed \| 1 failed \| 1 ignored \(\d+ms\)$/);
  assert.deepEqual(denoTestCounts(text), { passed: 2, failed: 1 }, "the step runner's reading");
});

Deno.test("steps are run and reported, and a failed step fails its test", async () => {
  const { summary, text } = await run([{
    name: "outer",
    fn: async (t) => {
      assert.equal(await t.step("good", pass), true);
      assert.equal(await t.step({ name: "bad", fn: fail }), false);
      await t.step("nested", async (u) => {
        await u.step("inner", pass);
      });
    },
  }]);
  assert.deepEqual([summary.passed, summary.failed, summary.steps], [0, 1, 4]);
  assert.match(text, /^ {2}bad \.\.\. FAILED/m);
  assert.match(text, /^ {4}inner \.\.\. ok/m);
  assert.match(text, /outer\nError: 1 of its steps failed/);
  assert.deepEqual(denoTestCounts(text), { passed: 0, failed: 1 });
});

Deno.test("an error no test handled fails the running test and stops the file", async () => {
  const ran: string[] = [];
  const { summary, text } = await run([
    { name: "first", fn: () => void ran.push("first") },
    { name: "second", fn: () => void ran.push("second") },
    { name: "third", fn: () => void ran.push("third") },
  ], [undefined, new Error("a socket closed under a query")]);
  assert.deepEqual(ran, ["first", "second"]);
  assert.deepEqual([summary.passed, summary.failed], [1, 1]);
  assert.match(text, /second\nError: a socket closed under a query/);
  assert.match(text, /stopped by an error no test handled/);
});

Deno.test("a test marked only runs alone, and the file fails for it", async () => {
  const ran: string[] = [];
  const { summary, text } = await run([
    { name: "first", fn: () => void ran.push("first") },
    { name: "second", fn: () => void ran.push("second"), only: true },
  ]);
  assert.deepEqual(ran, ["second"]);
  assert.equal(summary.failed, 1, "the exit code fails");
  assert.match(text, /the "only" option was used/);
  assert.match(summary.line, /^FAILED \| 1 passed \| 0 failed/);
});

/** Runs a test file of `code` by the runner, in a process of its own: its exit code and stdout. */
async function runFile(code: string): Promise<{ code: number; text: string }> {
  const dir = await Deno.makeTempDir({ prefix: "e2e-runner-" });
  try {
    const file = join(dir, "x_test.ts");
    await Deno.writeTextFile(file, code);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(import.meta.dirname!, "e2e_runner.ts"), file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, text: new TextDecoder().decode(out.stdout) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a file run by the runner: its tests run in the runner's process, and its exit code says how they went", async () => {
  const { code, text } = await runFile(
    'Deno.test("adds", () => { if (1 + 1 !== 2) throw new Error("no"); });\n' +
      'Deno.test({ name: "later", ignore: true, fn: () => {} });\n' +
      'Deno.test("rejects unseen", () => { Promise.reject(new Error("lost")); });\n' +
      'Deno.test("never runs", () => {});\n',
  );
  assert.equal(code, 1, text);
  assert.match(text, /running 4 tests from/);
  assert.match(text, /rejects unseen\nError: lost/);
  assert.deepEqual(denoTestCounts(text), { passed: 1, failed: 1 });
});

Deno.test("a test that calls Deno.exit fails instead of ending its file with a passing code", async () => {
  const { code, text } = await runFile(
    'Deno.test("exits", () => { Deno.exit(0); });\n' +
      'Deno.test("exits later", async () => { await Promise.resolve(); Deno.exit(3); });\n' +
      'Deno.test("passes", () => {});\n',
  );
  assert.equal(code, 1, text);
  assert.match(text, /Test case attempted to exit with exit code: 0/);
  assert.match(text, /Test case attempted to exit with exit code: 3/);
  assert.deepEqual(denoTestCounts(text), { passed: 1, failed: 2 });
});
