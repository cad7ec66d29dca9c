/**
 * A collapsed row falls back to an older item whose observation was purged
 * (docs/sync-semantics.md, "Collapsed tables"; 20261128002900_collapsed_rereads.sql):
 * a visitor with two items in DynamoDB, the older one's observation purged here as
 * superseded, then the newer item deleted. The stream's delete removes the row (nothing
 * live is kept here) and queues the key; the validator's re-read brings the older item
 * back, and the row is the projection again.
 */

import assert from "node:assert/strict";
import { DeleteItemCommand } from "@aws-sdk/client-dynamodb";
import { batchWrite } from "../demo/load_dynamo.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import {
  callFunction,
  connectDb,
  dynamo,
  eventually,
  serviceRoleHeaders,
} from "./stack_clients.ts";
import { N, S } from "./validator_fixtures.ts";

const OLDER = 1770379200;
const NEWER = 1770379300;

Deno.test("a removed visitor item falls back to an older one whose observation was purged", async () => {
  const spec = byTargetTable("firespring_visitors")!;
  const id = `rr-${crypto.randomUUID().slice(0, 8)}`;
  const rowKey = JSON.stringify({ visitor_id: id });
  const sql = connectDb();
  try {
    await batchWrite(dynamo(spec.region), spec.sourceTable, [
      { session_id: S(id), timestamp: N(OLDER), pages_viewed: N(1) },
      { session_id: S(id), timestamp: N(NEWER), pages_viewed: N(2) },
    ]);
    const row = async () => {
      const [r] =
        await sql`select page_views::int as pages, sync_range_key::bigint as at, sync_source
                            from public.firespring_visitors where visitor_id = ${id}`;
      return r;
    };
    await eventually("the stream to deliver both items", async () => {
      const [{ n }] = await sql`select count(*)::int as n from sync.observations
                                where target_table = 'firespring_visitors'
                                  and row_key = ${rowKey}::text::jsonb`;
      return n === 2 ? true : undefined;
    });
    assert.equal((await row())?.pages, 2, "the row holds the newer item");

    // What sync.purge_superseded_observations does once observation_retention has passed
    // (tested in supabase/tests/database/080-retention.test.sql): the older item's
    // observation goes, though the item lives on.
    await sql`delete from sync.observations
              where target_table = 'firespring_visitors' and row_key = ${rowKey}::text::jsonb
                and range_key = ${OLDER}`;

    await dynamo(spec.region).send(
      new DeleteItemCommand({
        TableName: spec.sourceTable,
        Key: { session_id: S(id), timestamp: N(NEWER) },
      }),
    );
    // The merge of the delete removes the row (nothing live is kept here) and queues the
    // key, in one transaction; pg_cron's sweep may re-read it at any moment after.
    await eventually("the stream's delete to reach the merge", async () => {
      const [gone] = await sql`select 1 from sync.observations
                               where target_table = 'firespring_visitors'
                                 and row_key = ${rowKey}::text::jsonb
                                 and range_key = ${NEWER} and deleted`;
      return gone ? true : undefined;
    });

    // pg_cron's sweep (sync.wake_rereads) calls the validator so, within a minute here;
    // the test calls it itself until the row is back. Either may re-read the key; a call
    // that finds the validator's isolate busy (the sweep's own request) answers 202.
    const back = await eventually("the re-read to bring the older item back", async () => {
      const response = await callFunction("data-checksum-validator", {
        method: "POST",
        headers: serviceRoleHeaders(),
        body: JSON.stringify({ rereads: true }),
      });
      const answer = await response.json();
      assert.ok([200, 202].includes(response.status), JSON.stringify(answer));
      assert.equal(answer.failed, 0, JSON.stringify(answer));
      const r = await row();
      return r?.pages === 1 ? r : undefined;
    }, 60_000); // as long as pg_cron's sweep may take to give the isolate's place back
    assert.deepEqual(
      { at: Number(back.at), source: back.sync_source },
      { at: OLDER, source: "repair" },
      "the row holds the older item, as read by the re-read",
    );
    const [{ n }] = await sql`select count(*)::int as n from sync.collapsed_rereads
                              where row_key = ${rowKey}::text::jsonb`;
    assert.equal(n, 0, "the key has left the queue");
  } finally {
    await sql.end();
  }
});
