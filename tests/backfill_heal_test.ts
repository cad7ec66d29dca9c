/**
 * A stream that lost records (the poller was away longer than the stream keeps them)
 * marks its table stale and heals it with a backfill of its own, which removes the row
 * whose delete was lost and leaves a tombstone (docs/sync-semantics.md, "A backfill
 * ends equal").
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { DeleteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { stopDetached } from "../local-stack/processes.ts";
import { POLLER_STATE_FILE } from "../local-stack/stream_positions.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";
import { startStreamPoller } from "./stream_poller.ts";

const LEADS = "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE";

/** The poller's saved shard positions of the leads stream, once it has read a record. */
function leadsStreamState(): Record<string, Record<string, string>> | undefined {
  if (!existsSync(POLLER_STATE_FILE)) return undefined;
  const state = JSON.parse(readFileSync(POLLER_STATE_FILE, "utf8"));
  return Object.keys(state).some((arn) => arn.includes(`table/${LEADS}/`)) ? state : undefined;
}

Deno.test("a stream that lost records marks its table stale and heals it with a backfill", async () => {
  const sql = connectDb();
  const since = new Date();
  const leads = dynamo("us-east-2");
  const probe = { id: { S: `heal-probe-${crypto.randomUUID()}` } };
  try {
    // A record on the leads stream, so that the poller has read it and saved its place.
    await leads.send(
      new PutItemCommand({ TableName: LEADS, Item: { ...probe, name: { S: "p" } } }),
    );
    await eventually("the poller to read the leads stream", async () => {
      const [row] = await sql`select 1 from public.mmp_toledo_leads where lead_id = ${probe.id.S}`;
      return row && leadsStreamState();
    }, 60_000);
    await stopDetached("stream_poller");
    const file = POLLER_STATE_FILE;
    const state = leadsStreamState()!;
    const arn = Object.keys(state).find((a) => a.includes(`table/${LEADS}/`))!;
    // Pretend the poller was away for longer than the stream keeps records.
    for (const shard of Object.keys(state[arn])) state[arn][shard] = "0".repeat(21);
    writeFileSync(file, JSON.stringify(state));
    // Two rows whose items DynamoDB does not hold: one the stream wrote two hours ago
    // (its REMOVE record was among those lost), one it writes while the healing backfill
    // runs (as if the item came after the Scan passed its place, and went again). The
    // backfill starts within seconds; its sweep spares rows changed after its start less
    // the clock's granularity (1 s, as on AWS), so this row's change is stamped 30 s on.
    const lead = (id: string, seq: string, at: Date) => ({
      op: "upsert",
      row: { lead_id: id, name: id, lead_data: {} },
      seq,
      changed_at: at.toISOString(),
      source: "stream",
    });
    await sql`select sync.merge_changes('mmp_toledo_leads', ${
      JSON.stringify([
        lead("lost-remove", "1", new Date(Date.now() - 2 * 3600_000)),
        lead("streamed-now", "2", new Date(Date.now() + 30_000)),
      ])
    }::text::jsonb)`;
    await startStreamPoller();

    const healed = await eventually("the table to be marked stale and healed", async () => {
      const [s] = await sql`
        select s.stale_reason, j.status, j.requested_at
        from sync.table_state s join sync.backfill_jobs j on j.id = s.backfill_job_id
        where s.target_table = 'mmp_toledo_leads' and j.requested_at >= ${since}`;
      return s?.status === "done" ? s : undefined;
    }, 60_000);
    assert.match(healed.stale_reason, /passed the stream's retention unread/);
    const [status] =
      await sql`select stale from sync.status where target_table = 'mmp_toledo_leads'`;
    assert.equal(status.stale, false, "the finished backfill clears the mark");
    const kept = await sql`select lead_id from public.mmp_toledo_leads
                           where lead_id in ('lost-remove', 'streamed-now')`;
    assert.deepEqual(
      kept.map((r) => r.lead_id),
      ["streamed-now"],
      "the row whose delete was lost is gone",
    );
    const [tomb] = await sql`select count(*)::int as n from sync.tombstones
      where target_table = 'mmp_toledo_leads' and row_key = '{"lead_id": "lost-remove"}'`;
    assert.equal(tomb.n, 1, "its removal left a tombstone");
    await sql`delete from public.mmp_toledo_leads where lead_id = 'streamed-now'`;
  } finally {
    // The poller runs again whatever happened, or every later stream test would wait.
    await startStreamPoller();
    await leads.send(new DeleteItemCommand({ TableName: LEADS, Key: probe }));
    await sql.end();
  }
});
