/**
 * `data-checksum-validator`: compares a DynamoDB table with its Postgres target, key by
 * key, and with `repair` re-applies the source state of the keys that differ
 * (docs/interfaces.md, "data-checksum-validator"). See functions-shared/checksum_validator.ts.
 * Its settings are read and checked once, here (functions-shared/settings.ts).
 */

import { openFunction, servedOrRefused } from "../../../functions-shared/cold_start.ts";
import { countingArrivals, isolateCpuMeter } from "../../../functions-shared/cpu_meter.ts";
import { dynamoClients } from "../../../functions-shared/dynamo_client.ts";
import { ownInvoker } from "../../../functions-shared/self_invoke.ts";
import { IsolatePages } from "../../../functions-shared/isolate_pages.ts";
import { RunGate } from "../../../functions-shared/run_gate.ts";
import {
  runWallBudgetMs,
  VALIDATOR_SETTINGS,
} from "../../../functions-shared/function_settings.ts";
import { handleValidatorRequest } from "../../../functions-shared/validator_endpoint.ts";
import { guardedHandler, registrySchemaGuard } from "../../../functions-shared/schema_guard.ts";

declare const EdgeRuntime: { waitUntil(promise: Promise<unknown>): void };

// A setting that is missing or malformed is answered 503, naming it (cold_start.ts).
Deno.serve(servedOrRefused("data-checksum-validator", () => {
  // Created at cold start: the isolate's CPU, boot included (functions-shared/cpu_meter.ts).
  const cpu = isolateCpuMeter();
  const { env, settings, serviceKeys, sql } = openFunction(
    "data-checksum-validator",
    VALIDATOR_SETTINGS,
  );
  const dynamo = dynamoClients(env);
  const callSelf = ownInvoker("data-checksum-validator", settings.supabaseUrl, serviceKeys, env);

  // The requests this isolate works on at once; their CPU adds up (run_gate.ts), and so do
  // their pages in flight (isolate_pages.ts).
  const gate = new RunGate(settings.runsPerIsolate);
  const isolatePages = new IsolatePages();

  // Every request waits until the database is known to have every column this version
  // maps (schema_guard.ts): a missing one would drop data without a word. Its arrival
  // first tells the meter the isolate is under the soft limit (cpu_meter.ts).
  return countingArrivals(
    cpu,
    guardedHandler(registrySchemaGuard(sql), (req) =>
      handleValidatorRequest(req, {
        sql,
        dynamo,
        serviceRoleKey: serviceKeys,
        waitUntil: (work) => EdgeRuntime.waitUntil(work),
        callSelf,
        budget: {
          cpuMs: settings.cpuBudgetMs,
          wallMs: runWallBudgetMs(settings.wallBudgetMs, settings.wallClockS),
        },
        cpu,
        settleMs: settings.settleMs,
        maxRcuPerSecond: settings.maxRcuPerSecond,
        gate,
        isolatePages,
        log: (line) => console.log(line),
      })),
  );
}));
