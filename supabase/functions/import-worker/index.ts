/**
 * `import-worker`: runs the pending backfill jobs (interfaces.md, "import-worker").
 * `POST` with the service role key; answers 202 at once and works in the background
 * (`EdgeRuntime.waitUntil`) within the platform's limits, calling itself again while
 * work remains. See functions-shared/backfill_worker.ts.
 */

import { runWorker } from "../../../functions-shared/backfill_worker.ts";
import { dynamoClients } from "../../../functions-shared/dynamo_client.ts";
import { errorResponse, json, methodNotAllowed } from "../../../functions-shared/http.ts";
import { serviceRoleProblem } from "../../../functions-shared/service_auth.ts";
import { connectDb } from "../../../functions-shared/sync_db.ts";

declare const EdgeRuntime: { waitUntil(promise: Promise<unknown>): void };

const env = (name: string) => Deno.env.get(name);
const sql = connectDb(env("SUPABASE_DB_URL")!, 10);
const dynamo = dynamoClients(env);
const selfUrl = `${env("SUPABASE_URL")}/functions/v1/import-worker`;
const serviceRoleKey = env("SUPABASE_SERVICE_ROLE_KEY");

async function wake(): Promise<void> {
  const response = await fetch(selfUrl, {
    method: "POST",
    headers: { authorization: `Bearer ${serviceRoleKey}`, "content-type": "application/json" },
    body: "{}",
  }).catch((error) => {
    console.error(`could not wake another import-worker: ${error.message}`);
  });
  await response?.body?.cancel();
}

Deno.serve((req) => {
  if (req.method !== "POST") return methodNotAllowed("POST");
  const problem = serviceRoleProblem(req, serviceRoleKey);
  if (problem) return errorResponse(401, problem);
  const worker = `import-worker-${crypto.randomUUID()}`;
  EdgeRuntime.waitUntil(
    runWorker({
      sql,
      dynamo,
      wake,
      cpuBudgetMs: Number(env("IMPORT_WORKER_CPU_BUDGET_MS") ?? 1_200),
      wallBudgetMs: Number(env("IMPORT_WORKER_WALL_BUDGET_MS") ?? 120_000),
      maxConcurrent: Number(env("IMPORT_WORKER_MAX_CONCURRENT") ?? 8),
      log: (line) => console.log(`${worker}: ${line}`),
    }, worker).then((r) =>
      console.log(
        `${worker}: ${r.pages} pages, ${r.items} items, ${r.rows} rows, stopped by ${r.stoppedBy}`,
      )
    ),
  );
  return json(202, { accepted: true, worker });
});
