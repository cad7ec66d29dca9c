/**
 * `npm test`: every check and test of the project against the local stack, with a
 * closing summary line. Starts the stack when it is not running, and stops it again at
 * the end (checking that nothing is left behind) when it started it.
 *
 *   deno run -A scripts/run_tests.ts [--keep-stack]
 *
 * Four lanes run at the same time, as they need different things: the stack starting
 * (then pgTAP, and beside it the advisors, db lint, the generated types, all in
 * scripts/database_checks.ts, and the
 * end-to-end files that need no stack or run in the background; then the others, once
 * pgTAP is done: scripts/e2e_plan.ts); a second stack in a copy of the checkout, for the
 * files that stop, restart or reconfigure a part of a stack (scripts/second_stack.ts);
 * the static checks and the unit tests (format, lint, then the type checks beside the
 * unit tests); and the Lambda's zip and Terraform (those two: scripts/check_lanes.ts). The
 * second stack is always stopped at the end, checked. Each
 * step prints a line when it starts and ends, and its whole output when it fails
 * (scripts/step_runner.ts), with its CPU seconds. The tests themselves run unchecked:
 * the `types` step has checked every file they load. Each end-to-end file runs in a
 * process of its own, by scripts/e2e_runner.ts (not `deno test`, which boots a second
 * isolate for each file: 0.37 s of CPU a file).
 *
 * @module
 */

import { existsSync } from "node:fs";
import { basename, join, relative } from "node:path";
import {
  DENO_BIN,
  DYNAMODB_PORT,
  FUNCTIONS_PORT,
  HOST,
  logDirOf,
  POSTGRES_PORT,
  ROOT,
} from "../local-stack/config.ts";
import { portOpen, run } from "../local-stack/processes.ts";
import { DEFAULT_DYNAMODB_FAULTS, readStackEnv } from "../local-stack/stack_env.ts";
import { functionsEnvFile } from "../local-stack/supabase/project_secrets.ts";
import {
  HANDS_ON_FUNCTIONS,
  isolateLogOffset,
  isolatesLogIn,
  killsSince,
  logTextSince,
} from "../local-stack/supabase/isolate_log.ts";
import { droppedLines } from "../local-stack/supabase/log_limits.ts";
import { staticLane, terraformLane } from "./check_lanes.ts";
import { pgTap, schemaChecks } from "./database_checks.ts";
import {
  BACKGROUND,
  BATCHES,
  type E2ePlan,
  NEEDS_LAMBDA_NODE,
  planE2e,
  UNDER_NICE,
  WAIT_FOR_THE_MINUTE,
} from "./e2e_plan.ts";
import { copyCheckout, removeStackData, SECOND_STACK_DIR, secondStackEnv } from "./second_stack.ts";
import { BACKGROUND as BACKGROUND_STEP, type StepOptions } from "./captured_runs.ts";
import { check, e2eTest, exitWithSummary, fail, step, testFiles } from "./step_runner.ts";
import { pool } from "./task_pool.ts";
import { interruptSteps, onInterrupt } from "./on_interrupt.ts";
import { describeError } from "../functions-shared/error_text.ts";

/** How many end-to-end files that may share the stack run at once. */
const SHARED_E2E_AT_ONCE = 4;
/**
 * `stack:up`, `stack:down` with the check that it left nothing running, and `stack:down`
 * alone, for either stack.
 */
const STACK_UP = ["run", "-A", "local-stack/stack.ts", "up"];
const STACK_DOWN_CHECKED = ["run", "-A", "scripts/check_stack_down.ts"];
const STACK_DOWN = ["run", "-A", "local-stack/stack.ts", "down"];

