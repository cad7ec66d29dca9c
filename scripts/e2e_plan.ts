/**
 * Which end-to-end files of `tests/` may run at the same time against the one local
 * stack, and which need it to themselves (scripts/run_tests.ts runs them in that order).
 *
 * A few files need nothing of the stack ({@link NO_STACK}: clusters or gateways of their
 * own on ports of their own): they start as soon as the stack is up, beside the database
 * checks, and hold no place among the others.
 *
 * A file may share the stack when nothing it does can change what another file sees:
 * it uses keys of its own (a random prefix), and it neither stops nor restarts a part of
 * the stack, kills a function's processes, changes a setting every table obeys, starts
 * a backfill (whose sweep removes the rows of a table that its Scan did not see,
 * docs/sync-semantics.md, "What a backfill ends with") nor validates a whole table
 * (which another file's rows would make differ). Such files run first, a few at a time;
 * the two that wait for pg_cron's next minute (pg_cron 1.4 schedules by the minute,
 * {@link WAIT_FOR_THE_MINUTE}) start first and together, so that they wait for the same
 * tick while the others work. Every other file needs more of the stack: {@link ALONE}
 * says why for each. Those that stop, restart or reconfigure a part of the stack run on
 * a second stack of their own ({@link SECOND_STACK}, scripts/second_stack.ts) while
 * everything else runs on the first; the others run in {@link BATCHES}, but for
 * {@link BESIDE_THE_MINUTE}, which may start while the two still wait. A file that this
 * plan does not name runs alone (the safe default).
 *
 * @module
 */

/**
 * Files that need nothing of the stack, so they run beside everything from the moment
 * the stack is up: each makes what it tests on ports of its own.
 */
export const NO_STACK: readonly string[] = [
  // A cluster of its own, every migration pushed: the longest, first.
  "migrations_test.ts",
  "root_only_clone_test.ts",
  // Gateways of its own serving the burn-cpu test function.
  "edge_gateway_limits_test.ts",
  // The bench's goal table, from text.
  "bench_goals_test.ts",
  // The real Supabase CLI deploying the functions to a Management API of its own.
  "functions_deploy_test.ts",
];

/** Files that share the stack, in the order they start (the longest first). */
export const SHARED: readonly string[] = [
  // pg_cron's own clock: each waits up to a minute for the next tick, the same one. Only
  // cron_test.ts calls the import-worker (it must be the only one to wake it, pg_cron's
  // job aside): stack_test.ts's pg_cron job calls another function.
  "cron_test.ts",
  "stack_test.ts",
  // The others, the longest first (23 s down to 2 s in a fresh clone's run), so that the
  // last to start are short: the webhook and the merge with keys of their own, on tables
  // no shared file backfills; export_backfill_test.ts's export jobs of its own, stamped
  // in 2001 (their sweep removes only rows older than that), loaded over a direct
  // connection as the command loads them; stack_reuse_test.ts's stack:up again, beside
  // them; collapsed_rereads_test.ts's visitor of its own, whose re-read requests (and
  // stream_sync_test.ts's, for its own queued visitors) also serve other files' queued
  // keys, which they can only bring back to what DynamoDB holds (as pg_cron's sweep does
  // anyway).
  // The webhook's own tests: 23 s, 20 of them waiting on a lock of their own (its batch's
  // lock wait), nothing else held meanwhile.
  "webhook_test.ts",
  "stream_failure_test.ts",
  // 600 rows of its own edited by an admin, and written back: the write-back function's
  // runs also take any other file's due write-backs, and write each as it must.
  "write_back_bulk_test.ts",
  "export_backfill_test.ts",
  "stack_reuse_test.ts",
  "stream_sync_test.ts",
  "poison_values_test.ts",
  "merge_ordering_test.ts",
  "webhook_dead_letters_test.ts",
  "collapsed_rereads_test.ts",
  "registry_database_test.ts",
  // The bench's stall watch: a transaction of its own left idle for a second.
  "bench_stall_watch_test.ts",
  // These two build the Lambda's zip (lambda/build.ts writes it whole, by a rename, so
  // Terraform may read it meanwhile) and read DynamoDB Local: they start beside the
  // database checks, in the background ({@link BACKGROUND}).
  "lambda_bundle_test.ts",
  "terraform_plan_test.ts",
];

/**
 * The shared files that wait for pg_cron's next minute (pg_cron 1.4 schedules by the
 * minute): up to 60 s, mostly idle.
 */
export const WAIT_FOR_THE_MINUTE: readonly string[] = ["cron_test.ts", "stack_test.ts"];

