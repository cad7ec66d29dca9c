import assert from "node:assert/strict";
import {
  BACKGROUND,
  BACKGROUND_NICENESS,
  e2eCounts,
  pool,
  runCaptured,
  runRetrying,
} from "./step_runner.ts";

Deno.test("runCaptured returns a step's exit code and its output, both streams", async () => {
  const result = await runCaptured("sh", ["-c", "echo out; echo err >&2; exit 3"]);
  assert.equal(result.code, 3);
  assert.match(result.output, /out/);
  assert.match(result.output, /err/);
});

Deno.test("pool runs at most its limit at once, and a joining place takes the tasks left without being waited for", async () => {
  const started: string[] = [];
  let running = 0;
  let most = 0;
  const gates = new Map<string, PromiseWithResolvers<void>>();
  const task = (name: string) => async () => {
    started.push(name);
    most = Math.max(most, ++running);
    const gate = Promise.withResolvers<void>();
    gates.set(name, gate);
    await gate.promise;
    running--;
  };
  const waiting = Promise.withResolvers<void>();
  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
  let done = false;
  const all = pool(1, ["a", "b", "c"].map(task), [waiting.promise]).then(() => (done = true));
  await tick();
  assert.deepEqual(started, ["a"]);
  waiting.resolve(); // the place it held comes back: b starts beside a
  await tick();
  assert.deepEqual(started, ["a", "b"]);
  gates.get("a")!.resolve();
  await tick();
  assert.deepEqual(started, ["a", "b", "c"]);
  gates.get("b")!.resolve();
  gates.get("c")!.resolve();
  await all;
  assert.ok(done);
  assert.equal(most, 2);
});

Deno.test("pool resolves once its tasks are done, while a joining place still waits", async () => {
  const never = new Promise<void>(() => {});
  let ran = 0;
  const task = () => Promise.resolve(ran++);
  await pool(2, [task, task, task], [never]);
  assert.equal(ran, 3);
  await pool(2, [], [never]);
});

Deno.test("pool rejects with the first task's failure once the tasks started are done, and starts none after it", async () => {
  const ran: string[] = [];
  const failing = new Error("the first failure");
  await assert.rejects(
    pool(2, [
      () => Promise.resolve(ran.push("a")),
      () => Promise.reject(failing),
      () => new Promise((resolve) => setTimeout(() => resolve(ran.push("c")), 10)),
      () => Promise.resolve(ran.push("d")),
    ]),
    (error) => error === failing,
  );
  assert.ok(ran.includes("a") && ran.includes("c"), "the task started beside it ran to its end");
  assert.ok(!ran.includes("d"), "no task starts after a failure");
  await assert.rejects(pool(1, [() => Promise.reject(failing)]), (error) => error === failing);
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

Deno.test("an end-to-end file without its summary line counts as a failure, whatever its exit code", () => {
  assert.deepEqual(e2eCounts("running 3 tests from tests/x_test.ts\nfirst ... ok (2ms)\n"), {
    passed: 0,
    failed: 1,
  });
  assert.deepEqual(e2eCounts("ok | 3 passed (2 steps) | 0 failed (1s)\n"), {
    passed: 3,
    failed: 0,
  });
});
