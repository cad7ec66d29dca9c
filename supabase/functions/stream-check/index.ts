/**
 * `stream-check`: the lost-record check (docs/interfaces.md, "stream-check";
 * docs/sync-semantics.md, "Lost stream records"). pg_cron calls it hourly; it reads each
 * table's DynamoDB stream, compares it with what the webhook applied and marks a table
 * stale when records were or may be lost; a run that its budget stopped hands what it
 * left on to a new request. See functions-shared/stream_check_requests.ts and
 * stream_check_run.ts. Its settings are read and checked once, here
 * (functions-shared/settings.ts).
 */

import { openFunction, servedOrRefused } from "../../../functions-shared/cold_start.ts";
import { countingArrivals, isolateCpuMeter } from "../../../functions-shared/cpu_meter.ts";
import { dynamoClients } from "../../../functions-shared/dynamo_client.ts";
import { RunGate } from "../../../functions-shared/run_gate.ts";
import { ownInvoker } from "../../../functions-shared/self_invoke.ts";
import {
  runWallBudgetMs,
  STREAM_CHECK_SETTINGS,
} from "../../../functions-shared/function_settings.ts";
import { awsStreamReader, latestStreamArn } from "../../../functions-shared/stream_check_aws.ts";
import {
  handleStreamCheckRequest,
  RUNS_PER_ISOLATE,
} from "../../../functions-shared/stream_check_requests.ts";

declare const EdgeRuntime: { waitUntil(promise: Promise<unknown>): void };

// A setting that is missing or malformed is answered 503, naming it (cold_start.ts).
Deno.serve(servedOrRefused("stream-check", () => {
  // Created at cold start: the isolate's CPU, boot included (functions-shared/cpu_meter.ts).
  const cpu = isolateCpuMeter();
  const { env, settings, serviceKeys, sql } = openFunction("stream-check", STREAM_CHECK_SETTINGS);
  // One client per region, for DynamoDB and its Streams alike.
  const dynamo = dynamoClients(env);
  const callSelf = ownInvoker("stream-check", settings.supabaseUrl, serviceKeys, env);
  const gate = new RunGate(RUNS_PER_ISOLATE);

  // Each arrival first tells the meter the isolate is under the soft limit (cpu_meter.ts).
  return countingArrivals(cpu, (req) =>
    handleStreamCheckRequest(req, {
      sql,
      serviceKeys,
      streamArnOf: (spec) => latestStreamArn(dynamo(spec.region), spec.sourceTable),
      readerOf: (spec, arn) => awsStreamReader(dynamo(spec.region), arn),
      cpu,
      budget: {
        runCpuMs: settings.runCpuMs,
        wallMs: runWallBudgetMs(settings.wallBudgetMs, settings.wallClockS),
      },
      gate,
      waitUntil: (work) => EdgeRuntime.waitUntil(work),
      callSelf,
      log: (line) => console.log(line),
    }));
}));