/**
 * {@link ALONE} files that start while {@link WAIT_FOR_THE_MINUTE} still wait, once every
 * other shared file is done, beside the first batch: they call no import-worker
 * (cron_test.ts must be the only one to wake it) and validate tables that neither of
 * those two writes (stack_test.ts's pg_cron job calls the validator, which refuses its
 * table before a run begins). Only the first of {@link BATCHES} runs beside them. (A
 * repair of more than 200 divergent keys heals by a backfill, which would wake the
 * import-worker: validator_test.ts makes a handful, and fails on a stack with more.)
 */
export const BESIDE_THE_MINUTE: readonly string[] = ["validator_test.ts"];

/**
 * Shared files that start as soon as the stack is up, beside the database checks (which
 * they leave alone: neither writes to Postgres), and that the batches do not wait for:
 * they touch no table a batch empties or backfills as a whole, and need only Postgres,
 * the functions and DynamoDB Local, which no batch of the first stack stops or restarts
 * (those that do run on the second: {@link SECOND_STACK}).
 */
export const BACKGROUND: readonly string[] = ["lambda_bundle_test.ts", "terraform_plan_test.ts"];

/**
 * The files of {@link NO_STACK} and {@link BACKGROUND} that run under `nice`
 * (scripts/captured_runs.ts, `BACKGROUND`): off the critical path, and with no clock of
 * their own that a starved process could miss. Not `lambda_bundle_test.ts` (the Lambda's
 * invocation deadline: starved, its webhook request timed out) nor
 * `edge_gateway_limits_test.ts` (the Edge Runtime's wall-clock limits).
 */
export const UNDER_NICE: readonly string[] = [
  "migrations_test.ts",
  "root_only_clone_test.ts",
  "bench_goals_test.ts",
  "functions_deploy_test.ts",
  "terraform_plan_test.ts",
];

/**
 * The files that run the Lambda's zip on its Node.js: they wait for the zip's unit test,
 * which installs that Node.js (two installs at once would race), and `build:lambda`.
 */
export const NEEDS_LAMBDA_NODE: readonly string[] = ["lambda_bundle_test.ts"];

/**
 * Files that may not share the stack with the shared ones, and why. They run in
 * {@link BATCHES}, one batch after another.
 */
export const ALONE: Readonly<Record<string, string>> = {
  "database_down_test.ts": "stops Postgres",
  "pooler_test.ts":
    "sets session state on the pooler's server connections and needs the one released last",
  "edge_limits_test.ts": "backfills the searches table with 5,000 items or more",
  "validator_test.ts": "validates whole tables: segments, network state, traffic sources",
  "poison_values_backfill_test.ts": "backfills the actions table",
  "backfill_test.ts": "backfills every table (the sweep) and kills the import-worker's processes",
  "validator_repair_test.ts": "validates and repairs the visitors table whole",
  "validator_repair_stream_test.ts": "validates and repairs the segments table whole",
  "validator_resume_test.ts": "kills the validator's processes",
  "stream_times_test.ts": "backfills while it streams, and counts the proxy's stream records",
  "retention_test.ts": "shortens every retention setting",
  "backfill_heal_test.ts":
    "backfills the leads table whole (its sweep removes what it does not find), and sets " +
    "backfill_end_inline_ms, which every backfill's end obeys, to 0",
  "stream_check_test.ts":
    "stops the stream poller and starts it again, replaces the segments table's stream, " +
    "closes its shards (for the rest of the stack's life), and restarts the functions " +
    "gateway with stream-check's allowance lowered",
  "dynamodb_faults_test.ts": "restarts the DynamoDB proxy with other faults",
  "dynamodb_stalls_test.ts":
    "restarts the DynamoDB proxy with requests that stall and the functions gateway with 1 s " +
    "attempts, backfills and validates the traffic sources table whole, and stalls the " +
    "leads table's next writes (write-backs of its own leads)",
  "npm_start_test.ts":
    "empties DynamoDB Local and every table, then loads, backfills and validates",
  "backfill_page_test.ts": "starts a backfill job of the actions table, leased by hand",
  "stream_shards_test.ts":
    "closes and splits the searches table's stream shards, for the rest of the stack's life",
  "validator_eventual_test.ts": "validates and repairs the traffic sources table whole",
  "export_backfill_cli_test.ts":
    "backfills the leads table from an export (its sweep covers the whole table) and validates it",
  "export_quiet_test.ts":
    "restarts the S3 stand-in with a data file's reads going quiet (S3_FAULTS)",
  "write_back_test.ts":
    "validates toledo_dashboard whole and restarts the DynamoDB proxy with other faults",
};

