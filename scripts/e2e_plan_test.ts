/**
 * The end-to-end plan (scripts/e2e_plan.ts) names every file of `tests/` exactly once,
 * and no file that shares the stack does what only a file alone may do.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ROOT } from "../local-stack/config.ts";
import {
  ALONE,
  BACKGROUND,
  BATCHES,
  BESIDE_THE_MINUTE,
  NEEDS_LAMBDA_NODE,
  NO_STACK,
  planE2e,
  SECOND_STACK,
  SHARED,
  UNDER_NICE,
  WAIT_FOR_THE_MINUTE,
} from "./e2e_plan.ts";
import { testFiles } from "./step_runner.ts";

const TESTS = join(ROOT, "tests");
const files = testFiles(TESTS, "_test.ts").map((f) => basename(f));

Deno.test("every end-to-end file is named once: without the stack, shared or alone", () => {
  const named = [...NO_STACK, ...SHARED, ...Object.keys(ALONE)];
  assert.deepEqual([...named].sort(), [...files].sort());
  assert.equal(new Set(named).size, named.length, "a file is in one place only");
  assert.ok(NEEDS_LAMBDA_NODE.every((f) => SHARED.includes(f)));
  assert.ok(UNDER_NICE.every((f) => NO_STACK.includes(f) || BACKGROUND.includes(f)));
  assert.ok(!UNDER_NICE.includes("lambda_bundle_test.ts"), "its invocation has a deadline");
  assert.ok(BACKGROUND.every((f) => SHARED.includes(f)));
  assert.ok(WAIT_FOR_THE_MINUTE.every((f) => SHARED.includes(f)));
  assert.deepEqual(
    [...BESIDE_THE_MINUTE, ...BATCHES.flat(), ...SECOND_STACK.flat()].sort(),
    Object.keys(ALONE).sort(),
    "each alone file in a batch of one stack",
  );
  assert.deepEqual(
    SECOND_STACK.at(-1),
    ["npm_start_test.ts"],
    "npm start empties every table: last",
  );
});

Deno.test("a file the plan does not name runs alone, last", () => {
  const plan = planE2e([
    "zz_new_test.ts",
    "webhook_test.ts",
    "retention_test.ts",
    "migrations_test.ts",
  ]);
  assert.deepEqual(plan, {
    noStack: ["migrations_test.ts"],
    shared: ["webhook_test.ts"],
    besideTheMinute: [],
    batches: [],
    secondStack: [["retention_test.ts"]],
    unnamed: ["zz_new_test.ts"],
  });
});

/** What only a file that has the stack to itself may do, and how its source says so. */
const EXCLUSIVE: [string, RegExp][] = [
  ["stops Postgres", /stopPostgres\(/],
  ["stops a part of the stack", /stopDetached\(/],
  ["kills processes", /pkill/],
  ["starts a backfill", /start_backfill\(|npm run backfill|scripts\/backfill\.ts/],
  ["validates a table", /start_validation\(|validate\(|data-checksum-validator", \{/],
  ["changes a setting of every table", /update sync\.settings/],
  ["restarts the stack with other settings", /STACK_ENV_FILE|DYNAMODB_FAULTS/],
  ["holds the pooler's server connections", /POOLER_URL/],
];

/** The exceptions, each the point of its file. */
const ALLOWED: Record<string, string[]> = {
  // Its own backfill, of a table no other shared file writes: the one cron schedule test.
  "cron_test.ts": ["starts a backfill"],
  // Export jobs stamped in 2001: their sweep removes no row another file writes. Such an
  // export is older than the tombstones kept, so each job is started in a transaction
  // that keeps them longer and sets them back before it commits: no other session sees it.
  "export_backfill_test.ts": ["starts a backfill", "changes a setting of every table"],
  // Their calls of the validator are `{"rereads": true}` (queued collapsed keys), no
  // validation: stream_sync_test.ts's, so that its own queued visitors are re-read before
  // its snapshot rather than by pg_cron's sweep in the middle of its test.
  "collapsed_rereads_test.ts": ["validates a table"],
  "stream_sync_test.ts": ["validates a table"],
};

/** A batch's files, each with the others of its batch. */
const batchMates = [...BATCHES, ...SECOND_STACK].filter((b) => b.length > 1).flat()
  .concat(BESIDE_THE_MINUTE, BATCHES[0] ?? []);

Deno.test("no shared file stops, kills, backfills, validates or reconfigures", () => {
  for (const file of SHARED) {
    const source = readFileSync(join(TESTS, file), "utf8");
    for (const [what, pattern] of EXCLUSIVE) {
      if (ALLOWED[file]?.includes(what)) continue;
      assert.ok(!pattern.test(source), `${file} ${what}: it must run alone (scripts/e2e_plan.ts)`);
    }
  }
});

/** What no file may do that shares a batch with others. */
const DISRUPTIVE = EXCLUSIVE.filter(([what]) =>
  !["starts a backfill", "validates a table"].includes(what)
);
/** The exceptions, each the point of its file and harmless to its batch's others. */
const ALLOWED_IN_BATCH: Record<string, string[]> = {
  // It kills the validator's processes; its batch validates nothing else.
  "validator_resume_test.ts": ["kills processes"],
};

Deno.test("no file of a batch of several stops, kills or reconfigures", () => {
  for (const file of batchMates) {
    const source = readFileSync(join(TESTS, file), "utf8");
    for (const [what, pattern] of DISRUPTIVE) {
      if (ALLOWED_IN_BATCH[file]?.includes(what)) continue;
      assert.ok(!pattern.test(source), `${file} ${what}: it must run alone (scripts/e2e_plan.ts)`);
    }
  }
});

Deno.test("every file that stops or restarts a part of the stack runs on the second", () => {
  // The background files (BACKGROUND) go on beside the first stack's batches, reading
  // Postgres and DynamoDB Local: no file of the first stack may stop or restart them.
  const stops =
    /stopPostgres\(|stopDetached\(|STACK_ENV_FILE[,)]|setFaults\(|local-stack\/stack\.ts|scripts\/start\.ts/;
  for (const file of files) {
    const source = readFileSync(join(TESTS, file), "utf8");
    // stack_reuse_test.ts runs stack:up on the running stack, which restarts nothing.
    if (!stops.test(source) || NO_STACK.includes(file) || file === "stack_reuse_test.ts") continue;
    assert.ok(
      SECOND_STACK.flat().includes(file),
      `${file} stops or restarts a part of the stack: it must run on the second stack (scripts/e2e_plan.ts)`,
    );
  }
});

Deno.test("a file run without the stack reaches for none of it", () => {
  for (const file of NO_STACK) {
    const source = readFileSync(join(TESTS, file), "utf8");
    assert.ok(
      !/stack_clients|readStackEnv|stack\.env/.test(source),
      `${file} uses the stack: it must share it (scripts/e2e_plan.ts)`,
    );
  }
});

Deno.test("of the files beside cron_test.ts, none calls the import-worker", () => {
  // cron_test.ts proves that pg_cron's job alone woke the import-worker for its backfill:
  // no file beside it may call the import-worker, or make pg_cron call it.
  const calls = /callFunction\("import-worker"|functions\/v1\/import-worker|wake_import_worker/;
  for (const file of [...SHARED, ...BESIDE_THE_MINUTE].filter((f) => f !== "cron_test.ts")) {
    const source = readFileSync(join(TESTS, file), "utf8");
    assert.ok(!calls.test(source), `${file} calls the import-worker beside cron_test.ts`);
  }
});