async function stackRunning(): Promise<boolean> {
  return await portOpen(HOST, POSTGRES_PORT) && await portOpen(HOST, FUNCTIONS_PORT) &&
    await portOpen(HOST, DYNAMODB_PORT);
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
  const run = async (file: string, tag = "", options?: StepOptions) => {
    if (NEEDS_LAMBDA_NODE.includes(file)) await lambdaNode;
    await e2eTest(`e2e ${file}${tag}`, `tests/${file}`, options);
  };
  // Off the critical path, both: they end long before the stacks' files; those without a
  // clock of their own run under nice (UNDER_NICE, StepOptions).
  const niceness = (file: string) => UNDER_NICE.includes(file) ? BACKGROUND_STEP : undefined;
  const withoutStack = Promise.all(
    noStack.map((file) => run(file, " (no stack)", niceness(file))),
  );
  const background = Promise.all(
    shared.filter((f) => BACKGROUND.includes(f)).map((f) => run(f, "", niceness(f))),
  );
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
 * (scripts/e2e_plan.ts, `SECOND_STACK`), the check that none of its isolates of the
 * functions that hand on was killed at a hard limit, and its stack:down, checked, whatever
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
        batch.map((file) => e2eTest(`e2e ${file}${tag}`, `tests/${file}`, where)),
      );
    }
    check(
      "no import-worker, validator, write-back or stream-check isolate of the second stack was killed at a hard limit",
      killsSince(0, HANDS_ON_FUNCTIONS, isolatesLogIn(logDirOf(SECOND_STACK_DIR))),
    );
    check(
      "no function of the second stack logged past hosted's limit of 100 lines in 10 s",
      droppedLines(logTextSince(0, join(logDirOf(SECOND_STACK_DIR), "functions.log"))),
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
// Nor may a function log past hosted's limit (100 lines in 10 s): hosted drops the rest.
const FUNCTIONS_LOG = join(logDirOf(ROOT), "functions.log");
const functionsLog = isolateLogOffset(FUNCTIONS_LOG);

const plan = planE2e(testFiles(join(ROOT, "tests"), "_test.ts").map((f) => basename(f)));
// Ctrl-C (or CI's TERM): no step starts any more, those running are stopped, and so are
// the stacks this run started, whose servers run in sessions of their own, out of the
// signal's reach, before it exits.
onInterrupt(async (signal) => {
  console.log(`\nnpm test: ${signal}: stopping its steps and the stacks this run started`);
  interruptSteps();
  await Promise.allSettled([
    plan.secondStack.length > 0 && existsSync(SECOND_STACK_DIR)
      ? run(DENO_BIN, STACK_DOWN, { cwd: SECOND_STACK_DIR, env: secondStackEnv() })
      : undefined,
    !wasRunning && !keepStack ? run(DENO_BIN, STACK_DOWN, { cwd: ROOT }) : undefined,
  ]);
});
const lambdaNode = Promise.withResolvers<void>();
const terraformDone = terraformLane(lambdaNode.resolve);
const unitTestsDone = Promise.withResolvers<void>();
const staticDone = staticLane(unitTestsDone.resolve);
const firstUp = step("stack:up", DENO_BIN, STACK_UP);
// Both stacks start at once, before the run's connections crowd the ports: the stacks'
// Postgres and gateway ports lie in the range the kernel gives outgoing connections and
// port-0 listeners (local-stack/supabase/postgres.ts, pgCtlStart).
const secondDone = secondStackLane(plan.secondStack);
const stackDone = (async () => {
  if (!(await firstUp)) return false;
  const { DATABASE_URL: databaseUrl, DYNAMODB_FAULTS: faults, S3_FAULTS: s3Faults } =
    readStackEnv();
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
  if ((s3Faults ?? "").trim() !== "") {
    // export_quiet_test.ts's quiet reads, left by a run killed during it, cost every
    // export read 30 s or more.
    console.log(
      `note: the S3 stand-in's faults are ${s3Faults} in .local/stack.env, over its ` +
        "defaults that the tests are written for; empty the line and run stack:up if that " +
        "was not on purpose",
    );
  }
  const secrets = Object.keys(functionsEnvFile());
  if (secrets.length > 0) {
    console.log(
      `note: the functions get ${secrets.join(", ")} from supabase/functions/.env, which ` +
        `the tests are not written for; move the file away and run stack:up if that was ` +
        `not on purpose`,
    );
  }
  const schemaChecked = schemaChecks(databaseUrl);
  await endToEnd(plan, pgTap(databaseUrl), lambdaNode.promise);
  await schemaChecked;
  return true;
})();
// The first stack stops once everything that uses it is done, whatever the second is doing
// (scripts/check_stack_down.ts looks for this checkout's processes only, and the second
// stack's run from its copy in .local/second-stack/) and whatever the lanes that need no
// stack are doing (its servers' idle work, pg_cron's ticks and the JVM's, would take
// their cores meanwhile), once the unit tests are done (scripts/check_lanes.ts,
// staticLane: two of them look like the stack's leftovers to its checked stop).
const firstDone = (async () => {
  // Settled, not all: a lane that threw must not skip the stack's stop below.
  const [stack] = await Promise.allSettled([stackDone, unitTestsDone.promise]);
  if (stack.status === "rejected") fail("end-to-end lane", describeError(stack.reason));
  if (stack.status === "fulfilled" && stack.value) {
    check(
      "no import-worker, validator, write-back or stream-check isolate was killed at a hard limit",
      killsSince(isolateLog, HANDS_ON_FUNCTIONS),
    );
    check(
      "no function logged past hosted's limit of 100 lines in 10 s",
      droppedLines(logTextSince(functionsLog, FUNCTIONS_LOG)),
    );
  }
  // Whatever happened, a stack this run started is stopped (a stack:up that failed half
  // way leaves Postgres or DynamoDB Local running otherwise).
  if (!wasRunning && !keepStack) {
    await step("stack:down leaves nothing running", DENO_BIN, STACK_DOWN_CHECKED);
  }
})();
const lanes = {
  "first stack": firstDone,
  "second stack": secondDone,
  static: staticDone,
  terraform: terraformDone,
};
for (const [name, lane] of Object.entries(lanes)) {
  await lane.catch((error) => fail(`${name} lane`, describeError(error)));
}

exitWithSummary();
