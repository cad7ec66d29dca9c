/**
 * The step runner of `npm test` (scripts/run_tests.ts): runs a command with its output
 * captured (scripts/captured_runs.ts), counts the passed and failed tests it reports
 * (deno test, pg_prove, terraform test), records skipped steps, and prints the closing
 * summary.
 *
 * Steps may run at the same time (run_tests.ts runs independent lanes concurrently), so
 * a step never streams its output: it prints one line when it starts and one when it
 * ends, its whole output only when it fails, and keeps the output of every step in
 * `.local/test-logs/<step>.log` for a look afterwards.
 *
 * @module
 */

import { denoTestCounts, e2eCounts } from "./test_counts.ts";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DENO_BIN, LOCAL_DIR, ROOT } from "../local-stack/config.ts";
import { withoutPasswords } from "../local-stack/processes.ts";
import { runRetrying, type StepOptions } from "./captured_runs.ts";

/** What a step did. */
export interface StepResult {
  name: string;
  ok: boolean;
  passed: number;
  failed: number;
  seconds: number;
  /** CPU seconds (user + system) of the step's command and every process it waited for. */
  cpu: number;
  /** Seconds from the start of `npm test` to the step's start: the summary's timeline. */
  at: number;
}

/** When this run began (this module is loaded first thing): the steps' offsets count from it. */
const runStarted = performance.now();

/** Seconds since the run began. */
const sinceStart = () => (performance.now() - runStarted) / 1000;

/** Adds a step's result to {@link results}, started now, and returns it. */
function record(name: string, ok: boolean, passed: number, failed: number): StepResult {
  const result = { name, ok, passed, failed, seconds: 0, cpu: 0, at: sinceStart() };
  results.push(result);
  return result;
}

/** Where each step's whole output is kept. */
export const TEST_LOG_DIR: string = join(LOCAL_DIR, "test-logs");

/** Every step run so far, in the order they started (the summary lists them). */
export const results: StepResult[] = [];

/** The file name a step's output is kept under. */
function logFile(name: string): string {
  return join(TEST_LOG_DIR, `${name.replace(/[^A-Za-z0-9._-]+/g, "_")}.log`);
}

/** Keeps a step's output in `.local/test-logs/`. */
function keepLog(name: string, commandLine: string, output: string): string {
  mkdirSync(TEST_LOG_DIR, { recursive: true });
  const file = logFile(name);
  writeFileSync(file, `$ ${commandLine}\n${output}`);
  return file;
}

/**
 * Runs one step. `count` reads the numbers of passed and failed tests from the output;
 * without it a step counts as one test. Prints a line at the start and one at the end
 * (with the counts and seconds); a failed step's whole output is printed before its end
 * line.
 */
export async function step(
  name: string,
  command: string,
  args: string[],
  count?: (output: string) => { passed: number; failed: number } | undefined,
  options: StepOptions = {},
): Promise<boolean> {
  // A database URL is on pg_prove's and the CLI's command lines, and in what they echo.
  const commandLine = withoutPasswords(
    [command.replace(ROOT + "/", ""), ...args].join(" ").replaceAll(ROOT + "/", ""),
  );
  const result = record(name, false, 0, 0);
  console.log(`--- ${name}: started at ${result.at.toFixed(1)}s`);
  const started = performance.now();
  const ran = await runRetrying(command, args, options);
  const { code, cpu, last } = ran;
  const output = withoutPasswords(ran.output);
  const counted = count?.(last);
  const ok = code === 0 && (counted?.failed ?? 0) === 0;
  result.ok = ok;
  result.passed = counted?.passed ?? (ok ? 1 : 0);
  result.failed = counted ? Math.max(counted.failed, ok ? 0 : 1) : (ok ? 0 : 1);
  result.seconds = (performance.now() - started) / 1000;
  result.cpu = cpu;
  const file = keepLog(name, commandLine, output);
  const tally = counted ? `, ${result.passed} passed, ${result.failed} failed` : "";
  if (!ok) {
    console.log(`\n=== ${name} FAILED: ${commandLine}\n${output.trimEnd()}\n`);
  }
  console.log(
    `${ok ? "ok " : "FAILED"} ${name} (${result.seconds.toFixed(1)}s, ` +
      `${result.cpu.toFixed(1)}s CPU${tally}; ` +
      `output in ${file.replace(ROOT + "/", "")})`,
  );
  return ok;
}

/**
 * A check made by this script rather than by a command: ok when `problems` is empty;
 * each problem is printed on its own line.
 */
export function check(name: string, problems: string[]): boolean {
  const ok = problems.length === 0;
  record(name, ok, ok ? 1 : 0, ok ? 0 : 1);
  console.log(`${ok ? "ok " : "FAILED"} ${name}`);
  for (const problem of problems) console.log(`  ${problem}`);
  return ok;
}

/** Records a step that failed before it could run a command, with the reason shown. */
export function fail(name: string, reason: string) {
  record(name, false, 0, 1);
  console.log(`FAILED ${name}: ${reason}`);
}

/** The files under `dir` (recursively) whose names end with `suffix`, sorted. */
export function testFiles(dir: string, suffix: string): string[] {
  const found: string[] = [];
  const visit = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith(suffix)) found.push(full);
    }
  };
  if (existsSync(dir)) visit(dir);
  return found.sort();
}

/** Records a step that could not run here, and why (shown in the summary, counted as neither). */
export function skip(name: string, reason: string) {
  console.log(`skipped ${name}: ${reason}`);
  record(`${name} (skipped)`, true, 0, 0);
}

/** `deno test` of `files`, unchecked (the types step checked them), as one step. */
export function denoTest(
  name: string,
  files: string[],
  options?: StepOptions,
): Promise<boolean> {
  const args = ["test", "-A", "--no-check", ...files];
  return step(name, DENO_BIN, args, denoTestCounts, options);
}

/**
 * One end-to-end file of `tests/` (a path relative to the step's folder), its tests run
 * by scripts/e2e_runner.ts in one process, unchecked, as one step: as `deno test` would,
 * without the isolate of its own that `deno test` boots for each file.
 */
export function e2eTest(name: string, file: string, options?: StepOptions): Promise<boolean> {
  return step(
    name,
    DENO_BIN,
    ["run", "-A", "scripts/e2e_runner.ts", file],
    e2eCounts,
    options,
  );
}

/**
 * Prints the summary (one line per step: its counts, when it started after the run
 * began, its seconds and CPU seconds; then the totals) and exits: 0 only when every step
 * is ok and no test failed.
 */
export function exitWithSummary(): never {
  const passed = results.reduce((sum, r) => sum + r.passed, 0);
  const failed = results.reduce((sum, r) => sum + r.failed, 0);
  console.log("\n=== summary");
  for (const r of results) {
    console.log(
      `${r.ok ? "ok    " : "FAILED"} ${r.name.padEnd(48)} ${String(r.passed).padStart(4)} passed ` +
        `${String(r.failed).padStart(3)} failed  at ${r.at.toFixed(1).padStart(5)}s ` +
        `${r.seconds.toFixed(1).padStart(6)}s ` +
        `${r.cpu.toFixed(1).padStart(6)}s CPU`,
    );
  }
  const cpu = results.reduce((sum, r) => sum + r.cpu, 0);
  console.log(
    `npm test took ${sinceStart().toFixed(0)}s; its steps' own ` +
      `processes used ${cpu.toFixed(0)} CPU seconds (the stack's servers not counted)`,
  );
  console.log(`${passed} passed, ${failed} failed`);
  Deno.exit(failed === 0 && results.every((r) => r.ok) ? 0 : 1);
}
