/**
 * The checksum validator against the stack: a table that equals its source matches;
 * a deleted row, an extra row, a changed jsonb value, a changed timestamp and a numeric
 * that lost digits are each named by key; repair fixes them and nothing else, even for
 * rows that streamed in seconds before; a source item that maps to no row makes the
 * table a mismatch and is named; keys merely in flight while a validation runs are not
 * reported.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LOCAL_DIR } from "../local-stack/config.ts";
import { type AttributeValue, DeleteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { batchWrite } from "../demo/load_dynamo.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import {
  callFunction,
  connectDb,
  dynamo,
  eventually,
  serviceRoleHeaders,
} from "./stack_clients.ts";

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number | string): AttributeValue => ({ N: String(n) });

async function validate(table: string, repair = false) {
  const response = await callFunction("data-checksum-validator", {
    method: "POST",
    headers: serviceRoleHeaders(),
    body: JSON.stringify({ table, repair }),
  });
  assert.equal(response.status, 200);
  return await response.json();
}

/** Loads items and waits until the stream has delivered all of them. */
async function load(target: string, items: Record<string, AttributeValue>[], prefix: string) {
  const spec = byTargetTable(target)!;
  await batchWrite(dynamo(spec.region), spec.sourceTable, items);
  const sql = connectDb();
  try {
    await eventually("the stream to deliver", async () => {
      const [r] = await sql.unsafe(
        `select count(*)::int as n from public.${target} where ${spec.targetKey[0]} like $1`,
        [`${prefix}%`],
      );
      return r.n === items.length ? true : undefined;
    }, 60_000);
  } finally {
    await sql.end();
  }
}

Deno.test("the validator refuses what it should, naming the problem", async () => {
  const unauthorized = await callFunction("data-checksum-validator", {
    method: "POST",
    body: JSON.stringify({ table: "firespring_segments" }),
  });
  assert.equal(unauthorized.status, 401);
  await unauthorized.body?.cancel();
  const unknown = await callFunction("data-checksum-validator", {
    method: "POST",
    headers: serviceRoleHeaders(),
    body: JSON.stringify({ table: "segments" }),
  });
  assert.equal(unknown.status, 400);
  assert.match(
    (await unknown.json()).error,
    /segments is not a target table; known: firespring_actions/,
  );
});

Deno.test("divergences are found by key, and repair fixes exactly them", async () => {
  const p = `val-${crypto.randomUUID().slice(0, 8)}-`;
  await load(
    "firespring_segments",
    Array.from({ length: 40 }, (_, i) => ({
      segment_id: S(`${p}${i}`),
      name: S(`segment ${i}`),
      value: N(`${i + 1}${"1234567890".repeat(3)}7`),
      raw: { M: { rules: { L: [{ S: "a" }] }, at: N(i) } },
    })),
    p,
  );
  await load(
    "firespring_network_state",
    Array.from({ length: 10 }, (_, i) => ({
      state_key: S(`${p}${i}`),
      value: { M: { up: { BOOL: true } } },
      updated_at: N(1770379200 + i),
    })),
    p,
  );

  // Start from tables that match (earlier tests write straight into Postgres too).
  for (const table of ["firespring_segments", "firespring_network_state"]) {
    const settled = await validate(table, true);
    assert.equal(settled.match, true, JSON.stringify(settled));
  }
  const clean = await validate("firespring_segments");
  assert.equal(clean.match, true);
  assert.equal(clean.expectedRows, clean.targetRows);
  assert.deepEqual([clean.missing, clean.unexpected, clean.different], [[], [], []]);
  assert.ok(clean.sourceItems >= 40 && typeof clean.checkedAt === "string");

  const sql = connectDb();
  try {
    // Drift, dated an hour back as drift is: old enough for repair's guard to replace it.
    const old = "now() - interval '1 hour'";
    await sql.unsafe(`delete from public.firespring_segments where segment_id = '${p}1'`);
    await sql.unsafe(
      `insert into public.firespring_segments (segment_id, segment_name, sync_changed_at, sync_source)
                      values ('${p}extra', 'not in DynamoDB', ${old}, 'direct')`,
    );
    await sql.unsafe(
      `update public.firespring_segments set segment_criteria = jsonb_set(segment_criteria, '{raw,at}', '99'),
                      sync_changed_at = ${old} where segment_id = '${p}2'`,
    );
    await sql.unsafe(
      `update public.firespring_segments set member_count = member_count::float8::numeric,
                      sync_changed_at = ${old} where segment_id = '${p}3'`,
    );
    await sql.unsafe(
      `update public.firespring_network_state set updated_at = updated_at + interval '1 millisecond',
                      sync_changed_at = ${old} where state_key = '${p}4'`,
    );
    const before = await sql`select segment_id, synced_at from public.firespring_segments
                             where segment_id like ${p + "%"} and segment_id not in (${p + "2"}, ${
      p + "3"
    })`;

    const segments = await validate("firespring_segments");
    assert.equal(segments.match, false);
    assert.deepEqual(segments.missing, [{ segment_id: `${p}1` }]);
    assert.deepEqual(segments.unexpected, [{ segment_id: `${p}extra` }]);
    assert.deepEqual(segments.different, [{ segment_id: `${p}2` }, { segment_id: `${p}3` }]);
    const network = await validate("firespring_network_state");
    assert.deepEqual(network.different, [{ state_key: `${p}4` }], "a changed timestamp is found");

    const [run] = await sql`select match, missing, unexpected, different from public.sync_checksums
                            where id = ${segments.runId}`;
    assert.deepEqual(
      { ...run },
      {
        match: false,
        missing: segments.missing,
        unexpected: segments.unexpected,
        different: segments.different,
      },
      "the run is recorded with every divergent key",
    );

    const repaired = await validate("firespring_segments", true);
    assert.equal(repaired.match, true, JSON.stringify(repaired));
    assert.deepEqual(repaired.repaired, {
      missing: segments.missing,
      unexpected: segments.unexpected,
      different: segments.different,
    });
    const [digits] = await sql`select member_count::text as v from public.firespring_segments
                               where segment_id = ${p + "3"}`;
    assert.equal(digits.v, `4${"1234567890".repeat(3)}7`, "every digit is back");
    const after = await sql`select segment_id, synced_at from public.firespring_segments
                            where segment_id like ${p + "%"} and segment_id not in (${p + "2"}, ${
      p + "3"
    }, ${p + "1"})`;
    assert.deepEqual(
      after.map((r) => [r.segment_id, r.synced_at.toISOString()]).sort(),
      before.filter((r) => r.segment_id !== `${p}extra`).map((
        r,
      ) => [r.segment_id, r.synced_at.toISOString()]).sort(),
      "no other row was written",
    );
    assert.equal((await validate("firespring_network_state", true)).match, true);
  } finally {
    await sql.end();
  }
});

