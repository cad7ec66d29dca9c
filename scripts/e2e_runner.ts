/**
 * Runs the `Deno.test` definitions of one end-to-end file of `tests/` in this process,
 * reporting as `deno test` does, for `npm test` (scripts/step_runner.ts, `e2eTest`):
 *
 *   deno run -A scripts/e2e_runner.ts tests/webhook_test.ts
 *
 * `deno test` boots a V8 isolate of its own for each test module, apart from the one
 * the process starts with: about 0.37 s of CPU a file on this machine (a trivial file
 * takes 0.38 s under `deno test`, 0.07 s under `deno run`; Deno's issue #20437), and
 * `npm test` runs some sixty such processes on two cores that are busy throughout. Here
 * the file is imported into the runner's own isolate, its definitions collected by a
 * `Deno.test` of the runner's, and run one after another in the order they were made.
 * A file still runs as it is under `deno test` (`deno test -A tests/x_test.ts`).
 *
 * What it supports is what the files use, and it refuses the rest by name: a name and a
 * function, or definitions with `name`, `fn`, `ignore` and `only`; a test's `t.step`
 * (nested, each reported, a failed step failing its test). `permissions` is refused.
 * The sanitizers are off, as `deno test` has them by default. An error no test handles
 * (an unhandled rejection, an uncaught exception) fails the test that is running and
 * stops the file, as `deno test` stops a module. A definition with `only` runs alone,
 * and the file fails for it, as under `deno test`. A `Deno.exit` while the tests run
 * throws instead of ending the process ("Test case attempted to exit", as under `deno
 * test`), so no test ends its file with a passing code; npm test also fails a file whose
 * summary line is missing (step_runner.ts, `e2eCounts`).
 *
 * @module
 */

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

/** One test as the file defined it. */
export interface TestDefinition {
  name: string;
  fn: (t: Deno.TestContext) => void | Promise<void>;
  ignore?: boolean;
  only?: boolean;
}

/**
 * The definition `Deno.test` was called with, in any of its forms (a name and a
 * function, a name with options and a function, options, a named function).
 */
export function definitionOf(...args: unknown[]): TestDefinition {
  const [first, second, third] = args;
  let definition: Record<string, unknown>;
  if (typeof first === "string") {
    definition = typeof second === "function"
      ? { name: first, fn: second }
      : { ...(second as object), name: first, fn: third };
  } else if (typeof first === "function") {
    definition = { name: first.name, fn: first };
  } else {
    definition = typeof second === "function"
      ? { ...(first as object), fn: second }
      : { ...(first as object) };
    if (definition.name === undefined && typeof definition.fn === "function") {
      definition.name = definition.fn.name;
    }
  }
  if (typeof definition.fn !== "function" || !definition.name) {
    throw new TypeError("Deno.test needs a name and a function");
  }
  if (definition.permissions !== undefined) {
    throw new TypeError(
      `${definition.name}: "permissions" is not supported by scripts/e2e_runner.ts`,
    );
  }
  return definition as unknown as TestDefinition;
}

/** What a run of a file's tests came to. */
export interface RunSummary {
  passed: number;
  failed: number;
  ignored: number;
  steps: number;
  /** The text of the summary line, as `deno test` prints it. */
  line: string;
}

/** Where the runner writes its lines and learns of errors no test handled. */
export interface RunDeps {
  print(line: string): void;
  now(): number;
  /** The error no test handled since the last call (taken: it is not answered twice). */
  takeUncaught(): unknown;
  /** Resolves after a turn of the event loop (a timer of 0 ms). */
  turn(): Promise<void>;
}

const took = (ms: number) => ms < 1000 ? `${Math.round(ms)}ms` : `${Math.round(ms / 1000)}s`;

