/**
 * `write-back`: writes admins' edits of mirror rows back to their DynamoDB items
 * (docs/interfaces.md, "write-back"). pg_net calls it after an edit commits and pg_cron
 * sweeps every 10 s for retries; a run stopped by its wall or CPU budget hands on to a
 * new request; see functions-shared/write_back_requests.ts and write_back_run.ts. Service-role authenticated
 * (`verify_jwt = false` in supabase/config.toml, like the others).
 *
 * Reads items with the reader's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
 * and writes them with the writer's own (WRITE_BACK_AWS_ACCESS_KEY_ID,
 * WRITE_BACK_AWS_SECRET_ACCESS_KEY: an identity allowed only UpdateItem of the mapped
 * attributes, infrastructure/terraform). Without the writer's key each write-back is
 * retried and then recorded as failed, saying so.
 */

import { openFunction, servedOrRefused } from "../../../functions-shared/cold_start.ts";
import { isolateCpuMeter } from "../../../functions-shared/cpu_meter.ts";
import { dynamoClients, writerClients } from "../../../functions-shared/dynamo_client.ts";
import { ownInvoker } from "../../../functions-shared/self_invoke.ts";
import {
  runWallBudgetMs,
  WRITE_BACK_SETTINGS,
} from "../../../functions-shared/function_settings.ts";
import { RunGate } from "../../../functions-shared/run_gate.ts";
import {
  handleWriteBackRequest,
  RUNS_PER_ISOLATE,
} from "../../../functions-shared/write_back_requests.ts";
import { guardedHandler, registrySchemaGuard } from "../../../functions-shared/schema_guard.ts";

declare const EdgeRuntime: { waitUntil(promise: Promise<unknown>): void };

// A setting that is missing or malformed is answered 503, naming it (cold_start.ts).
Deno.serve(servedOrRefused("write-back", () => {
  const { env, settings, serviceKeys, sql } = openFunction("write-back", WRITE_BACK_SETTINGS);
  const reader = dynamoClients(env);
  const writer = writerClients(env);
  const worker = `write-back-${crypto.randomUUID()}`;
  // Created at cold start: the isolate's CPU, boot included (functions-shared/cpu_meter.ts).
  const cpu = isolateCpuMeter();
  const callSelf = ownInvoker("write-back", settings.supabaseUrl, serviceKeys, env);
  const gate = new RunGate(RUNS_PER_ISOLATE);

  // Every request waits until the database is known to have every column this version
  // maps (schema_guard.ts): a missing one would drop data without a word.
  return guardedHandler(registrySchemaGuard(sql), (req) =>
    handleWriteBackRequest(req, {
      sql,
      serviceKeys,
      reader,
      writer,
      worker,
      wallBudgetMs: runWallBudgetMs(settings.wallBudgetMs, settings.wallClockS),
      cpu,
      runCpuMs: settings.runCpuMs,
      gate,
      waitUntil: (work) => EdgeRuntime.waitUntil(work),
      callSelf,
      log: (line) => console.log(line),
    }));
}));
