/**
 * `npm test`: every check and test of the project against the local stack, with a
 * closing summary line. Starts the stack when it is not running, and stops it again at
 * the end (checking that nothing is left behind) when it started it.
 *
 *   deno run -A scripts/run_tests.ts [--keep-stack]
 *
 * Four lanes run at the same time, as they need different things: the stack starting
 * (then pgTAP, and beside it the advisors, db lint, the generated types and the
 * end-to-end files that need no stack or run in the background; then the others, once
 * pgTAP is done: scripts/e2e_plan.ts); a second stack in a copy of the checkout, for the
 * files that stop, restart or reconfigure a part of a stack (scripts/second_stack.ts);
 * the static checks and the unit tests (format, lint, then the type checks beside the
 * unit tests); and the Lambda's zip and Terraform. The second stack is always stopped at the
 * end, checked. Each
 * step prints a line when it starts and ends, and its whole output when it fails
 * (scripts/step_runner.ts), with its CPU seconds. The tests themselves run with
 * `--no-check`: the `types` step has checked every file they load.
 *
 * @module
 */

import { basename, join, relative } from "node:path";
import { pathToFileURL as toFileUrl } from "node:url";
import {
  DENO_BIN,
  DYNAMODB_PORT,
  FUNCTIONS_PORT,
  HOST,
  logDirOf,
  POSTGRES_PORT,
  ROOT,
} from "../local-stack/config.ts";
import { portOpen } from "../local-stack/processes.ts";
import { DEFAULT_DYNAMODB_FAULTS, readStackEnv } from "../local-stack/stack_env.ts";
import {
  HANDS_ON_FUNCTIONS,
  isolateLogOffset,
  isolatesLogIn,
  killsSince,
} from "../local-stack/supabase/isolate_log.ts";
import {
  initArgs,
  providerUnreachable,
  TERRAFORM_DIR,
  terraformEnv,
  terraformInstalled,
} from "../infrastructure/terraform/terraform_cli.ts";
import {
  BACKGROUND,
  BATCHES,
  type E2ePlan,
  NEEDS_LAMBDA_NODE,
  planE2e,
  WAIT_FOR_THE_MINUTE,
} from "./e2e_plan.ts";
import { copyCheckout, removeStackData, SECOND_STACK_DIR, secondStackEnv } from "./second_stack.ts";
import { functionDirs } from "./function_configs.ts";
import {
  check,
  denoTestCounts,
  exitWithSummary,
  fail,
  pgProveCounts,
  pool,
  runCaptured,
  skip,
  step,
  type StepOptions,
  terraformTestCounts,
  testFiles,
} from "./step_runner.ts";

const SUPABASE = join(ROOT, "node_modules", ".bin", "supabase");
/** How many end-to-end files that may share the stack run at once. */
const SHARED_E2E_AT_ONCE = 4;
/** `stack:up`, and `stack:down` with the check that it left nothing running, for either stack. */
const STACK_UP = ["run", "-A", "local-stack/stack.ts", "up"];
const STACK_DOWN_CHECKED = ["run", "-A", "scripts/check_stack_down.ts"];
/** The unit test that builds the Lambda's zip, which the terraform steps read. */
const LAMBDA_ZIP_UNIT_TEST = join(ROOT, "lambda", "lambda_node_test.ts");

async function stackRunning(): Promise<boolean> {
  return await portOpen(HOST, POSTGRES_PORT) && await portOpen(HOST, FUNCTIONS_PORT) &&
    await portOpen(HOST, DYNAMODB_PORT);
}

/** `deno test` of `files`, unchecked (the types step checked them), as one step. */
function denoTest(name: string, files: string[], options?: StepOptions): Promise<boolean> {
  const args = ["test", "-A", "--no-check", ...files];
  return step(name, DENO_BIN, args, denoTestCounts, options);
}

