/**
 * `npm run stack:up` / `npm run stack:down` / `deno run -A local-stack/stack.ts status`:
 * the local stand-in for a Supabase project plus DynamoDB, without Docker.
 *
 * `up` is idempotent: what already runs (with the same code) is reused, the platform SQL
 * is re-applied (it is written to be), and only new migrations are pushed. `down` stops
 * every process of the stack and leaves the data under `.local/`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DENO_BIN, FUNCTIONS_PORT, HOST, PG_BIN, PID_DIR, ROOT, STACK_ENV_FILE } from "./config.ts";
import { startDynamo, stopDynamo } from "./dynamodb.ts";
import { parseFaults } from "./aws/faults.ts";
import { PROXY_NAME, startProxy, stopProxy } from "./aws/proxy_process.ts";
import {
  applyPlatformSql,
  installExtensionFiles,
  isReady,
  psql,
  pushMigrations,
  startPostgres,
  stopPostgres,
} from "./postgres.ts";
import {
  logFile,
  portOpen,
  portTaken,
  runningPid,
  startDetached,
  stopDetached,
  waitFor,
} from "./processes.ts";
import { ensureStackEnv, type StackEnv } from "./stack_env.ts";
import { ensureSourceTables } from "./source_tables.ts";
import { POLLER_STATE_FILE } from "./stream_positions.ts";

/** The Deno processes of the stack and the code each depends on (restarted when it changes). */
const DENO_PARTS = [
  {
    name: "functions",
    script: "local-stack/functions_gateway.ts",
    code: ["local-stack", "supabase/functions", "supabase/config.toml", "functions-shared"],
  },
  { name: "pg_net", script: "local-stack/pg_net_worker.ts", code: ["local-stack"] },
  {
    name: "stream_poller",
    script: "local-stack/stream_poller.ts",
    code: ["local-stack", "lambda/stream_forwarder.ts", "functions-shared"],
  },
];

/** Progress goes to standard error, so that scripts calling `up()` keep standard output clean. */
function step(message: string, started: number): void {
  console.error(`stack: ${message} (${((performance.now() - started) / 1000).toFixed(1)}s)`);
}

/** A hash of the names, sizes and mtimes of the files under `paths`. */
function fingerprint(paths: string[]): string {
  const hash = createHash("sha256");
  const visit = (path: string) => {
    if (!existsSync(path)) return;
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path).sort()) visit(join(path, entry));
    } else {
      hash.update(`${path}:${stat.size}:${stat.mtimeMs}\n`);
    }
  };
  for (const path of paths) visit(join(ROOT, path));
  return hash.digest("hex");
}

function checkPrerequisites(): void {
  const missing = [
    [DENO_BIN, "npm dependencies (run `npm ci`)"],
    [join(PG_BIN, "postgres"), "PostgreSQL 15 (apt-get install postgresql-15)"],
  ].filter(([path]) => !existsSync(path)).map(([, what]) => what);
  if (missing.length > 0) throw new Error(`stack: missing ${missing.join(", ")}`);
}

/** Stores the project URL and service key in Vault, where pg_cron jobs read them. */
async function storeVaultSecrets(env: StackEnv): Promise<void> {
  const secrets = {
    project_url: env.SUPABASE_URL,
    service_role_key: env.SUPABASE_SERVICE_ROLE_KEY,
  };
  for (const [name, value] of Object.entries(secrets)) {
    await psql(`
      select case
        when exists (select from vault.secrets where name = '${name}')
        then (select vault.update_secret(id, '${value}') from vault.secrets where name = '${name}')::text
        else vault.create_secret('${value}', '${name}')::text
      end`);
  }
}

