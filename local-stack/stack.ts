/**
 * `npm run stack:up` / `npm run stack:down` / `deno run -A local-stack/stack.ts status`:
 * the local stand-in for a Supabase project plus DynamoDB, without Docker.
 *
 * `up` is idempotent: what already runs with the same code and the same settings (the
 * values of `.local/stack.env`, and the environment variables a part reads) is reused,
 * what runs with other code or settings is restarted, the platform SQL is re-applied (it
 * is written to be), and only new migrations are pushed. `down` stops every process of
 * the stack and leaves the data under `.local/`.
 *
 * @module
 */

import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DENO_BIN, FUNCTIONS_PORT, HOST, PG_BIN, STACK_ENV_FILE } from "./config.ts";
import { startDynamo, stopDynamo } from "./aws/dynamodb.ts";
import { pgbouncerMissing, startPooler, stopPooler } from "./supabase/pooler.ts";
import { describeFaults, parseFaults } from "./aws/faults.ts";
import { parseS3Faults } from "./aws/s3_faults.ts";
import { isReady, startPostgres, stopPostgres } from "./supabase/postgres.ts";
import {
  appliedMigrationVersions,
  applyPlatformSql,
  installExtensionFiles,
  migrationFileVersions,
  migrationsToPush,
  psql,
  pushMigrations,
  unknownMigrationsProblem,
} from "./supabase/postgres_migrations.ts";
import { dataDir } from "./supabase/postgres_cluster.ts";
import { logFile, runningPid, stopDetached, waitFor, withoutPasswords } from "./processes.ts";
import { ensureStackEnv, type StackEnv } from "./stack_env.ts";
import { DENO_PARTS, type DenoPart, PROXY_PART, startDenoPart } from "./deno_parts.ts";
import { parseWebhookSecrets } from "../functions-shared/webhook_secrets.ts";
import { ensureSourceTables } from "./aws/source_tables.ts";
import { POLLER_STATE_FILE } from "./aws/stream_positions.ts";
import { STREAM_SHARDS_FILE } from "./aws/stream_shards.ts";

/**
 * Progress goes to standard error, so that scripts calling `up()` keep standard output
 * clean; a URL in it shows no password (the local stack's default one neither: `npm start`
 * and CI print these lines).
 */
function step(message: string, started: number): void {
  console.error(
    `stack: ${withoutPasswords(message)} (${((performance.now() - started) / 1000).toFixed(1)}s)`,
  );
}

function checkPrerequisites(): void {
  const missing = [
    [DENO_BIN, "npm dependencies (run `npm ci`)"],
    [join(PG_BIN, "postgres"), "PostgreSQL 15 (apt-get install postgresql-15)"],
  ].filter(([path]) => !existsSync(path)).map(([, what]) => what);
  const pooler = pgbouncerMissing();
  if (pooler) missing.push(pooler);
  if (missing.length > 0) throw new Error(`stack: missing ${missing.join(", ")}`);
}

/** Stores the project URL and service key in Vault, where pg_cron jobs read them. */
async function storeVaultSecrets(env: StackEnv): Promise<void> {
  const secrets = {
    project_url: env.SUPABASE_URL,
    service_role_key: env.SUPABASE_SERVICE_ROLE_KEY,
  };
  for (const [name, value] of Object.entries(secrets)) {
    await psql(
      `
      select case
        when exists (select from vault.secrets where name = '${name}')
        then (select vault.update_secret(id, '${value}') from vault.secrets where name = '${name}')::text
        else vault.create_secret('${value}', '${name}')::text
      end;`,
      undefined,
      undefined,
      [value],
    );
  }
}

/** Warns (does not stop `up`) when the stack's webhook secret is malformed. */
function warnOfMalformedSecret(env: StackEnv, started: number): void {
  const parsed = parseWebhookSecrets(env.SYNC_WEBHOOK_SECRET);
  if (parsed.ok) return;
  step(
    `warning: SYNC_WEBHOOK_SECRET in ${STACK_ENV_FILE} is malformed (${parsed.problem}): ` +
      "the webhook will answer 500 to every request and the stream poller cannot sign",
    started,
  );
}

async function functionsHealthy(): Promise<boolean> {
  const response = await fetch(`http://${HOST}:${FUNCTIONS_PORT}/_stack/health`);
  await response.body?.cancel();
  return response.ok;
}

/** How `up` treats DynamoDB Local. */
export interface UpOptions {
  /**
   * DynamoDB Local started afresh (empty, in memory) even when one runs, its source tables
   * made without streams, the stream poller stopped, its checkpoints forgotten and left
   * stopped: what `npm start` loads the data set into (demo/load_report_data_set.ts), a
   * table's stream going on after its load. Saves `npm start` the second Java start of
   * a reset after `up`.
   */
  freshSources?: boolean;
}

/**
 * The Postgres side of `up`: the server, the platform SQL, the migrations (pushed with the
 * Supabase CLI only when the database's history lacks one: checked, not assumed), the
 * Vault secrets and the pooler.
 */
