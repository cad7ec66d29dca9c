/**
 * The database going away, on both live paths at once (one outage, so that the run
 * waits once for Postgres to come back and for the pooler to take it back): the webhook
 * answers 503 and loses nothing, and a burst written to DynamoDB meanwhile arrives once
 * Postgres is back. It stops the stack's Postgres, so it runs alone
 * (scripts/e2e_plan.ts).
 *
 * The webhook reaches Postgres through the stack's transaction pooler (PgBouncer), as a
 * hosted project's functions do through port 6543: with the server down, the pooler holds
 * the request (at most until its query_wait_timeout, 5 s as Supavisor's checkout) and then
 * fails it; right after the server is back, it refuses for server_login_retry (15 s). Both
 * answer 503, and the Lambda retries until the batch is applied, as this test does.
 */

import assert from "node:assert/strict";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { startPostgres, stopPostgres } from "../local-stack/supabase/postgres.ts";
import { connectDb, dynamo, eventually, postWebhook } from "./stack_clients.ts";
import { countSegments, segment } from "./webhook_fixtures.ts";

/** Puts an action into DynamoDB Local (its stream carries it to the webhook). */
function putAction(id: string, type: string) {
  const spec = byTargetTable("firespring_actions")!;
  return dynamo(spec.region).send(
    new PutItemCommand({
      TableName: spec.sourceTable,
      Item: { action_id: { S: id }, action_type: { S: type } },
    }),
  );
}

Deno.test("with the database down the webhook answers 503 and a stream burst waits; once it is back both arrive", async (t) => {
  const id = `down-${crypto.randomUUID()}`;
  const body = JSON.stringify({ records: [segment(id, "kept", "400")] });
  const burst = `e2e-${crypto.randomUUID().slice(0, 8)}-burst-`;
  await stopPostgres();
  try {
    await t.step("the webhook answers 503 and applies nothing", async () => {
      const response = await postWebhook(body);
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "5");
      // Through the pooler the function cannot tell a batch lost before Postgres from one
      // whose answer was lost: the retry below, applied and not skipped, shows it was not.
      assert.match(
        (await response.json()).error,
        /database is unavailable; (nothing was applied|the connection was lost during the batch)/,
      );
    });
    for (let i = 0; i < 30; i++) await putAction(`${burst}${i}`, `n${i}`);
    // Let the poller try (and fail) against the stopped database.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
  } finally {
    await startPostgres();
  }

  await t.step("the webhook's retry applies the batch once Postgres is back", async () => {
    const retried = await eventually(
      "the webhook to apply the batch once Postgres is back",
      async () => {
        const response = await postWebhook(body);
        const answer = await response.json();
        if (response.status === 503) return undefined;
        return answer;
      },
      60_000,
    );
    assert.deepEqual(retried, { received: 1, applied: 1, skipped: 0, deadLettered: 0 });
    assert.equal(await countSegments(id), 1);
  });

  await t.step("the burst written while the database was down arrives", async () => {
    const sql = connectDb();
    try {
      const count = await eventually("the burst to arrive", async () => {
        const [row] = await sql`select count(*)::int as n from firespring_actions
                                where action_id like ${burst + "%"}`;
        return row.n === 30 ? row.n : undefined;
      }, 90_000);
      assert.equal(count, 30);
      const [row] = await sql`select action_type from firespring_actions where action_id = ${
        burst + "29"
      }`;
      assert.equal(row.action_type, "n29");
    } finally {
      await sql.end();
    }
  });
});
