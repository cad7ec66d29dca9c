/**
 * The two lanes of `npm test` (scripts/run_tests.ts) that need no stack: the static
 * checks and the unit tests, and the Lambda's zip with Terraform's checks. Each is a
 * chain of steps (scripts/step_runner.ts) that prints its lines and records its counts.
 *
 * @module
 */

import { basename, join, relative } from "node:path";
import { pathToFileURL as toFileUrl } from "node:url";
import { DENO_BIN, ROOT } from "../local-stack/config.ts";
import {
  initArgs,
  providerUnreachable,
  TERRAFORM_DIR,
  terraformEnv,
  terraformInstalled,
} from "../infrastructure/terraform/terraform_cli.ts";
import { withProviderServer } from "../infrastructure/terraform/provider_server.ts";
import { functionDirs } from "./function_configs.ts";
import { BACKGROUND, BACKGROUND_NICENESS, runCaptured } from "./captured_runs.ts";
import { denoTest, fail, skip, step, testFiles } from "./step_runner.ts";
import { denoTestCounts, terraformTestCounts } from "./test_counts.ts";

/** The unit test that builds the Lambda's zip, which the terraform steps read. */
const LAMBDA_ZIP_UNIT_TEST = join(ROOT, "lambda", "lambda_node_test.ts");

/**
 * The static checks and the unit tests: format, lint, then at once the types of every
 * file (the Edge Functions' entry points among them) followed by whether each function's
 * own `deno.json` resolves its imports under its own lock unchanged, and every unit test
 * but the Lambda zip's (run by {@link terraformLane}). The unit tests run unchecked and
 * need nothing of the type check: run after it, they were the last step of a fresh
 * clone's run, the first stack idle for its last 23 s waiting for them (the type check
 * took 105 s of wall for 19 s of CPU on the busy machine, then the tests 80 s for 26 s).
 * `unitTestsEnded` is called once the unit tests are done (or will not run): two of them
 * start a process from `local-stack/` and write a pid file where the stack keeps its own,
 * which the first stack's checked stop would take for the stack's leftovers.
 */
export async function staticLane(unitTestsEnded: () => void): Promise<void> {
  try {
    await step("format", DENO_BIN, ["fmt", "--check"]);
    await step("lint", DENO_BIN, ["lint"]);
    await Promise.all([typesAndResolution(), unitTests().finally(unitTestsEnded)]);
  } finally {
    unitTestsEnded();
  }
}

/** The type check of every file, then each function's imports under its own lock. */
async function typesAndResolution(): Promise<void> {
  // One type check of everything, the functions' entry points with the rest: each module
  // the functions share is checked once, not once more per function. The repository's
  // deno.json maps every package a function's does, to the same version, and its deno.lock
  // resolves each as the function's does (scripts/function_configs_test.ts, a unit test
  // below, fails otherwise), so the functions are typed against the packages they run
  // with. (Checked each with its own config, the five checks cost 2-3 times the CPU.)
  await step(
    "types",
    DENO_BIN,
    [
      "check",
      "local-stack",
      "functions-shared",
      "lambda",
      "demo",
      "scripts",
      "tests",
      "infrastructure",
      "supabase/functions",
    ],
    undefined,
    BACKGROUND,
  );
  // Each function's import map and lock, as the Edge Runtime loads it: every import of
  // its module graph resolves through its own deno.json, with its deno.lock as it is
  // (--frozen: a lock that would change fails). No type check: "types" did that. Paths
  // relative to the repository (the steps' working directory): the end-to-end files that
  // kill a function's isolates match their command lines, and this is none.
  await Promise.all(
    functionDirs(ROOT).map((dir) =>
      step(`functions resolve: ${basename(dir)}`, DENO_BIN, [
        "cache",
        "--frozen",
        "--config",
        relative(ROOT, join(dir, "deno.json")),
        relative(ROOT, join(dir, "index.ts")),
      ])
    ),
  );
}

/**
 * Every unit test but the Lambda zip's, in one `deno test` of one module that imports
 * them all (written to a temporary folder, outside the repository's `exclude`). Given
 * the files themselves, `deno test` runs each in an isolate of its own, which evaluates
 * its whole module graph again: about 0.3 s of CPU a file that imports the AWS SDK, 32 s
 * of CPU for the hundred files, against 6.5 s through one module. They run one after
 * another either way, in the order of their paths; a failure names its file and line.
 * What changes: every file's top-level code runs before the first test, a module's
 * state (a cached client, a cached secret) is the same for every file that imports it,
 * and a file that throws as it is imported stops the whole step, naming itself.
 */
