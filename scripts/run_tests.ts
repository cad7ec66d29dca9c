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
  HANDS_ON_FUNCTIONS,
  isolateLogOffset,
  killsSince,
} from "../local-stack/supabase/isolate_log.ts";
import {
  initArgs,
  providerUnreachable,
  TERRAFORM_DIR,
  terraformInstalled,
} from "../infrastructure/terraform/terraform_cli.ts";
import {
  check,
  denoTestCounts,
  exitWithSummary,
  pgProveCounts,
  results,
  runShown,
  skip,
  step,
  terraformTestCounts,
  testFiles,
} from "./step_runner.ts";

const SUPABASE = join(ROOT, "node_modules", ".bin", "supabase");

async function stackRunning(): Promise<boolean> {
  return await portOpen(HOST, POSTGRES_PORT) && await portOpen(HOST, FUNCTIONS_PORT) &&
    await portOpen(HOST, DYNAMODB_PORT);
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
// The backfill and the validator hand on before their isolate's CPU reaches the hosted
// hard limit (docs/interfaces.md, "Edge Function limits"): none of their isolates may be
// killed while the tests run (the gateway logs every isolate that ends).
const isolateLog = isolateLogOffset();
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
  check(
    "no import-worker or validator isolate was killed at a hard limit",
    killsSince(isolateLog, HANDS_ON_FUNCTIONS),
  );
  if (!wasRunning && !keepStack) {
    await step("stack:down leaves nothing running", DENO_BIN, [
      "run",
      "-A",
      "scripts/check_stack_down.ts",
    ]);
  }
}

exitWithSummary(started);
