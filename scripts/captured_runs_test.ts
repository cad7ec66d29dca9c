import assert from "node:assert/strict";
import { BACKGROUND, BACKGROUND_NICENESS, runCaptured, runRetrying } from "./captured_runs.ts";

Deno.test("runCaptured returns a step's exit code and its output, both streams", async () => {
  const result = await runCaptured("sh", ["-c", "echo out; echo err >&2; exit 3"]);
  assert.equal(result.code, 3);
  assert.match(result.output, /out/);
  assert.match(result.output, /err/);
});

Deno.test("a background step runs its command, and what it starts, under nice", async () => {
  const own = Number((await runCaptured("nice", [])).output.trim());
  const background = await runCaptured("sh", ["-c", "nice"], BACKGROUND);
  assert.equal(background.code, 0, background.output);
  assert.equal(Number(background.output.trim()), Math.min(19, own + BACKGROUND_NICENESS));
});

Deno.test("runRetrying runs a failure once more only when its output matches retryOn", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Fails with a connection timeout the first time, then passes.
    const flaky = `if [ -e ${dir}/ran ]; then echo fine; else touch ${dir}/ran; ` +
      "echo 'failed to connect to postgres: Connection timed out'; exit 1; fi";
    const retried = await runRetrying("sh", ["-c", flaky], { retryOn: /failed to connect to/ }, 0);
    assert.equal(retried.code, 0);
    assert.equal(retried.last.trim(), "fine");
    assert.match(retried.output, /Connection timed out[\s\S]*run once more[\s\S]*fine/);
    // Any other failure is the answer as it is.
    await Deno.remove(`${dir}/ran`);
    const lint = await runRetrying("sh", ["-c", `touch ${dir}/ran; echo 'warning: x'; exit 1`], {
      retryOn: /failed to connect to/,
    }, 0);
    assert.equal(lint.code, 1);
    assert.doesNotMatch(lint.output, /run once more/);
    // Up to `attempts` runs in all, while each fails to connect.
    const counter = `${dir}/runs`;
    const never = `echo x >> ${counter}; echo 'failed to connect to postgres'; exit 1`;
    const spent = await runRetrying("sh", ["-c", never], {
      retryOn: /failed to connect to/,
      attempts: 4,
    }, 0);
    assert.equal(spent.code, 1);
    assert.equal((await Deno.readTextFile(counter)).trim().split("\n").length, 4);
    assert.equal(spent.output.match(/run once more/g)?.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an interrupted run stops its running steps and starts no more", async () => {
  // In a process of its own: the interruption is the whole module's, for good.
  const script = `
    import { runCaptured } from "${new URL("./captured_runs.ts", import.meta.url)}";
    import { interruptSteps } from "${new URL("./on_interrupt.ts", import.meta.url)}";
    const started = Date.now();
    const long = runCaptured("sh", ["-c", "sleep 30"]);
    setTimeout(() => interruptSteps(), 300);
    const stopped = await long;
    const next = await runCaptured("sh", ["-c", "echo ran"]);
    console.log(JSON.stringify({
      stoppedSoon: Date.now() - started < 10_000,
      stoppedCode: stopped.code,
      nextCode: next.code,
      nextOutput: next.output,
    }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    stderr: "inherit",
  }).output();
  const answer = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(answer.stoppedSoon, true, "the running step stopped at once");
  assert.notEqual(answer.stoppedCode, 0);
  assert.deepEqual([answer.nextCode, answer.nextOutput], [
    130,
    "not run: npm test was interrupted\n",
  ]);
});