async function unitTests(): Promise<void> {
  const files = [
    "local-stack",
    "functions-shared",
    "lambda",
    "demo",
    "scripts",
    "supabase/functions",
    "infrastructure",
  ].flatMap((d) => testFiles(join(ROOT, d), "_test.ts"))
    .filter((f) => f !== LAMBDA_ZIP_UNIT_TEST);
  const dir = await Deno.makeTempDir({ prefix: "unit-tests-" });
  const entry = join(dir, "unit_tests.ts");
  await Deno.writeTextFile(
    entry,
    files.map((f) => `import ${JSON.stringify(toFileUrl(f).href)};\n`).join(""),
  );
  try {
    await step("unit tests", DENO_BIN, [
      "test",
      "-A",
      "--no-check",
      "--config",
      join(ROOT, "deno.json"),
      entry,
    ], denoTestCounts);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The Lambda's zip and the Terraform checks that need terraform itself (the HCL is also
 * checked without it, by infrastructure/terraform/terraform_test.ts): build:lambda (the
 * configuration hashes the zip it would deploy), then at the same time the zip's unit
 * test (which installs the Lambda's Node.js with npm: mostly a wait on the network and
 * the disk) and Terraform: fmt, then for the root configuration and the module at the
 * same time, init (from a local provider mirror when there is one) and `terraform test`
 * with mocked providers, each suite on one AWS provider started for it
 * (infrastructure/terraform/provider_server.ts: 33 starts of the provider for the root's
 * 8 run blocks otherwise). Nothing touches AWS. No separate `terraform validate`:
 * `terraform test` validates the whole configuration before each run block's plan
 * (`TestFileRunner.validate` in hashicorp/terraform's internal/backend/local/test.go,
 * https://github.com/hashicorp/terraform/blob/v1.11.4/internal/backend/local/test.go), and
 * fails the suite on any error validate would report: a reference to an undeclared
 * resource, an unknown argument of a resource. `lambdaNodeReady` is called once the
 * zip's unit test has installed the Lambda's Node.js: the end-to-end file that runs the
 * zip on that Node.js waits for it, not for Terraform, which reads the zip whole
 * meanwhile (lambda/build.ts writes it by a rename).
 */
export async function terraformLane(lambdaNodeReady: () => void): Promise<void> {
  const built = await step("build:lambda", DENO_BIN, ["run", "-A", "lambda/build.ts"]);
  const zipTested = (async () => {
    try {
      // Not in the background: lambda_bundle_test.ts, on the first stack, waits for it.
      await denoTest("unit tests: the Lambda's zip on Node.js 22", [LAMBDA_ZIP_UNIT_TEST]);
    } finally {
      lambdaNodeReady();
    }
  })();
  await Promise.all([zipTested, built ? terraformChecks() : undefined]);
}

/** `terraform fmt`, then init and `terraform test` of both configurations at once. */
async function terraformChecks(): Promise<void> {
  const terraform = "terraform";
  if (!(await terraformInstalled())) {
    skip("terraform", "terraform is not installed (the parsed-HCL checks ran in the unit tests)");
    return;
  }
  await step(
    "terraform fmt",
    terraform,
    ["fmt", "-check", "-recursive", "-diff", TERRAFORM_DIR],
    undefined,
    BACKGROUND,
  );
  await Promise.all(["mmp-toledo-sync", "modules/stream-sync"].map(async (config) => {
    const chdir = `-chdir=${join(TERRAFORM_DIR, config)}`;
    const env = terraformEnv(join(ROOT, ".local", "terraform", config));
    const { code, output } = await runCaptured(terraform, [chdir, ...initArgs()], {
      env,
      ...BACKGROUND,
    });
    if (code !== 0) {
      if (providerUnreachable(output)) {
        skip(
          `terraform ${config}`,
          "the AWS provider cannot be installed (no registry, no TF_PLUGIN_DIR mirror)",
        );
      } else {
        fail(`terraform init ${config}`, output);
      }
      return;
    }
    // One AWS provider for the whole suite: the mocked runs configure none.
    const shared = { env, niceness: BACKGROUND_NICENESS, note: console.log };
    await withProviderServer(env.TF_DATA_DIR, shared, async (reattach) => {
      const test = [chdir, "test", "-no-color"];
      await step(`terraform test ${config}`, terraform, test, terraformTestCounts, {
        env: { ...env, ...reattach },
        ...BACKGROUND,
      });
    });
  }));
}