async function upPostgres(env: StackEnv, started: number): Promise<void> {
  step(`postgres ${await startPostgres()} on ${env.DATABASE_URL}`, started);
  step(`platform SQL applied: ${(await applyPlatformSql()).join(", ")}`, started);
  const { missing, unknown } = migrationsToPush(
    migrationFileVersions(),
    await appliedMigrationVersions(),
  );
  if (unknown.length > 0) throw new Error(unknownMigrationsProblem(unknown, await dataDir()));
  if (missing.length === 0) {
    // `db push` would apply nothing (it applies the files whose version the history
    // lacks) and costs a CLI start and its own look at the history: 4-11 s here.
    step("migrations: the database has every one of supabase/migrations", started);
  } else {
    const pushed = (await pushMigrations()).split("\n")
      .filter((line) => line.trim() && !line.startsWith("Target:")).join("; ");
    step(`migrations pushed with the Supabase CLI: ${pushed}`, started);
  }
  await storeVaultSecrets(env);
  step(`pooler (PgBouncer, transaction mode) ${await startPooler()} on ${env.POOLER_URL}`, started);
  // DynamoDB Local rounds ApproximateCreationDateTime down to the minute; the proxy gives
  // each stream record the second its write passed it, as AWS does (local-stack/aws/
  // stream_times.ts), so the guard runs with AWS's granularity (docs/sync-semantics.md).
  await psql(
    "update sync.settings set value = '1 second' where key = 'stream_clock_granularity'",
  );
}

/** The DynamoDB side of `up`: DynamoDB Local, its proxy and the nine source tables. */
async function upDynamo(
  env: StackEnv,
  faults: string,
  fresh: boolean,
  started: number,
): Promise<void> {
  if (fresh) {
    // The poller reads the streams of the DynamoDB Local about to go: stopped first, and
    // its checkpoints (of streams that go with it) forgotten.
    await stopDetached("stream_poller");
    await stopDynamo();
  }
  // A new DynamoDB Local: the proxy's memory of item versions is stale too. The proxy
  // reaches DynamoDB Local per request (local-stack/aws/main.ts), so when DynamoDB Local
  // is new for certain its restart goes beside the JVM's start.
  const proxyStep = (restart: boolean) =>
    startDenoPart(PROXY_PART, env, restart).then((proxy) =>
      step(`dynamodb proxy ${proxy} on ${env.DYNAMODB_ENDPOINT} (faults: ${faults})`, started)
    );
  // A fresh DynamoDB Local has new streams: the old ones' shards are not loaded.
  if (fresh) rmSync(STREAM_SHARDS_FILE, { force: true });
  const proxyBeside = fresh ? proxyStep(true) : undefined;
  proxyBeside?.catch(() => {}); // awaited below, after DynamoDB Local's start
  const dynamo = await startDynamo();
  // A new DynamoDB Local has new streams: the poller's old checkpoints, and the shards
  // the old streams were split into, mean nothing.
  if (dynamo === "started") {
    rmSync(POLLER_STATE_FILE, { force: true });
    rmSync(STREAM_SHARDS_FILE, { force: true });
  }
  step(`dynamodb local ${dynamo}`, started);
  await (proxyBeside ?? proxyStep(dynamo === "started"));
  const created = await ensureSourceTables(env, !fresh);
  step(
    `source tables: ${
      created.length > 0
        ? `created ${created.join(", ")}${fresh ? " (streams off until loaded)" : ""}`
        : "all nine exist"
    }`,
    started,
  );
}

/**
 * `stack:up`: starts (or reuses) every part of the stack; prints a line per step. The
 * Postgres side and the DynamoDB side do not depend on each other and start together
 * (DynamoDB Local's JVM starts in 5-25 s on the 2-core machine, beside Postgres and the
 * migrations); the Deno parts (functions gateway, pg_net worker, stream poller) need
 * both and start after them.
 */
export async function up(options: UpOptions = {}): Promise<void> {
  const started = performance.now();
  checkPrerequisites();
  const env = await ensureStackEnv();
  // A bad value stops `up` here, naming the setting.
  const faults = describeFaults(parseFaults(env.DYNAMODB_FAULTS));
  parseS3Faults(env.S3_FAULTS);
  installExtensionFiles();
  const fresh = options.freshSources === true;
  // Both sides run to the end before a failure is told: neither is left half started.
  const sides = await Promise.allSettled([
    upPostgres(env, started),
    upDynamo(env, faults, fresh, started),
  ]);
  for (const side of sides) if (side.status === "rejected") throw side.reason;
  warnOfMalformedSecret(env, started);
  // The gateway and the pg_net worker start together; the poller after the gateway
  // listens (it posts its batches there: a refused post would count as a failed attempt).
  const startPart = async (part: DenoPart) =>
    step(`${part.name} ${await startDenoPart(part, env)}`, started);
  const poller = DENO_PARTS.filter((part) => part.name === "stream_poller");
  await Promise.all(DENO_PARTS.filter((part) => !poller.includes(part)).map(startPart));
  for (const part of poller) {
    if (fresh) step(`${part.name} left stopped: the source tables are about to be loaded`, started);
    else await startPart(part);
  }
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
  console.log(
    `stack: ${PROXY_PART.name} ${
      (await stopDetached(PROXY_PART.name)) ? "stopped" : "was not running"
    }`,
  );
  console.log(`stack: dynamodb ${(await stopDynamo()) ? "stopped" : "was not running"}`);
  console.log(`stack: pooler ${(await stopPooler()) ? "stopped" : "was not running"}`);
  console.log(`stack: postgres ${(await stopPostgres()) ? "stopped" : "was not running"}`);
}

async function status(): Promise<void> {
  console.log(`postgres: ${(await isReady()) ? "running" : "stopped"}`);
  for (const name of ["pooler", "dynamodb", PROXY_PART.name, ...DENO_PARTS.map((p) => p.name)]) {
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
