/**
 * `stack:up` is idempotent: a second one reuses every running part and pushes no
 * migration. A file of its own, so that it runs while tests/stack_test.ts and
 * tests/cron_test.ts wait for pg_cron's minute (scripts/e2e_plan.ts).
 */

import assert from "node:assert/strict";
import { DENO_BIN, ROOT } from "../local-stack/config.ts";
import { run } from "../local-stack/processes.ts";

Deno.test("a second stack:up reuses every running part", async () => {
  const output = await run(DENO_BIN, ["run", "-A", "local-stack/stack.ts", "up"], { cwd: ROOT });
  // Each line ends with the seconds since the start: where a slow one spent them.
  console.log(output);
  for (const part of ["postgres", "dynamodb local", "functions", "pg_net", "stream_poller"]) {
    assert.match(output, new RegExp(`stack: ${part} reused`), `${part} is reused`);
  }
  // The history lists every migration: the Supabase CLI is not even started.
  assert.match(output, /migrations: the database has every one of supabase\/migrations/);
  assert.doesNotMatch(output, /migrations pushed/);
});
