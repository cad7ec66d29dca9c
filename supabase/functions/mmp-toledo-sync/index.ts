/**
 * `mmp-toledo-sync`: the webhook that applies DynamoDB Streams records (sent by the
 * Lambda) and people's direct requests to Postgres. See functions-shared/webhook.ts;
 * `POST .../replay-dead-letters` (service role key) replays dead letters once their
 * cause is fixed, see functions-shared/dead_letters.ts.
 */

import { handleWebhook } from "../../../functions-shared/webhook.ts";
import { handleReplayRequest } from "../../../functions-shared/dead_letters.ts";
import { connectDb } from "../../../functions-shared/sync_db.ts";

const sql = connectDb(Deno.env.get("SUPABASE_DB_URL")!);

Deno.serve((req) => {
  if (new URL(req.url).pathname.endsWith("/replay-dead-letters")) {
    return handleReplayRequest(req, {
      sql,
      serviceRoleKey: Deno.env.get("SUPABASE_SERVICE_ROLE_KEY"),
    });
  }
  return handleWebhook(req, { sql, secret: Deno.env.get("SYNC_WEBHOOK_SECRET") });
});