/** Runs `tests` one after another; prints each result, the failures, and the summary. */
export async function runTests(tests: TestDefinition[], deps: RunDeps): Promise<RunSummary> {
  const only = tests.filter((t) => t.only);
  const chosen = only.length > 0 ? only : tests;
  const started = deps.now();
  const failures: string[] = [];
  let passed = 0, failed = 0, ignored = 0, steps = 0;
  let stopped = false;

  /** Runs one function as a test or a step at `depth`; answers whether it passed. */
  const run = async (name: string, fn: TestDefinition["fn"], depth: number) => {
    const indent = "  ".repeat(depth);
    const at = deps.now();
    let failedSteps = 0;
    let error: unknown;
    const context = {
      name,
      origin: "",
      step: async (...args: unknown[]) => {
        const step = definitionOf(...args);
        steps++;
        if (step.ignore) {
          deps.print(`${indent}  ${step.name} ... ignored (0ms)`);
          return false;
        }
        const ok = await run(step.name, step.fn, depth + 1);
        if (!ok) failedSteps++;
        return ok;
      },
    } as unknown as Deno.TestContext;
    if (depth === 0) deps.print(`${name} ...`);
    try {
      await fn(context);
    } catch (thrown) {
      error = thrown;
    }
    // Deno tells of an unhandled rejection only once the event loop has turned.
    await deps.turn();
    const uncaught = deps.takeUncaught();
    if (uncaught !== undefined) {
      error ??= uncaught;
      stopped = true;
    }
    if (error === undefined && failedSteps > 0) {
      error = new Error(`${failedSteps} of its steps failed`);
    }
    const result = error === undefined ? "ok" : "FAILED";
    deps.print(`${indent}${depth > 0 ? `${name} ... ` : ""}${result} (${took(deps.now() - at)})`);
    if (error !== undefined) {
      failures.push(`${name}\n${error instanceof Error ? error.stack : String(error)}`);
    }
    return error === undefined;
  };

  for (const test of chosen) {
    if (stopped) break;
    if (test.ignore) {
      deps.print(`${test.name} ... ignored (0ms)`);
      ignored++;
      continue;
    }
    if (await run(test.name, test.fn, 0)) passed++;
    else failed++;
  }
  await deps.turn();
  const late = deps.takeUncaught();
  if (late !== undefined) {
    stopped = true;
    failures.push(`after the last test\n${late instanceof Error ? late.stack : String(late)}`);
  }
  if (stopped) failures.push("the file was stopped by an error no test handled");
  if (only.length > 0) failures.push('the "only" option was used');
  if (failures.length > 0) deps.print(`\nERRORS\n\n${failures.join("\n\n")}\n`);
  const ok = failures.length === 0;
  const line = `${ok ? "ok" : "FAILED"} | ${passed} passed${steps ? ` (${steps} steps)` : ""} | ` +
    `${failed} failed${ignored ? ` | ${ignored} ignored` : ""} (${took(deps.now() - started)})`;
  deps.print(line);
  return { passed, failed: ok ? failed : Math.max(failed, 1), ignored, steps, line };
}

if (import.meta.main) {
  const file = Deno.args[0];
  if (!file) {
    console.error("usage: deno run -A scripts/e2e_runner.ts tests/<file>_test.ts");
    Deno.exit(2);
  }
  const tests: TestDefinition[] = [];
  (Deno as unknown as { test: (...args: unknown[]) => void }).test = (...args) => {
    tests.push(definitionOf(...args));
  };
  let uncaught: unknown;
  addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    uncaught ??= event.reason;
  });
  addEventListener("error", (event) => {
    event.preventDefault();
    uncaught ??= event.error;
  });
  await import(pathToFileURL(resolve(file)).href);
  console.log(`running ${tests.length} tests from ${file}`);
  const exit = Deno.exit;
  Deno.exit = (code?: number) => {
    throw new Error(`Test case attempted to exit with exit code: ${code ?? 0}`);
  };
  const summary = await runTests(tests, {
    print: (line) => console.log(line),
    now: () => performance.now(),
    turn: () => new Promise((resolve) => setTimeout(resolve, 0)),
    takeUncaught: () => {
      const error = uncaught;
      uncaught = undefined;
      return error;
    },
  });
  exit(summary.failed > 0 ? 1 : 0);
}