/**
 * The static checks and the unit tests: format, lint, then at once the types of every
 * file (the Edge Functions' entry points among them) followed by whether each function's
 * own `deno.json` resolves its imports under its own lock unchanged, and every unit test
 * but the Lambda zip's (run by {@link terraformLane}). The unit tests run unchecked and
 * need nothing of the type check: run after it, they were the last step of a fresh
 * clone's run, the first stack idle for its last 23 s waiting for them (the type check
 * took 105 s of wall for 19 s of CPU on the busy machine, then the tests 80 s for 26 s).
 */
async function staticLane(): Promise<void> {
  await step("format", DENO_BIN, ["fmt", "--check"]);
  await step("lint", DENO_BIN, ["lint"]);
  await Promise.all([typesAndResolution(), unitTests()]);
}

/** The type check of every file, then each function's imports under its own lock. */
async function typesAndResolution(): Promise<void> {
  // One type check of everything, the functions' entry points with the rest: each module
  // the functions share is checked once, not once more per function. The repository's
  // deno.json maps every package a function's does, to the same version, and its deno.lock
  // resolves each as the function's does (scripts/function_configs_test.ts, a unit test
  // below, fails otherwise), so the functions are typed against the packages they run
  // with. (Checked each with its own config, the five checks cost 2-3 times the CPU.)
  await step("types", DENO_BIN, [
    "check",
    "local-stack",
    "functions-shared",
    "lambda",
    "demo",
    "scripts",
    "tests",
    "infrastructure",
    "supabase/functions",
  ]);
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
 * with mocked providers. Nothing touches AWS. No separate `terraform validate`:
 * `terraform test` validates the whole configuration before each run block's plan
 * (`TestFileRunner.validate` in hashicorp/terraform's internal/backend/local/test.go,
 * https://github.com/hashicorp/terraform/blob/v1.11.4/internal/backend/local/test.go), and
 * fails the suite on any error validate would report: a reference to an undeclared
 * resource, an unknown argument of a resource. `lambdaNodeReady` is called once the
 * zip's unit test has installed the Lambda's Node.js: the end-to-end file that runs the
 * zip on that Node.js waits for it, not for Terraform, which reads the zip whole
 * meanwhile (lambda/build.ts writes it by a rename).
 */
async function terraformLane(lambdaNodeReady: () => void): Promise<void> {
  const built = await step("build:lambda", DENO_BIN, ["run", "-A", "lambda/build.ts"]);
  const zipTested = (async () => {
    try {
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
  await step("terraform fmt", terraform, ["fmt", "-check", "-recursive", "-diff", TERRAFORM_DIR]);
  await Promise.all(["mmp-toledo-sync", "modules/stream-sync"].map(async (config) => {
    const chdir = `-chdir=${join(TERRAFORM_DIR, config)}`;
    const env = terraformEnv(join(ROOT, ".local", "terraform", config));
    const { code, output } = await runCaptured(terraform, [chdir, ...initArgs()], { env });
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
    const test = [chdir, "test", "-no-color"];
    await step(`terraform test ${config}`, terraform, test, terraformTestCounts, { env });
  }));
}

/**
 * pgTAP: the end-to-end files that use the stack wait for it, as its tests empty tables
 * within their transactions and count what is left (each file rolls back at its end).
 * One file at a time: two at a time (`pg_prove --jobs 2`) took 4.9 s instead of 7.0 s on
 * a quiet machine, but files that empty the same tables and write the same keys in
 * another order deadlock beside one another (050 with 065 or 067, over its `alter table`
 * after its merge lock; 040 with 020 once the tables hold rows), and the helpers' file
 * must commit before any other starts.
 */
async function pgTap(databaseUrl: string): Promise<void> {
  await step(
    "pgTAP",
    "pg_prove",
    [
      "--failures",
      "--timer",
      "-d",
      databaseUrl,
      ...testFiles(join(ROOT, "supabase", "tests"), ".sql"),
    ],
    pgProveCounts,
  );
}

/**
 * The checks of the schema the migrations made, at the same time: both advisors, db lint
 * and the generated types. They read the catalog only (the performance advisor's lints
 * that fail at `warn` are of the schema, not of the data), so the end-to-end files'
 * writes cannot change them: they run beside those files.
 */
async function schemaChecks(databaseUrl: string): Promise<void> {
  const remote = `--remote=${databaseUrl}`;
  await Promise.all([
    step("advisors (security)", SUPABASE, [
      "db",
      "advisors",
      remote,
      "--type",
      "security",
      "--level",
      "info",
      "--fail-on",
      "info",
    ]),
    step("advisors (performance, warnings)", SUPABASE, [
      "db",
      "advisors",
      remote,
      "--type",
      "performance",
      "--level",
      "info",
      "--fail-on",
      "warn",
    ]),
    step("db lint (plpgsql_check)", SUPABASE, [
      "db",
      "lint",
      remote,
      "--schema",
      "public,sync,analytics",
      "--level",
      "warning",
      "--fail-on",
      "warning",
    ]),
    step("generated types match the migrations", DENO_BIN, [
      "run",
      "-A",
      "scripts/gen_types.ts",
      "--check",
    ]),
  ]);
}

/**
 * The end-to-end files of `tests/` once the stack is up: those that need no stack and
 * the background files at once, beside pgTAP (the background ones that run the Lambda's
 * zip once `lambdaNode` resolves); once pgTAP is done, the files that may share the
 * stack a few at a time (those waiting for pg_cron's minute first, and beside them, once
 * the others are done, the files that may run while they wait), then the others in their
 * batches, a batch's files at the same time, with the background files going on beside
 * them; last, once the background files are done, any file the plan does not name, each
 * alone (scripts/e2e_plan.ts).
 */
async function endToEnd(
  { noStack, shared, besideTheMinute, batches, unnamed }: E2ePlan,
  pgTapDone: Promise<void>,
  lambdaNode: Promise<unknown>,
): Promise<void> {
  const run = async (file: string, tag = "") => {
    if (NEEDS_LAMBDA_NODE.includes(file)) await lambdaNode;
    await denoTest(`e2e ${file}${tag}`, [join(ROOT, "tests", file)]);
  };
  const withoutStack = Promise.all(noStack.map((file) => run(file, " (no stack)")));
  const background = Promise.all(shared.filter((f) => BACKGROUND.includes(f)).map((f) => run(f)));
  await pgTapDone;
  // The two that wait for pg_cron's minute first, the other shared files beside them in
  // the places left (each of the two gives its place to them when it ends); once the
  // others are done, the files that may run while the two still wait; the batches once
  // they are done.
  const waiting = shared.filter((f) => WAIT_FOR_THE_MINUTE.includes(f));
  const eachWaiting = waiting.map((f) => run(f));
  const minute = Promise.all(eachWaiting);
  await pool(
    Math.max(1, SHARED_E2E_AT_ONCE - waiting.length),
    shared.filter((f) => !BACKGROUND.includes(f) && !waiting.includes(f)).map((f) => () => run(f)),
    eachWaiting,
  );
  const beside = Promise.all(besideTheMinute.map((f) => run(f, " (beside pg_cron's minute)")));
  await minute;
  // Only the plan's first batch may run beside them (BESIDE_THE_MINUTE).
  for (const batch of batches) {
    if (!batch.every((file) => BATCHES[0]?.includes(file))) await beside;
    await Promise.all(batch.map((file) => run(file, batchTag(batch))));
  }
  await beside;
  // A file the plan does not name may stop what the background files read: after them.
  await background;
  for (const file of unnamed) await run(file, " (alone, not in scripts/e2e_plan.ts)");
  await withoutStack;
}

/** How a batch's files are named in the steps: " (alone)" or " (batch of 3)". */
function batchTag(batch: string[], stack = ""): string {
  return batch.length > 1 ? ` (${stack}batch of ${batch.length})` : ` (${stack}alone)`;
}

/**
 * The second stack (scripts/second_stack.ts), beside the first: a fresh copy of this
 * checkout, its own stack:up on ports of its own, its batches one after another
 * (scripts/e2e_plan.ts, `SECOND_STACK`), the check that none of its import-worker or
 * validator isolates was killed at a hard limit, and its stack:down, checked, whatever
 * happened.
 */
async function secondStackLane(batches: string[][]): Promise<void> {
  if (batches.length === 0) return;
  const where = { cwd: SECOND_STACK_DIR, env: secondStackEnv() };
  try {
    const copied = await copyCheckout();
    console.log(`--- second stack: ${copied} files copied to ${relative(ROOT, SECOND_STACK_DIR)}`);
  } catch (error) {
    fail("second stack: a copy of this checkout", (error as Error).message);
    return;
  }
  try {
    if (!(await step("second stack: stack:up", DENO_BIN, STACK_UP, undefined, where))) return;
    for (const batch of batches) {
      const tag = batchTag(batch, "second stack, ");
      await Promise.all(
        batch.map((file) => denoTest(`e2e ${file}${tag}`, [`tests/${file}`], where)),
      );
    }
    check(
      "no import-worker or validator isolate of the second stack was killed at a hard limit",
      killsSince(0, HANDS_ON_FUNCTIONS, isolatesLogIn(logDirOf(SECOND_STACK_DIR))),
    );
  } finally {
    const name = "second stack: stack:down leaves nothing running";
    if (await step(name, DENO_BIN, STACK_DOWN_CHECKED, undefined, where)) removeStackData();
  }
}

const keepStack = Deno.args.includes("--keep-stack");
const wasRunning = await stackRunning();
// The backfill and the validator hand on before their isolate's CPU reaches the hosted
// hard limit (docs/interfaces.md, "Edge Function limits"): none of their isolates may be
// killed while the tests run (the gateway logs every isolate that ends).
const isolateLog = isolateLogOffset();

const plan = planE2e(testFiles(join(ROOT, "tests"), "_test.ts").map((f) => basename(f)));
const lambdaNode = Promise.withResolvers<void>();
const terraformDone = terraformLane(lambdaNode.resolve);
const staticDone = staticLane();
const firstUp = step("stack:up", DENO_BIN, STACK_UP);
// Both stacks start at once, before the run's connections crowd the ports: the stacks'
// Postgres and gateway ports lie in the range the kernel gives outgoing connections and
// port-0 listeners (local-stack/supabase/postgres.ts, pgCtlStart).
const secondDone = secondStackLane(plan.secondStack);
const stackDone = (async () => {
  if (!(await firstUp)) return false;
  const { DATABASE_URL: databaseUrl, DYNAMODB_FAULTS: faults } = readStackEnv();
  if (faults !== DEFAULT_DYNAMODB_FAULTS) {
    // A test that changes the faults puts them back when it ends; a run killed during it
    // cannot, and .local/stack.env keeps what it set (write_back_test.ts: a fifth of the
    // requests failing, which the other files' own writes are not built to survive).
    console.log(
      `note: DynamoDB's faults are ${faults} in .local/stack.env, not the default ` +
        `${DEFAULT_DYNAMODB_FAULTS} that the tests are written for; set the line back ` +
        `(or delete it) and run stack:up if that was not on purpose`,
    );
  }
  const schemaChecked = schemaChecks(databaseUrl);
  await endToEnd(plan, pgTap(databaseUrl), lambdaNode.promise);
  await schemaChecked;
  return true;
})();
// The first stack stops once everything that uses it is done, whatever the second is doing
// (scripts/check_stack_down.ts looks for this checkout's processes only, and the second
// stack's run from its copy in .local/second-stack/).
const firstDone = (async () => {
  const [stackUp] = await Promise.all([stackDone, staticDone, terraformDone]);
  if (stackUp) {
    check(
      "no import-worker or validator isolate was killed at a hard limit",
      killsSince(isolateLog, HANDS_ON_FUNCTIONS),
    );
  }
  // Whatever happened, a stack this run started is stopped (a stack:up that failed half
  // way leaves Postgres or DynamoDB Local running otherwise).
  if (!wasRunning && !keepStack) {
    await step("stack:down leaves nothing running", DENO_BIN, STACK_DOWN_CHECKED);
  }
})();
await Promise.all([firstDone, secondDone]);

exitWithSummary();
