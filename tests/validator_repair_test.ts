/**
 * The checksum validator's repair against the stack: a divergent visitor (a collapsed
 * table) is found and repaired from all its observations (docs/sync-semantics.md,
 * "Repairs"). A repair of rows that streamed in seconds before is
 * tests/validator_repair_stream_test.ts, a file of its own so that the two run side by side.
 */

import assert from "node:assert/strict";
import { batchWrite } from "../demo/load_dynamo.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";
import { load, N, S, validate } from "./validator_fixtures.ts";

Deno.test("collapsed tables: a divergent visitor is found and repaired from all its observations", async () => {
  const p = `valv-${crypto.randomUUID().slice(0, 8)}-`;
  const items = [];
  for (let v = 0; v < 5; v++) {
    for (let k = 0; k < 3; k++) {
      items.push({ session_id: S(`${p}${v}`), timestamp: N(1770379200 + k), pages_viewed: N(k) });
    }
  }
  await load("firespring_visitors", items.filter((_, i) => i % 3 === 2), p);
  await batchWrite(dynamo("us-east-1"), "firespring-backdoor-visitors-dev", items);
  const sql = connectDb();
  try {
    // Every observation delivered by the stream before the drift: a late one recomputes
    // its visitor's row, and would undo the drift made below (a loaded machine's stream
    // lagged past a fixed 2 s wait).
    await eventually("the stream to deliver every observation", async () => {
      const [r] = await sql`select count(*)::int as n from sync.observations
                            where target_table = 'firespring_visitors' and not deleted
                              and row_key ->> 'visitor_id' like ${p + "%"}`;
      return r.n === items.length ? true : undefined;
    }, 60_000);
    assert.equal((await validate("firespring_visitors", true)).match, true);
    // Drift seconds after the stream wrote the rows: within the stream clock's
    // granularity of the repair's read, which the repair must replace all the same.
    // Drift made on purpose, not an edit to write back (20261128002500_write_back.sql).
    await sql.begin(async (tx) => {
      await tx`set local sync.write_back_skip = 'on'`;
      await tx`update public.firespring_visitors set page_views = 0 where visitor_id = ${p + "1"}`;
    });
    // An observation the source never had, newer than the real ones, held by the row, as
    // if the stream had just delivered it (a stream position, a change time of now).
    await sql`insert into sync.observations
                (target_table, row_key, range_key, row, sync_sequence, sync_changed_at, sync_source)
              values ('firespring_visitors', ${
      JSON.stringify({ visitor_id: p + "2" })
    }::text::jsonb,
                      1770379299, ${
      JSON.stringify({ visitor_id: p + "2", page_views: 42, session_data: {} })
    }::text::jsonb, 99999999999999999999, now(), 'stream')`;
    await sql.begin(async (tx) => {
      await tx`set local sync.write_back_skip = 'on'`;
      await tx`update public.firespring_visitors set page_views = 42, sync_range_key = 1770379299
                where visitor_id = ${p + "2"}`;
    });
    const found = await validate("firespring_visitors");
    assert.deepEqual(found.different, [{ visitor_id: `${p}1` }, { visitor_id: `${p}2` }]);
    const fixed = await validate("firespring_visitors", true);
    assert.equal(fixed.match, true, JSON.stringify(fixed));
    const rows = await sql`select visitor_id, page_views::int as n, sync_range_key::text as at
                           from public.firespring_visitors where visitor_id in (${p + "1"}, ${
      p + "2"
    }) order by visitor_id`;
    assert.deepEqual(
      rows.map((r) => [r.visitor_id, r.n, r.at]),
      [[`${p}1`, 2, "1770379202"], [`${p}2`, 2, "1770379202"]],
      "the latest observation the source has is the row again",
    );
    const [gone] = await sql`select deleted from sync.observations
                             where target_table = 'firespring_visitors'
                               and row_key = ${JSON.stringify({ visitor_id: p + "2" })}::text::jsonb
                               and range_key = 1770379299`;
    assert.equal(gone.deleted, true, "the observation the source lacks is removed");
  } finally {
    await sql.end();
  }
});
