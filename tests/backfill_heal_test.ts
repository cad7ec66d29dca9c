/**
 * A table marked stale for lost stream records (as `stream-check` marks it:
 * docs/sync-semantics.md, "Lost stream records"; tests/stream_check_test.ts finds the
 * loss) heals with a backfill of its own, which removes the row whose delete was lost
 * and leaves a tombstone (docs/sync-semantics.md, "A backfill ends equal").
 */

import assert from "node:assert/strict";
import type postgres from "postgres";
import { connectDb, eventually } from "./stack_clients.ts";

/** A stream change of a lead, as the webhook merges it. */
const lead = (id: string, seq: string, at: Date) => ({
  op: "upsert",
  row: { lead_id: id, name: id, lead_data: {} },
  seq,
  changed_at: at.toISOString(),
  source: "stream",
});

/** The leads table's healing backfill requested since `since`, once it is done. */
function healed(sql: postgres.Sql, since: Date, what: string) {
  return eventually(what, async () => {
    const [s] = await sql`
      select s.stale_reason, j.status, j.requested_at, j.sweep_state, j.rows_removed
      from sync.table_state s join sync.backfill_jobs j on j.id = s.backfill_job_id
      where s.target_table = 'mmp_toledo_leads' and j.requested_at >= ${since}`;
    return s?.status === "done" ? s : undefined;
  }, 60_000);
}

Deno.test("a table marked stale for lost stream records heals with a backfill of its own", async () => {
  const sql = connectDb();
  const since = new Date();
  try {
    // Two rows whose items DynamoDB does not hold: one the stream wrote two hours ago
    // (its REMOVE record was among those lost), one it writes while the healing backfill
    // runs (as if the item came after the Scan passed its place, and went again). The
    // backfill starts within seconds; its sweep spares rows changed after its start less
    // the clock's granularity (1 s, as on AWS), so this row's change is stamped 30 s on.
    await sql`select sync.merge_changes('mmp_toledo_leads', ${
      JSON.stringify([
        lead("lost-remove", "1", new Date(Date.now() - 2 * 3600_000)),
        lead("streamed-now", "2", new Date(Date.now() + 30_000)),
      ])
    }::text::jsonb)`;
    const reason = "lost-record check: a record was trimmed before the webhook applied it";
    await sql`select sync.mark_stale('mmp_toledo_leads', ${reason})`;

    const done = await healed(sql, since, "the table to be healed");
    assert.equal(done.stale_reason, reason);
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
  } finally {
    await sql`delete from public.mmp_toledo_leads where lead_id = 'streamed-now'`;
    await sql.end();
  }
});

Deno.test("a backfill's end left to the import-worker (none of it run in its last page) heals the table all the same", async () => {
  const sql = connectDb();
  const since = new Date();
  const [{ value: inline }] = await sql`
    select value from sync.settings where key = 'backfill_end_inline_ms'`;
  try {
    // The last page's statement runs no chunk of the end: the worker's run must.
    await sql`update sync.settings set value = '0' where key = 'backfill_end_inline_ms'`;
    await sql`select sync.merge_changes('mmp_toledo_leads', ${
      JSON.stringify([lead("lost-remove-2", "3", new Date(Date.now() - 2 * 3600_000))])
    }::text::jsonb)`;
    await sql`select sync.mark_stale('mmp_toledo_leads', 'lost-record check: records trimmed')`;
    const done = await healed(sql, since, "the table to be healed by the worker");
    assert.equal(done.sweep_state, null);
    assert.ok(Number(done.rows_removed) >= 1, `rows_removed ${done.rows_removed}`);
    const left = await sql`select 1 from public.mmp_toledo_leads where lead_id = 'lost-remove-2'`;
    assert.equal(left.length, 0, "the row whose delete was lost is gone");
  } finally {
    await sql`update sync.settings set value = ${inline} where key = 'backfill_end_inline_ms'`;
    await sql.end();
  }
});
