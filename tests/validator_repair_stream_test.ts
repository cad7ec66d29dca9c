/**
 * The checksum validator's repair against the stack, on the segments table: a repair
 * mends rows that streamed in seconds before, and a later stream change still wins
 * (docs/sync-semantics.md, "Repairs"). The repair of a collapsed table is
 * tests/validator_repair_test.ts.
 */

import assert from "node:assert/strict";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";
import { load, N, S, validate } from "./validator_fixtures.ts";

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
    const last = await validate("firespring_segments");
    assert.equal(last.match, true);
    // This test's two runs (others may end meanwhile): retention takes their staging rows.
    await sql`select sync.purge_expired_batch('validation_staging', 1000000)`;
    const runs = [repaired.runId, last.runId];
    const [run] = await sql`select count(*)::int as n from sync.checksum_items i
                            where i.run_id in ${sql(runs)}`;
    assert.equal(run.n, 0, "finished runs leave no staging rows once retention ran");
  } finally {
    await sql.end();
  }
});

Deno.test("a repair leaves a key whose admin's edit is on its way to DynamoDB, and repairs it once the edit is gone", async () => {
  const p = `valw-${crypto.randomUUID().slice(0, 8)}-`;
  await load(
    "firespring_segments",
    [0, 1].map((i) => ({ segment_id: S(`${p}${i}`), name: S(`segment ${i}`), value: N(i) })),
    p,
  );
  const sql = connectDb();
  const edited = JSON.stringify({ segment_id: `${p}1` });
  try {
    await sql.begin(async (tx) => {
      // Made on purpose, not edits to write back: the write-back below is made by hand,
      // due in an hour, so that it stays pending while the validation runs.
      await tx`set local sync.write_back_skip = 'on'`;
      await tx`update public.firespring_segments set segment_name = 'drifted'
               where segment_id = ${p + "0"}`;
      await tx`update public.firespring_segments set segment_name = 'edited by an admin'
               where segment_id = ${p + "1"}`;
    });
    await sql`insert into sync.write_backs (target_table, row_key, edited_by, edited_role, columns,
                                            before_values, after_values, next_attempt_at)
              values ('firespring_segments', ${edited}::text::jsonb, 'admin@example.test',
                      'authenticated', '{segment_name}', '{"segment_name": "segment 1"}',
                      '{"segment_name": "edited by an admin"}', now() + interval '1 hour')`;
    const repaired = await validate("firespring_segments", true);
    assert.deepEqual(repaired.repaired?.different, [{ segment_id: `${p}0` }, {
      segment_id: `${p}1`,
    }]);
    assert.deepEqual(repaired.different, [{ segment_id: `${p}1` }], "still the edit's, after");
    const names = async () =>
      (await sql`select segment_name from public.firespring_segments
                 where segment_id like ${p + "%"} order by segment_id`).map((r) => r.segment_name);
    assert.deepEqual(await names(), ["segment 0", "edited by an admin"]);
    // The edit given up (as a failed write-back's restore would do): the key is repaired.
    await sql`delete from sync.write_backs where target_table = 'firespring_segments'
              and row_key = ${edited}::text::jsonb`;
    assert.equal((await validate("firespring_segments", true)).match, true);
    assert.deepEqual(await names(), ["segment 0", "segment 1"]);
  } finally {
    await sql`delete from sync.write_backs where target_table = 'firespring_segments'
              and row_key = ${edited}::text::jsonb`;
    await sql.end();
  }
});