async function startDenoPart(part: (typeof DENO_PARTS)[number]): Promise<"started" | "reused"> {
  const print = fingerprint(part.code);
  const printFile = join(PID_DIR, `${part.name}.fingerprint`);
  const same = existsSync(printFile) && readFileSync(printFile, "utf8") === print;
  if (runningPid(part.name) !== undefined && same) return "reused";
  await stopDetached(part.name);
  if (part.name === "functions" && await portOpen(HOST, FUNCTIONS_PORT)) {
    throw portTaken(FUNCTIONS_PORT, "the functions gateway");
  }
  startDetached({
    name: part.name,
    command: DENO_BIN,
    args: ["run", "-A", "--no-prompt", join(ROOT, part.script)],
    cwd: ROOT,
  });
  writeFileSync(printFile, print);
  return "started";
}

async function functionsHealthy(): Promise<boolean> {
  const response = await fetch(`http://${HOST}:${FUNCTIONS_PORT}/_stack/health`);
  await response.body?.cancel();
  return response.ok;
}

/** `stack:up`: starts (or reuses) every part of the stack; prints a line per step. */
export async function up(): Promise<void> {
  const started = performance.now();
  checkPrerequisites();
  const env = await ensureStackEnv();
  parseFaults(env.DYNAMODB_FAULTS); // a bad value stops `up` here, naming the setting
  installExtensionFiles();
  step(`postgres ${await startPostgres()} on ${env.DATABASE_URL}`, started);
  step(`platform SQL applied: ${(await applyPlatformSql()).join(", ")}`, started);
  const pushed = (await pushMigrations()).split("\n")
    .filter((line) => line.trim() && !line.startsWith("Target:")).join("; ");
  step(`migrations pushed with the Supabase CLI: ${pushed}`, started);
  await storeVaultSecrets(env);
  // DynamoDB Local rounds ApproximateCreationDateTime down to the minute (AWS: the second).
  await psql(
    "update sync.settings set value = '60 seconds' where key = 'stream_clock_granularity'",
  );
  const dynamo = await startDynamo();
  // A new DynamoDB Local has new streams: the poller's old checkpoints mean nothing.
  if (dynamo === "started") rmSync(POLLER_STATE_FILE, { force: true });
  step(`dynamodb local ${dynamo}`, started);
  const proxy = await startProxy(env.DYNAMODB_FAULTS, dynamo === "started");
  step(`dynamodb proxy ${proxy} on ${env.DYNAMODB_ENDPOINT}`, started);
  const created = await ensureSourceTables(env);
  step(
    `source tables: ${created.length > 0 ? `created ${created.join(", ")}` : "all nine exist"}`,
    started,
  );
  for (const part of DENO_PARTS) step(`${part.name} ${await startDenoPart(part)}`, started);
  await waitFor("the functions gateway", functionsHealthy, 60_000, logFile("functions"));
  step(`functions served at ${env.FUNCTIONS_URL}/NAME`, started);
  console.error(`stack: up; settings in ${STACK_ENV_FILE}`);
}

async function down(): Promise<void> {
  for (const part of [...DENO_PARTS].reverse()) {
    console.log(
      `stack: ${part.name} ${(await stopDetached(part.name)) ? "stopped" : "was not running"}`,
    );
  }
  console.log(`stack: ${PROXY_NAME} ${(await stopProxy()) ? "stopped" : "was not running"}`);
  console.log(`stack: dynamodb ${(await stopDynamo()) ? "stopped" : "was not running"}`);
  console.log(`stack: postgres ${(await stopPostgres()) ? "stopped" : "was not running"}`);
}

async function status(): Promise<void> {
  console.log(`postgres: ${(await isReady()) ? "running" : "stopped"}`);
  for (const name of ["dynamodb", PROXY_NAME, ...DENO_PARTS.map((p) => p.name)]) {
    const pid = runningPid(name);
    console.log(`${name}: ${pid ? `running (pid ${pid})` : "stopped"}`);
  }
}

if (import.meta.main) {
  const command = Deno.args[0];
  const commands: Record<string, () => Promise<void>> = { up, down, status };
  if (!commands[command]) {
    console.error("usage: deno run -A local-stack/stack.ts up|down|status");
    Deno.exit(2);
  }
  try {
    await commands[command]();
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(1);
  }
}
