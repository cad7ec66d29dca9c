/**
 * `npm test`: every check and test of the project, in order, against the local stack,
 * with a closing summary line. Starts the stack when it is not running, and stops it
 * again at the end (checking that nothing is left behind) when it started it.
 *
 *   deno run -A scripts/run_tests.ts [--keep-stack]
 *
 * @module
 */

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  DENO_BIN,
  DYNAMODB_PORT,
  FUNCTIONS_PORT,
  HOST,
  POSTGRES_PORT,
  ROOT,
} from "../local-stack/config.ts";
import { portOpen } from "../local-stack/processes.ts";
import { readStackEnv } from "../local-stack/stack_env.ts";
import {
  initArgs,
  providerUnreachable,
  TERRAFORM_DIR,
  terraformInstalled,
} from "../infrastructure/terraform/terraform_cli.ts";

interface StepResult {
  name: string;
  ok: boolean;
  passed: number;
  failed: number;
  seconds: number;
}

const results: StepResult[] = [];
const SUPABASE = join(ROOT, "node_modules", ".bin", "supabase");

/** Runs a command, showing its output as it comes, and returns its exit code and output. */
async function runShown(command: string, args: string[], env?: Record<string, string>) {
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
async function step(
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

/** `ok | 12 passed (3 steps) | 0 failed` from `deno test`. */
function denoTestCounts(output: string) {
  const line = output.match(/(?:ok|FAILED) \| (\d+) passed[^|]*\| (\d+) failed/);
  return line ? { passed: Number(line[1]), failed: Number(line[2]) } : undefined;
}

/** `Files=3, Tests=57, ...` and the failed-test lines from pg_prove. */
function pgProveCounts(output: string) {
  const total = output.match(/Files=\d+, Tests=(\d+)/);
  if (!total) return undefined;
  const failed = [...output.matchAll(/Failed (\d+)\/\d+ subtests/g)]
    .reduce((sum, m) => sum + Number(m[1]), 0);
  const badFiles = output.includes("Result: FAIL") && failed === 0 ? 1 : 0;
  return { passed: Number(total[1]) - failed, failed: failed + badFiles };
}

function testFiles(dir: string, suffix: string): string[] {
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

async function stackRunning(): Promise<boolean> {
  return await portOpen(HOST, POSTGRES_PORT) && await portOpen(HOST, FUNCTIONS_PORT) &&
    await portOpen(HOST, DYNAMODB_PORT);
}

/** Records a step that could not run here, and why (shown in the summary, counted as neither). */
function skip(name: string, reason: string) {
  console.log(`\n=== ${name}: skipped: ${reason}`);
  results.push({ name: `${name} (skipped)`, ok: true, passed: 0, failed: 0, seconds: 0 });
}

/** `Success! 5 passed, 0 failed.` / `Failure! 3 passed, 1 failed, 1 skipped.` from terraform test. */
function terraformTestCounts(output: string) {
  const line = output.match(/(\d+) passed, (\d+) failed/);
  return line ? { passed: Number(line[1]), failed: Number(line[2]) } : undefined;
}

/**
 * The Terraform checks that need terraform itself (the HCL is also checked without it, by
 * infrastructure/terraform/terraform_test.ts): fmt, then for the root configuration and
 * the module, init (from a local provider mirror when there is one), validate, and
 * `terraform test` with mocked providers. Nothing touches AWS.
 */
async function terraformSteps() {
  const terraform = "terraform";
  if (!(await terraformInstalled())) {
    skip("terraform", "terraform is not installed (the parsed-HCL checks ran in the unit tests)");
    return;
  }
  await step("terraform fmt", terraform, ["fmt", "-check", "-recursive", "-diff", TERRAFORM_DIR]);
  // terraform test deploys nothing, but the configuration hashes the zip it would deploy.
  await step("build:lambda", DENO_BIN, ["run", "-A", "lambda/build.ts"]);
  for (const config of ["mmp-toledo-sync", "modules/stream-sync"]) {
    const chdir = `-chdir=${join(TERRAFORM_DIR, config)}`;
    const env = { TF_DATA_DIR: join(ROOT, ".local", "terraform", config), TF_IN_AUTOMATION: "1" };
    const { code, output } = await runShown(terraform, [chdir, ...initArgs()], env);
    if (code !== 0) {
      if (providerUnreachable(output)) {
        skip(
          `terraform ${config}`,
          "the AWS provider cannot be installed (no registry, no TF_PLUGIN_DIR mirror)",
        );
        continue;
      }
      results.push({
        name: `terraform init ${config}`,
        ok: false,
        passed: 0,
        failed: 1,
        seconds: 0,
      });
      continue;
    }
    await step(
      `terraform validate ${config}`,
      terraform,
      [chdir, "validate", "-no-color"],
      undefined,
      env,
    );
    await step(
      `terraform test ${config}`,
      terraform,
      [chdir, "test", "-no-color"],
      terraformTestCounts,
      env,
    );
  }
}

const keepStack = Deno.args.includes("--keep-stack");
const started = performance.now();
const denoCode = [
  "local-stack",
  "functions-shared",
  "lambda",
  "demo",
  "scripts",
  "tests",
  "supabase/functions",
  "infrastructure",
];

await step("format", DENO_BIN, ["fmt", "--check"]);
await step("lint", DENO_BIN, ["lint"]);
await step("types", DENO_BIN, [
  "check",
  "local-stack",
  "functions-shared",
  "lambda",
  "demo",
  "scripts",
  "tests",
  "infrastructure",
]);
for (const fn of readdirSync(join(ROOT, "supabase", "functions")).sort()) {
  const dir = join(ROOT, "supabase", "functions", fn);
  if (!existsSync(join(dir, "index.ts"))) continue;
  await step(`types ${fn}`, DENO_BIN, [
    "check",
    "--config",
    join(dir, "deno.json"),
    join(dir, "index.ts"),
  ]);
}
const unitTests = denoCode.flatMap((d) => testFiles(join(ROOT, d), "_test.ts"))
  .filter((f) => !f.startsWith(join(ROOT, "tests")));
await step("unit tests", DENO_BIN, ["test", "-A", ...unitTests], denoTestCounts);
await terraformSteps();

const wasRunning = await stackRunning();
if (await step("stack:up", DENO_BIN, ["run", "-A", "local-stack/stack.ts", "up"])) {
  const env = readStackEnv();
  await step(
    "pgTAP",
    "pg_prove",
    ["--failures", "-d", env.DATABASE_URL, ...testFiles(join(ROOT, "supabase", "tests"), ".sql")],
    pgProveCounts,
  );
  await step("advisors (security)", SUPABASE, [
    "db",
    "advisors",
    `--remote=${env.DATABASE_URL}`,
    "--type",
    "security",
    "--level",
    "info",
    "--fail-on",
    "info",
  ]);
  await step("advisors (performance, warnings)", SUPABASE, [
    "db",
    "advisors",
    `--remote=${env.DATABASE_URL}`,
    "--type",
    "performance",
    "--level",
    "info",
    "--fail-on",
    "warn",
  ]);
  await step("db lint (plpgsql_check)", SUPABASE, [
    "db",
    "lint",
    `--remote=${env.DATABASE_URL}`,
    "--schema",
    "public,sync,analytics",
    "--level",
    "warning",
    "--fail-on",
    "warning",
  ]);
  await step("generated types match the migrations", DENO_BIN, [
    "run",
    "-A",
    "scripts/gen_types.ts",
    "--check",
  ]);
  await step(
    "end-to-end tests",
    DENO_BIN,
    ["test", "-A", ...testFiles(join(ROOT, "tests"), "_test.ts")],
    denoTestCounts,
  );
  if (!wasRunning && !keepStack) {
    await step("stack:down leaves nothing running", DENO_BIN, [
      "run",
      "-A",
      "scripts/check_stack_down.ts",
    ]);
  }
}

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
