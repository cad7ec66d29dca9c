/**
 * The checksum validator's repair against the stack: a divergent visitor (a collapsed
 * table) is found and repaired from all its observations, and a repair mends rows that
 * streamed in seconds before while a later stream change still wins
 * (docs/sync-semantics.md, "Repairs").
 */

import assert from "node:assert/strict";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { batchWrite } from "../demo/load_dynamo.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
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
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  assert.equal((await validate("firespring_visitors", true)).match, true);
  const sql = connectDb();
  try {
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

Deno.test("a repair mends rows that streamed in seconds before, and a later stream change still wins", async () => {
  const p = `valr-${crypto.randomUUID().slice(0, 8)}-`;
  const table = byTargetTable("firespring_segments")!;
  await load(
    "firespring_segments",
    Array.from({ length: 5 }, (_, i) => ({
      segment_id: S(`${p}${i}`),
      name: S(`segment ${i}`),
      value: N(i + 10),
    })),
    p,
  );
  assert.equal((await validate("firespring_segments", true)).match, true);
  const sql = connectDb();
  try {
    // Behind the sync's back, as the service role, seconds after the stream wrote them.
    await sql.begin(async (tx) => {
      // Drift made on purpose, not an edit to write back (20261128002500_write_back.sql).
      await tx`set local sync.write_back_skip = 'on'`;
      await tx`set local role service_role`;
      await tx`update public.firespring_segments set segment_name = 'changed', member_count = 999
               where segment_id = ${p + "0"}`;
      await tx`insert into public.firespring_segments (segment_id, segment_name, sync_changed_at, sync_source)
               values (${p + "extra"}, 'not in DynamoDB', now(), 'direct')`;
      await tx`delete from public.firespring_segments where segment_id = ${p + "1"}`;
    });
    const [{ age }] = await sql`select extract(epoch from now() - min(synced_at))::int as age
                                from public.firespring_segments where segment_id like ${p + "%"}`;
    assert.ok(
      age < 60,
      `the rows streamed in ${age}s before, within the local clock's granularity`,
    );

    const repaired = await validate("firespring_segments", true);
    assert.equal(repaired.match, true, JSON.stringify(repaired));
    assert.deepEqual(repaired.repaired, {
      missing: [{ segment_id: `${p}1` }],
      unexpected: [{ segment_id: `${p}extra` }],
      different: [{ segment_id: `${p}0` }],
    });
    const rows = await sql`select segment_id, segment_name, member_count::int as n,
                                  sync_source from public.firespring_segments
                           where segment_id like ${p + "%"} order by segment_id`;
    assert.deepEqual(
      rows.map((r) => [r.segment_id, r.segment_name, r.n]),
      Array.from({ length: 5 }, (_, i) => [`${p}${i}`, `segment ${i}`, i + 10]),
      "the rows equal the source again, and the extra row is gone",
    );
    assert.equal(rows[0].sync_source, "repair");
    const [tomb] = await sql`select sync_sequence from sync.tombstones
                             where target_table = 'firespring_segments'
                               and row_key = ${
      JSON.stringify({ segment_id: p + "extra" })
    }::text::jsonb`;
    assert.equal(tomb.sync_sequence, null, "the repair's delete leaves a tombstone at its read");

    // A change made after the repair reaches the row through the stream and the webhook.
    await dynamo(table.region).send(
      new PutItemCommand({
        TableName: table.sourceTable,
        Item: { segment_id: S(`${p}0`), name: S("after the repair"), value: N(7) },
      }),
    );
    await eventually("the later stream change to apply", async () => {
      const [row] = await sql`select segment_name, sync_source from public.firespring_segments
                              where segment_id = ${p + "0"}`;
      return row.segment_name === "after the repair" ? row : undefined;
    }, 60_000);
    assert.equal((await validate("firespring_segments")).match, true);
    const [run] = await sql`select count(*)::int as n from sync.checksum_items i
                            join public.sync_checksums c on c.id = i.run_id
                            where c.status <> 'running'`;
    assert.equal(run.n, 0, "finished runs leave no staging rows");
  } finally {
    await sql.end();
  }
});