/**
 * The order of the {@link ALONE} files of the first stack (the others are in
 * {@link SECOND_STACK}): each batch runs when the one before it is done,
 * its files at the same time. Files share a batch only when each backfills or validates
 * tables no other file of the batch writes to, and none stops, restarts or kills a part
 * of the stack or changes a setting every table obeys.
 */
export const BATCHES: readonly (readonly string[])[] = [
  // Backfills of searches (and a worker of the test's own, which must be the only one to
  // claim its job's segment), beside validator_test.ts (BESIDE_THE_MINUTE).
  ["edge_limits_test.ts"],
  // A backfill of actions | validations and repairs of visitors | of segments | of
  // traffic sources | the searches stream's shards closed and split (after
  // edge_limits_test.ts's backfill of searches) | a backfill of leads from an export,
  // validated (and the dashboard's export refused). A table's export is asked for only
  // once its stream has run two minutes (scripts/export_stream_cover.ts): when this
  // batch starts, this stack's streams have run about that long, where on the second
  // stack, younger, the test waited about half a minute on that stack's critical path.
  // Beside the batch's longest (the segments' repairs, 35-37 s), it is off the first
  // stack's tail, where it ran alone for 24 s.
  [
    "poison_values_backfill_test.ts",
    "validator_repair_test.ts",
    "validator_repair_stream_test.ts",
    "validator_eventual_test.ts",
    "stream_shards_test.ts",
    "export_backfill_cli_test.ts",
  ],
  ["backfill_test.ts"],
  // The S3 stand-in restarted with quiet reads, and again without: alone, last, where the
  // first stack has time to spare while the second's lane is npm test's longest.
  ["export_quiet_test.ts"],
];

/**
 * The {@link ALONE} files that run on the second stack (scripts/second_stack.ts), one
 * batch after another, while the first stack runs every other file: those that stop,
 * restart or reconfigure a part of the stack (they mostly wait while they do), and one
 * batch more, so that the two stacks end about together.
 */
export const SECOND_STACK: readonly (readonly string[])[] = [
  ["pooler_test.ts"],
  ["retention_test.ts"],
  ["stream_check_test.ts"],
  ["database_down_test.ts"],
  ["dynamodb_faults_test.ts"],
  // Stalled Scans and write-backs' UpdateItems given up after 1 s attempts.
  ["dynamodb_stalls_test.ts"],
  ["write_back_test.ts"],
  // Validations of actions (killing the validator's processes) | a backfill of segments.
  // These batches here rather than on the first stack, whose batches wait for pg_cron's
  // minute first (up to 60 s).
  ["validator_resume_test.ts", "stream_times_test.ts"],
  // Healing backfills of leads, one with every backfill's end left to the workers.
  ["backfill_heal_test.ts"],
  ["backfill_page_test.ts"],
  // Last: it empties DynamoDB Local and every table.
  ["npm_start_test.ts"],
];

/** The plan of a set of end-to-end files: which run when. */
export interface E2ePlan {
  /** Files that need no stack, run beside everything once the stack is up. */
  noStack: string[];
  /** Files that share the stack, a few at a time. */
  shared: string[];
  /** Files that start while pg_cron's minute is awaited, beside the first batch. */
  besideTheMinute: string[];
  /** The batches of the others on the first stack, one after another. */
  batches: string[][];
  /** The batches of the second stack, one after another. */
  secondStack: string[][];
  /**
   * Files the plan does not name: each alone on the first stack, after its batches and
   * once the background files are done (the safe default).
   */
  unnamed: string[];
}

/**
 * Splits the end-to-end files (names relative to `tests/`) into those that need no
 * stack, those run together, the batches of the others and those of the second stack,
 * each in the plan's order, and those it does not name.
 */
export function planE2e(files: readonly string[]): E2ePlan {
  const present = new Set(files);
  const noStack = NO_STACK.filter((f) => present.has(f));
  const shared = SHARED.filter((f) => present.has(f));
  const inPlan = (batches: readonly (readonly string[])[]) =>
    batches.map((b) => b.filter((f) => present.has(f))).filter((b) => b.length);
  const batches = inPlan(BATCHES);
  const secondStack = inPlan(SECOND_STACK);
  const besideTheMinute = BESIDE_THE_MINUTE.filter((f) => present.has(f));
  const named = new Set([
    ...noStack,
    ...shared,
    ...besideTheMinute,
    ...batches.flat(),
    ...secondStack.flat(),
  ]);
  const unnamed = files.filter((f) => !named.has(f)).sort();
  return { noStack, shared, besideTheMinute, batches, secondStack, unnamed };
}
