/**
 * Runs `stack:down` and then checks that it left nothing behind: no port of the stack
 * answers and no recorded process is alive. Exits non-zero, naming what still runs.
 *
 * @module
 */

import { readdirSync } from "node:fs";
import {
  DENO_BIN,
  DYNAMODB_INTERNAL_PORT,
  DYNAMODB_PORT,
  FUNCTIONS_PORT,
  HOST,
  PID_DIR,
  POOLER_PORT,
  POSTGRES_PORT,
  ROOT,
} from "../local-stack/config.ts";
import { portOpen, run } from "../local-stack/processes.ts";
import { dataDir } from "../local-stack/supabase/postgres_cluster.ts";

const pidsBefore = readdirSync(PID_DIR).filter((f) => f.endsWith(".pid"));
console.log(await run(DENO_BIN, ["run", "-A", "local-stack/stack.ts", "down"]));

const left: string[] = [];
const ports = [
  POSTGRES_PORT,
  POOLER_PORT,
  FUNCTIONS_PORT,
  DYNAMODB_PORT,
  DYNAMODB_INTERNAL_PORT,
];
for (const port of ports) {
  if (await portOpen(HOST, port)) left.push(`port ${port} still answers`);
}
const remaining = readdirSync(PID_DIR).filter((f) => f.endsWith(".pid"));
for (const file of remaining) left.push(`pid file ${file} remains`);
// Only this checkout's processes: another checkout (a worktree with STACK_PORT_OFFSET)
// may run a stack of its own at the same time.
const escaped = ROOT.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const pattern =
  `${escaped}/(local-stack/|node_modules/(\\.dynamodb-local|amplify-dynamodb-simulator)/)|` +
  `postgres -D ${await dataDir()}`;
const pgrep = await new Deno.Command("pgrep", { args: ["-af", pattern], stdout: "piped" }).output();
const stray = new TextDecoder().decode(pgrep.stdout).trim();
if (stray) left.push(`processes remain:\n${stray}`);

if (left.length > 0) {
  console.error(`stack:down left things running:\n${left.join("\n")}`);
  Deno.exit(1);
}
console.log(
  `stack:down stopped ${pidsBefore.length} processes and postgres; nothing is left running`,
);
