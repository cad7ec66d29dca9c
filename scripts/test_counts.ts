/**
 * How many tests passed and failed, as each tool's output says it (a step of `npm test`,
 * step_runner.ts, counts its tests with one of these): `deno test`, an end-to-end file run
 * by scripts/e2e_runner.ts, `pg_prove` and `terraform test`. Undefined when the output
 * has no summary to read.
 *
 * @module
 */

/** `ok | 12 passed (3 steps) | 0 failed` from `deno test`. */
export function denoTestCounts(output: string) {
  const line = output.match(/(?:ok|FAILED) \| (\d+) passed[^|]*\| (\d+) failed/);
  return line ? { passed: Number(line[1]), failed: Number(line[2]) } : undefined;
}

/**
 * {@link denoTestCounts}, and one failure when the summary line is missing: a file that
 * ended its process early (a `Deno.exit`, a crash) did not run all of its tests, whatever
 * its exit code says.
 */
export function e2eCounts(output: string) {
  return denoTestCounts(output) ?? { passed: 0, failed: 1 };
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

/** `Success! 5 passed, 0 failed.` / `Failure! 3 passed, 1 failed, 1 skipped.` from terraform test. */
export function terraformTestCounts(output: string) {
  const line = output.match(/(\d+) passed, (\d+) failed/);
  return line ? { passed: Number(line[1]), failed: Number(line[2]) } : undefined;
}
