/**
 * The checks of `npm test` that read the stack's database (scripts/run_tests.ts): pgTAP,
 * and beside it the schema's checks by the Supabase CLI (both advisors, `db lint`) and
 * the generated types.
 *
 * @module
 */

import { join } from "node:path";
import { DENO_BIN, ROOT } from "../local-stack/config.ts";
import { BACKGROUND as BACKGROUND_STEP } from "./captured_runs.ts";
import { step, testFiles } from "./step_runner.ts";
import { pgProveCounts } from "./test_counts.ts";

const SUPABASE = join(ROOT, "node_modules", ".bin", "supabase");

/**
 * pgTAP: the end-to-end files that use the stack wait for it, as its tests empty tables
 * within their transactions and count what is left (each file rolls back at its end).
 * One file at a time: two at a time (`pg_prove --jobs 2`) took 4.9 s instead of 7.0 s on
 * a quiet machine, but files that empty the same tables and write the same keys in
 * another order deadlock beside one another (050 with 065 or 067, over its `alter table`
 * after its merge lock; 040 with 020 once the tables hold rows), and the helpers' file
 * must commit before any other starts.
 */
export async function pgTap(databaseUrl: string): Promise<void> {
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
export async function schemaChecks(databaseUrl: string): Promise<void> {
  // A connection that cannot be made fails in 30 s, not the kernel's two minutes of SYN
  // retries, and is tried again (below).
  const url = new URL(databaseUrl);
  url.searchParams.set("connect_timeout", "30");
  const remote = `--remote=${url}`;
  // Off the critical path: they end long before the end-to-end files (StepOptions). Under
  // `nice` on a loaded machine the CLI's connection may time out before Postgres answers
  // ("failed to connect to ...: Connection timed out"; twice in a row, 130 s each, on a
  // machine twice as slow as usual): run again then, up to four runs in all.
  const schemaStep = (name: string, command: string, args: string[]) =>
    step(name, command, args, undefined, {
      ...BACKGROUND_STEP,
      retryOn: /failed to connect to/,
      attempts: 4,
    });
  const advisors = ["db", "advisors", remote, "--level", "info", "--type"];
  await Promise.all([
    schemaStep("advisors (security)", SUPABASE, [...advisors, "security", "--fail-on", "info"]),
    schemaStep("advisors (performance, warnings)", SUPABASE, [
      ...advisors,
      "performance",
      "--fail-on",
      "warn",
    ]),
    schemaStep("db lint (plpgsql_check)", SUPABASE, [
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
    schemaStep("generated types match the migrations", DENO_BIN, [
      "run",
      "-A",
      "scripts/gen_types.ts",
      "--check",
    ]),
  ]);
}
