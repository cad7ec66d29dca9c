import assert from "node:assert/strict";
import type { BatchResponse, StreamRecord } from "../../lambda/stream_records.ts";
import { inProcess, LambdaEnvironments, timedOut } from "./lambda_environments.ts";

const FIXTURE = new URL("./testdata/fixture_lambda.ts", import.meta.url);
const event = (eventID: string) => ({ Records: [{ eventID } as StreamRecord] });
/** The fixture's answer: its environment's id and that environment's invocation count. */
const who = (answer: BatchResponse | void) => {
  const [environment, count] = answer!.batchItemFailures[0].itemIdentifier.split(" ");
  return { environment, count: Number(count) };
};

Deno.test("an idle environment is used again, its module state kept", async () => {
  const lambda = new LambdaEnvironments(FIXTURE);
  try {
    const first = who(await lambda.invoke(event("a"), 10_000));
    const second = who(await lambda.invoke(event("b"), 10_000));
    assert.equal(second.environment, first.environment);
    assert.deepEqual([first.count, second.count], [1, 2]);
  } finally {
    lambda.close();
  }
});

Deno.test("a timed-out invocation is stopped, and the next one starts a new environment", async () => {
  const lambda = new LambdaEnvironments(FIXTURE);
  const trace = await Deno.makeTempFile();
  try {
    const before = who(await lambda.invoke(event("a"), 10_000));
    // A timeout long enough for the handler to start on a loaded machine (at 300 ms, its
    // first line was not written yet in one CI run).
    await assert.rejects(lambda.invoke(event(`hang:${trace}`), 2_000), {
      message: timedOut(2_000),
    });
    assert.equal(timedOut(300), "Task timed out after 0.30 seconds");
    // Nothing of the timed-out invocation runs on: its trace stops growing.
    const atTimeout = (await Deno.readTextFile(trace)).length;
    assert.ok(atTimeout > 0, "the invocation ran until its timeout");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await Deno.readTextFile(trace)).length, atTimeout, "a timed-out handler ran on");
    const after = who(await lambda.invoke(event("b"), 10_000));
    assert.notEqual(after.environment, before.environment, "init ran again");
    assert.equal(after.count, 1);
  } finally {
    lambda.close();
    await Deno.remove(trace);
  }
});

Deno.test("a handler's error is the invocation's; a crash ends its environment", async () => {
  const lambda = new LambdaEnvironments(FIXTURE);
  try {
    const before = who(await lambda.invoke(event("a"), 10_000));
    await assert.rejects(lambda.invoke(event("throw"), 10_000), { message: "the handler failed" });
    assert.equal(who(await lambda.invoke(event("b"), 10_000)).environment, before.environment);
    await assert.rejects(
      lambda.invoke(event("crash"), 10_000),
      /the execution environment crashed/,
    );
    assert.notEqual(who(await lambda.invoke(event("c"), 10_000)).environment, before.environment);
  } finally {
    lambda.close();
  }
});

Deno.test("an idle environment that crashes is ended, and the next invocation starts a new one", async () => {
  const lambda = new LambdaEnvironments(FIXTURE);
  // Waits for the crash's line, not for a fixed time a starved worker thread could outlast.
  const error = console.error;
  let crashed = () => {};
  const crashSaid = new Promise<void>((resolve) => crashed = resolve);
  console.error = (...args: unknown[]) => {
    if (String(args[0]).startsWith("an idle Lambda execution environment crashed")) crashed();
    error(...args);
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const before = who(await lambda.invoke(event("crash-later"), 10_000));
    // Its timer throws once it is idle: unhandled, that would end this process.
    const late = new Promise<"late">((resolve) =>
      timer = setTimeout(() => resolve("late"), 10_000)
    );
    assert.notEqual(await Promise.race([crashSaid, late]), "late", "the idle environment crashed");
    const after = who(await lambda.invoke(event("b"), 10_000));
    assert.notEqual(after.environment, before.environment);
  } finally {
    clearTimeout(timer);
    console.error = error;
    lambda.close();
  }
});

Deno.test("an environment's init has a phase of its own, outside the invocation's timeout", async () => {
  const lambda = new LambdaEnvironments(new URL("./testdata/slow_init_lambda.ts", import.meta.url));
  try {
    // Init takes 2 s, the invocation's timeout is 1 s: the handler answers at once.
    assert.deepEqual(await lambda.invoke(event("a"), 1_000), { batchItemFailures: [] });
  } finally {
    lambda.close();
  }
});

Deno.test("after a timeout, the new environment's init is part of the next invocation, within its timeout", async () => {
  // Lambda "initializes the runtime and extensions as part of the next invocation", whose
  // timeout limits "the entire Invoke phase" (lambda_environments.ts).
  const lambda = new LambdaEnvironments(new URL("./testdata/slow_init_lambda.ts", import.meta.url));
  try {
    // The margins are wide: a loaded machine took an init of 300 ms and a worker's start
    // past a second.
    await assert.rejects(lambda.invoke(event("hang"), 1_000), { message: timedOut(1_000) });
    // Init takes 2 s: within a 1 s invocation, it times out.
    await assert.rejects(lambda.invoke(event("a"), 1_000), { message: timedOut(1_000) });
    // Still to be initialized within the next one: 2 s of init in 30 s leaves time.
    assert.deepEqual(await lambda.invoke(event("b"), 30_000), { batchItemFailures: [] });
    // Its environment kept: no init, answered within 1 s.
    assert.deepEqual(await lambda.invoke(event("c"), 1_000), { batchItemFailures: [] });
  } finally {
    lambda.close();
  }
});

Deno.test("a module with no handler fails every invocation, naming the module", async () => {
  const lambda = new LambdaEnvironments(new URL("./lambda_environments.ts", import.meta.url));
  try {
    await assert.rejects(
      lambda.invoke(event("a"), 10_000),
      /lambda_environments\.ts exports no handler/,
    );
  } finally {
    lambda.close();
  }
});

Deno.test("a fake run in this process is answered as Lambda answers a timeout", async () => {
  let release = () => {};
  const invoke = inProcess(() => new Promise((resolve) => (release = () => resolve(undefined))));
  await assert.rejects(invoke(event("a"), 50), { message: timedOut(50) });
  release();
});
