/**
 * `import-worker`: runs the pending backfill jobs (docs/interfaces.md, "import-worker").
 * `POST` with the service role key; answers 202 at once and works in the background
 * (`EdgeRuntime.waitUntil`) within the platform's limits, calling itself again while
 * work remains. See functions-shared/backfill_worker.ts. Its settings are read and
 * checked once, here (functions-shared/settings.ts); with a bad one every request is
 * answered 503, naming it (functions-shared/cold_start.ts).
 */

import { openFunction, servedOrRefused } from "../../../functions-shared/cold_start.ts";
import { PagesInFlight, runWorker } from "../../../functions-shared/backfill_worker.ts";
import { RunGate } from "../../../functions-shared/run_gate.ts";
import { countingArrivals, isolateCpuMeter } from "../../../functions-shared/cpu_meter.ts";
import { dynamoClients } from "../../../functions-shared/dynamo_client.ts";
import { importWorkerHandler } from "../../../functions-shared/import_worker_requests.ts";
import { ownInvoker } from "../../../functions-shared/self_invoke.ts";
import { LogWindow } from "../../../functions-shared/log_window.ts";
import { RequestTally } from "../../../functions-shared/request_tally.ts";
import {
  IMPORT_WORKER_SETTINGS,
  runWallBudgetMs,
} from "../../../functions-shared/function_settings.ts";
import { guardedHandler, registrySchemaGuard } from "../../../functions-shared/schema_guard.ts";

declare const EdgeRuntime: { waitUntil(promise: Promise<unknown>): void };

// A setting that is missing or malformed is answered 503, naming it (cold_start.ts).
Deno.serve(servedOrRefused("import-worker", () => {
  const { env, settings, serviceKeys, sql } = openFunction("import-worker", IMPORT_WORKER_SETTINGS);
  const dynamo = dynamoClients(env);
  // Created at cold start: the isolate's CPU, boot included (functions-shared/cpu_meter.ts).
  const cpu = isolateCpuMeter();
  console.log(`import-worker: isolate CPU read by the ${cpu.source} meter`);
  const callSelf = ownInvoker("import-worker", settings.supabaseUrl, serviceKeys, env);

  const gate = new RunGate(settings.runsPerIsolate);
  // The isolate's pages in flight, across its runs: the budget counts their CPU to come.
  const inFlight = new PagesInFlight();
  // What the isolate's runs did, a line every 10 s, and what is left of it when the runtime
  // retires the isolate (its `beforeunload`).
  const tally = new RequestTally("import-worker", (line) => console.log(line));
  // Its runs' lines, a few of each kind each 10 s (log_window.ts): DynamoDB down meets
  // every segment of every run at once.
  const lines = new LogWindow(
    (line) => console.error(line),
    "a segment's failures are counted in sync.backfill_segments, the last with its cause",
  );
  addEventListener("beforeunload", () => {
    tally.retire();
    lines.retire();
  });

  // Every request waits until the database is known to have every column this version
  // maps (schema_guard.ts): a missing one would drop data without a word. Its arrival
  // first tells the meter the isolate is under the soft limit (cpu_meter.ts).
  return countingArrivals(
    cpu,
    guardedHandler(
      registrySchemaGuard(sql),
      importWorkerHandler({
        serviceKeys,
        gate,
        run: (worker, handOn) =>
          runWorker({
            sql,
            dynamo,
            wake: () => callSelf({}),
            handOn,
            cpu,
            cpuBudgetMs: settings.cpuBudgetMs,
            wallBudgetMs: runWallBudgetMs(settings.wallBudgetMs, settings.wallClockS),
            maxConcurrent: settings.maxConcurrent,
            segmentsPerRun: settings.segmentsPerRun,
            inFlight,
            maxRcuPerSecond: settings.maxRcuPerSecond,
            log: (line) => lines.line(`${worker}: ${line}`, console.log),
          }, worker).finally(() => lines.whenRequestEnds()),
        callSelf: () => callSelf({}),
        waitUntil: (work) => EdgeRuntime.waitUntil(work),
        tally,
        logError: (line) => lines.line(line),
      }),
    ),
  );
}));
