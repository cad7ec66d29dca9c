/**
 * The step runner of `npm test` (scripts/run_tests.ts): runs a command with its output
 * shown as it comes, counts the passed and failed tests it reports (deno test, pg_prove,
 * terraform test), records skipped steps, and prints the closing summary.
 *
 * @module
 */

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../local-stack/config.ts";

/** What a step did. */
export interface StepResult {
  name: string;
  ok: boolean;
  passed: number;
  failed: number;
  seconds: number;
}

/** Every step run so far, in order (the summary lists them). */
export const results: StepResult[] = [];
/** Runs a command, showing its output as it comes, and returns its exit code and output. */
export async function runShown(command: string, args: string[], env?: Record<string, string>) {
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const pump = async (stream: ReadableStream<Uint8Array>, sink: typeof Deno.stdout) => {
    for await (const chunk of stream) {
      output += new TextDecoder().decode(chunk);
      await sink.write(chunk);
    }
  };
  const [status] = await Promise.all([
    child.status,
    pump(child.stdout, Deno.stdout),
    pump(child.stderr, Deno.stderr),
  ]);
  return { code: status.code, output };
}

/**
 * Runs one step. `count` reads the numbers of passed and failed tests from the output;
 * without it a step counts as one test.
 */
export async function step(
  name: string,
  command: string,
  args: string[],
  count?: (output: string) => { passed: number; failed: number } | undefined,
  env?: Record<string, string>,
): Promise<boolean> {
  console.log(`\n=== ${name}: ${[command.replace(ROOT + "/", ""), ...args].join(" ")}`);
  const started = performance.now();
  const { code, output } = await runShown(command, args, env);
  const counted = count?.(output);
  const ok = code === 0 && (counted?.failed ?? 0) === 0;
  const result = {
    name,
    ok,
    passed: counted?.passed ?? (ok ? 1 : 0),
    failed: counted ? Math.max(counted.failed, ok ? 0 : 1) : (ok ? 0 : 1),
    seconds: (performance.now() - started) / 1000,
  };
  results.push(result);
  console.log(`=== ${name}: ${ok ? "ok" : "FAILED"} (${result.seconds.toFixed(1)}s)`);
  return ok;
}

/**
 * A check made by this script rather than by a command: ok when `problems` is empty;
 * each problem is printed on its own line.
 */
export function check(name: string, problems: string[]): boolean {
  console.log(`\n=== ${name}`);
  for (const problem of problems) console.log(`  ${problem}`);
  const ok = problems.length === 0;
  results.push({ name, ok, passed: ok ? 1 : 0, failed: ok ? 0 : 1, seconds: 0 });
  console.log(`=== ${name}: ${ok ? "ok" : "FAILED"}`);
  return ok;
}

/** `ok | 12 passed (3 steps) | 0 failed` from `deno test`. */
export function denoTestCounts(output: string) {
  const line = output.match(/(?:ok|FAILED) \| (\d+) passed[^|]*\| (\d+) failed/);
  return line ? { passed: Number(line[1]), failed: Number(line[2]) } : undefined;
}

/** `Files=3, Tests=57, ...` and the failed-test lines from pg_prove. */
export function pgProveCounts(output: string) {
  const total = output.match(/Files=\d+, Tests=(\d+)/);
  if (!total) return undefined;
  const failed = [...output.matchAll(/Failed (\d+)\/\d+ subtests/g)]
    .reduce((sum, m) => sum + Number(m[1]), 0);
  const badFiles = output.includes("Result: FAIL") && failed === 0 ? 1 : 0;
  return { passed: Number(total[1]) - failed, failed: failed + badFiles };
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
  console.log(`\n=== ${name}: skipped: ${reason}`);
  results.push({ name: `${name} (skipped)`, ok: true, passed: 0, failed: 0, seconds: 0 });
}

/** `Success! 5 passed, 0 failed.` / `Failure! 3 passed, 1 failed, 1 skipped.` from terraform test. */
export function terraformTestCounts(output: string) {
  const line = output.match(/(\d+) passed, (\d+) failed/);
  return line ? { passed: Number(line[1]), failed: Number(line[2]) } : undefined;
}

/**
 * Prints the summary (one line per step, then the totals) and exits: 0 only when every
 * step is ok and no test failed.
 */
export function exitWithSummary(started: number): never {
  const passed = results.reduce((sum, r) => sum + r.passed, 0);
  const failed = results.reduce((sum, r) => sum + r.failed, 0);
  console.log("\n=== summary");
  for (const r of results) {
    console.log(
      `${r.ok ? "ok    " : "FAILED"} ${r.name.padEnd(40)} ${String(r.passed).padStart(4)} passed ` +
        `${String(r.failed).padStart(3)} failed  ${r.seconds.toFixed(1).padStart(6)}s`,
    );
  }
  console.log(`npm test took ${((performance.now() - started) / 1000).toFixed(0)}s`);
  console.log(`${passed} passed, ${failed} failed`);
  Deno.exit(failed === 0 && results.every((r) => r.ok) ? 0 : 1);
}
