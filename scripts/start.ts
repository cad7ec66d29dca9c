/**
 * `npm start`: the main job on the embedded stack (interfaces.md, "npm start").
 *
 * For now it starts the local stack; loading the demo data, the backfill, the live
 * changes, the validation and the migration report come with the issues that build
 * them. Until then it says so and exits non-zero, since no table can be proven to match.
 *
 * @module
 */

import { DENO_BIN, ROOT } from "../local-stack/config.ts";

const up = await new Deno.Command(DENO_BIN, {
  args: ["run", "-A", "local-stack/stack.ts", "up"],
  cwd: ROOT,
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (up.code !== 0) Deno.exit(up.code);
console.error(
  "npm start: the local stack is up, but the migration run (demo data, backfill, live " +
    "changes, validation, report) is not built yet.",
);
Deno.exit(1);
