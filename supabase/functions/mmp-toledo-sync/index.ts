/**
 * `mmp-toledo-sync`: the webhook that applies DynamoDB Streams records (sent by the
 * Lambda) and people's direct requests to Postgres. See functions-shared/webhook.ts;
 * `POST .../replay-dead-letters` (service role key) replays dead letters once their
 * cause is fixed, see functions-shared/dead_letters.ts.
 *
 * SYNC_WEBHOOK_SECRET is checked once, here, at cold start. When it is malformed, one
 * line in the function's log says which secret of the setting and why (never its value),
 * and every webhook request is answered 503 with the same cause; nothing is verified
 * and nothing applied until the setting is fixed. The replay endpoint does not use the
 * webhook secret and keeps working.
 */

import { openFunction, servedOrRefused } from "../../../functions-shared/cold_start.ts";
import { handleWebhook } from "../../../functions-shared/webhook.ts";
import { RecentWebhookIds } from "../../../functions-shared/webhook_replays.ts";
import { LogWindow } from "../../../functions-shared/log_window.ts";
import { createWebhookVerifier } from "../../../functions-shared/webhook_signing.ts";
import { handleReplayRequest } from "../../../functions-shared/dead_letters.ts";
import { PLATFORM_SETTINGS } from "../../../functions-shared/settings.ts";
import { guardedHandler, registrySchemaGuard } from "../../../functions-shared/schema_guard.ts";

// A setting that is missing or malformed is answered 503, naming it (cold_start.ts).
Deno.serve(servedOrRefused("mmp-toledo-sync", () => {
  const { env, serviceKeys, sql } = openFunction("mmp-toledo-sync", PLATFORM_SETTINGS);
  const verifier = createWebhookVerifier(env("SYNC_WEBHOOK_SECRET"));
  if (!verifier.ok) {
    console.error(
      `mmp-toledo-sync refuses every webhook request: ${verifier.problem}`,
    );
  }
  const recentIds = new RecentWebhookIds();
  // Its batches' failures and dead letters, a few lines each 10 s (log_window.ts): a
  // database down refuses every shard's batch, and the Lambda retries each every few
  // seconds.
  const lines = new LogWindow(
    (line) => console.error(line),
    "the Lambda's log has each refused batch and its answer; sync.dead_letters each letter",
  );
  addEventListener("beforeunload", () => lines.retire());

  // Every request waits until the database is known to have every column this version
  // maps (schema_guard.ts): a missing one would drop data without a word.
  return guardedHandler(registrySchemaGuard(sql), (req) => {
    if (new URL(req.url).pathname.endsWith("/replay-dead-letters")) {
      return handleReplayRequest(req, {
        sql,
        serviceRoleKey: serviceKeys,
      });
    }
    return handleWebhook(req, { sql, verifier, recentIds, log: (line) => lines.line(line) })
      .finally(() => lines.whenRequestEnds());
  });
}));