Deno.test("a run too big for one request goes on in the next ones and ends with its answer", async () => {
  const sql = connectDb();
  try {
    const response = await callFunction("data-checksum-validator", {
      method: "POST",
      headers: serviceRoleHeaders(),
      body: JSON.stringify({ table: "firespring_segments", pagesPerRequest: 1 }),
    });
    assert.equal(response.status, 202);
    const started = await response.json();
    assert.equal(started.status, "running");
    assert.equal(typeof started.runId, "number");
    const run = await eventually("the run to finish", async () => {
      const [row] = await sql`select status, match, source_items::int as items, scan_state
                              from public.sync_checksums where id = ${started.runId}`;
      return row.status === "running" ? undefined : row;
    }, 120_000);
    assert.equal(run.status, "done");
    assert.equal(run.match, true, "segments were repaired to match by the test before");
    const [count] = await sql`select count(*)::int as n from public.firespring_segments`;
    assert.equal(run.items, count.n, "every item was read exactly once across the requests");
    assert.deepEqual(run.scan_state, {});
    const log = readFileSync(join(LOCAL_DIR, "logs", "functions.log"), "utf8");
    const handOffs = log.split("\n").filter((line) =>
      line.includes(`validation run ${started.runId} goes on in another request`)
    );
    assert.ok(handOffs.length >= 2, `the run went on over several requests (${handOffs.length})`);
  } finally {
    await sql.end();
  }
});

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
    await sql`update public.firespring_visitors set page_views = 0 where visitor_id = ${p + "1"}`;
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
    await sql`update public.firespring_visitors set page_views = 42, sync_range_key = 1770379299
              where visitor_id = ${p + "2"}`;
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

Deno.test("an item that maps to no row is named, and the table is not a match", async () => {
  const p = `valu-${crypto.randomUUID().slice(0, 8)}-`;
  const table = byTargetTable("firespring_segments")!;
  const client = dynamo(table.region);
  assert.equal((await validate("firespring_segments", true)).match, true);
  await client.send(
    new PutItemCommand({
      TableName: table.sourceTable,
      Item: { segment_id: S(`${p}bad`), name: S("wrong type"), value: S("twelve") },
    }),
  );
  const sql = connectDb();
  try {
    const result = await validate("firespring_segments");
    assert.equal(result.match, false, JSON.stringify(result));
    assert.deepEqual([result.missing, result.unexpected, result.different], [[], [], []]);
    assert.equal(result.unmappable.length, 1, JSON.stringify(result.unmappable));
    assert.deepEqual(result.unmappable[0].key, { segment_id: `${p}bad` });
    assert.match(result.unmappable[0].reason, new RegExp(`${table.sourceTable} .*${p}bad.*value`));
    const [run] = await sql`select match, unmappable from public.sync_checksums
                            where id = ${result.runId}`;
    assert.deepEqual({ ...run }, { match: false, unmappable: result.unmappable });
    const repaired = await validate("firespring_segments", true);
    assert.equal(repaired.match, false, "a repair cannot make an unmappable item match");
  } finally {
    await client.send(
      new DeleteItemCommand({ TableName: table.sourceTable, Key: { segment_id: S(`${p}bad`) } }),
    );
    // The stream dead-letters the item; this test's letter is no open problem of the stack.
    await eventually("the dead letter", async () => {
      const [r] = await sql`select count(*)::int as n from sync.dead_letters
                            where record::text like ${"%" + p + "bad%"}`;
      return r.n > 0 ? true : undefined;
    }, 60_000).catch(() => {});
    await sql`delete from sync.dead_letters where record::text like ${"%" + p + "bad%"}`;
    await sql.end();
  }
});

Deno.test("keys merely in flight during a validation are not reported", async () => {
  const table = byTargetTable("firespring_traffic_sources")!;
  assert.equal((await validate(table.targetTable, true)).match, true);
  const p = `flight-${crypto.randomUUID().slice(0, 8)}-`;
  const writing = (async () => {
    for (let i = 0; i < 30; i++) {
      await dynamo(table.region).send(
        new PutItemCommand({
          TableName: table.sourceTable,
          Item: { source_id: S(`${p}${i % 20}`), name: S(`v${i}`), visitors: N(i) },
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  const during = await validate(table.targetTable);
  await writing;
  assert.equal(during.match, true, `in-flight keys were reported: ${JSON.stringify(during)}`);
});
