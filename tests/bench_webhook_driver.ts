/**
 * The webhook's handler in one process, for a CPU profile of its own work (no gateway):
 * signed batches of firespring_actions records through `handleWebhook` against the
 * stack's pooler (or, with U=direct, straight to Postgres).
 *
 *   deno run -A --cpu-prof tests/bench_webhook_driver.ts [batch size] [requests]
 *
 * @module
 */

import { handleWebhook } from "../functions-shared/webhook.ts";
import { RecentWebhookIds } from "../functions-shared/webhook_replays.ts";
import { createWebhookVerifier, signWebhook } from "../functions-shared/webhook_signing.ts";
import { connectDb } from "../functions-shared/sync_db.ts";
import { stack } from "./stack_clients.ts";
import { actionRecords } from "./bench_webhook.ts";

const sql = connectDb(Deno.env.get("U") === "direct" ? stack.DATABASE_URL : stack.POOLER_URL, 3);
const verifier = createWebhookVerifier(stack.SYNC_WEBHOOK_SECRET);
const recentIds = new RecentWebhookIds();
const run = crypto.randomUUID().slice(0, 8);
const size = Number(Deno.args[0] ?? 10);
const n = Number(Deno.args[1] ?? 500);
const reqs = Array.from({ length: n }, (_, b) => {
  const body = JSON.stringify({ records: actionRecords(`prof-${run}`, b, size, 10n ** 18n) });
  return { body, headers: signWebhook(stack.SYNC_WEBHOOK_SECRET, body) };
});
const t = performance.now();
for (const { body, headers } of reqs) {
  const r = await handleWebhook(
    new Request("http://x/", {
      method: "POST",
      body,
      headers: { ...headers, "content-type": "application/json" },
    }),
    { sql, verifier, recentIds },
  );
  if (r.status !== 200) throw new Error(await r.text());
}
console.log(`in-process: ${((performance.now() - t) / n).toFixed(2)} ms/request of ${size}`);
await sql`delete from public.firespring_actions where action_id like ${"bench-prof-" + run + "%"}`;
await sql.end();
