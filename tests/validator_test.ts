/**
 * The checksum validator against the stack: a table that equals its source matches;
 * a deleted row, an extra row, a changed jsonb value, a changed timestamp and a numeric
 * that lost digits are each named by key, and repair fixes them and nothing else; a run
 * too big for one request goes on; a source item that maps to no row makes the table a
 * mismatch and is named; keys merely in flight while a validation runs are not reported.
 * Repairs of collapsed tables are in tests/validator_repair_test.ts, of rows that
 * streamed in seconds before in tests/validator_repair_stream_test.ts.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LOCAL_DIR } from "../local-stack/config.ts";
import { DeleteItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import {
  callFunction,
  connectDb,
  dynamo,
  eventually,
  serviceRoleHeaders,
  staleReadMs,
} from "./stack_clients.ts";
import { load, N, S, validate } from "./validator_fixtures.ts";

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
  // The two tables side by side, here and below: each validation that finds a divergence
  // waits for it to settle (VALIDATOR_SETTLE_MS, three looks), a few seconds each.
  await Promise.all([
    load(
      "firespring_segments",
      Array.from({ length: 40 }, (_, i) => ({
        segment_id: S(`${p}${i}`),
        name: S(`segment ${i}`),
        value: N(`${i + 1}${"1234567890".repeat(3)}7`),
        raw: { M: { rules: { L: [{ S: "a" }] }, at: N(i) } },
      })),
      p,
    ),
    load(
      "firespring_network_state",
      Array.from({ length: 10 }, (_, i) => ({
        state_key: S(`${p}${i}`),
        value: { M: { up: { BOOL: true } } },
        updated_at: N(1770379200 + i),
      })),
      p,
    ),
  ]);

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
    // Drift made on purpose: not an admin's edit to write back (sync.write_back_skip,
    // 20261128002500_write_back.sql).
    await sql.begin(async (tx) => {
      await tx`set local sync.write_back_skip = 'on'`;
      await tx.unsafe(
        `update public.firespring_segments set segment_criteria = jsonb_set(segment_criteria, '{raw,at}', '99'),
                        sync_changed_at = ${old} where segment_id = '${p}2'`,
      );
      await tx.unsafe(
        `update public.firespring_segments set member_count = member_count::float8::numeric,
                        sync_changed_at = ${old} where segment_id = '${p}3'`,
      );
      await tx.unsafe(
        `update public.firespring_network_state set updated_at = updated_at + interval '1 millisecond',
                        sync_changed_at = ${old} where state_key = '${p}4'`,
      );
    });
    const before = await sql`select segment_id, synced_at from public.firespring_segments
                             where segment_id like ${p + "%"} and segment_id not in (${p + "2"}, ${
      p + "3"
    })`;

    const [segments, network] = await Promise.all([
      validate("firespring_segments"),
      validate("firespring_network_state"),
    ]);
    assert.equal(segments.match, false);
    assert.deepEqual(segments.missing, [{ segment_id: `${p}1` }]);
    assert.deepEqual(segments.unexpected, [{ segment_id: `${p}extra` }]);
    assert.deepEqual(segments.different, [{ segment_id: `${p}2` }, { segment_id: `${p}3` }]);
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

    const [repaired, networkRepaired] = await Promise.all([
      validate("firespring_segments", true),
      validate("firespring_network_state", true),
    ]);
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
    assert.equal(networkRepaired.match, true, JSON.stringify(networkRepaired));
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
    // 202 while the run goes on; 200 when the requests it handed on to finished it
    // within the 25 s the first one waits (docs/interfaces.md).
    const started = await response.json();
    assert.ok([200, 202].includes(response.status), JSON.stringify(started));
    if (response.status === 202) assert.equal(started.status, "running");
    assert.equal(typeof started.runId, "number");
    const run = await eventually("the run to finish", async () => {
      const [row] = await sql`select status, phase, match, source_items::int as items, streamed
                              from public.sync_checksums c where id = ${started.runId}`;
      return row.status === "running" ? undefined : row;
    }, 120_000);
    assert.equal(run.status, "done");
    assert.equal(run.match, true, "segments were repaired to match by the test before");
    const [count] = await sql`select count(*)::int as n from public.firespring_segments`;
    assert.equal(run.items, count.n, "every item was read exactly once across the requests");
    assert.equal(run.phase, "done");
    await sql`select sync.purge_expired_batch('validation_staging', 1000000)`;
    const [left] =
      await sql`select (select count(*)::int from sync.checksum_items where run_id = ${started.runId})
                                  + (select count(*)::int from sync.checksum_seen where run_id = ${started.runId})
                                  + (select count(*)::int from sync.checksum_divergent where run_id = ${started.runId})
                                    as staged`;
    assert.equal(
      left.staged,
      0,
      "the ended run's staging rows and seen keys go at retention's run",
    );
    assert.equal(run.streamed, true, "a plain table's pages were compared as they came");
    const segments = await sql`select s.status, s.pages from sync.backfill_segments s
                               join sync.backfill_jobs j on j.id = s.job_id
                               where j.checksum_run_id = ${started.runId}`;
    assert.equal(segments.length, 8, "the run scanned on the backfill's leased segments");
    assert.ok(segments.every((s) => s.status === "done"), JSON.stringify(segments));
    const log = readFileSync(join(LOCAL_DIR, "logs", "functions.log"), "utf8");
    const handOffs = log.split("\n").filter((line) =>
      line.includes(`validation run ${started.runId} goes on in another request`)
    );
    assert.ok(handOffs.length >= 2, `the run went on over several requests (${handOffs.length})`);
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
  // The validator's Scan is eventually consistent (docs/sync-semantics.md, "Verification"):
  // an item written within the stale window may not be in it yet, as one written after
  // a consistent Scan passed its key would not be. The run looks at the table after it.
  await new Promise((resolve) => setTimeout(resolve, staleReadMs()));
  const sql = connectDb();
  try {
    const result = await validate("firespring_segments");
    assert.equal(result.match, false, JSON.stringify(result));
    assert.deepEqual([result.missing, result.unexpected, result.different], [[], [], []]);
    assert.equal(result.unmappable.length, 1, JSON.stringify(result.unmappable));
    // A list of keys, as the other three, and the reason of each beside it.
    assert.deepEqual(result.unmappable, [{ segment_id: `${p}bad` }]);
    assert.match(result.unmappableReasons[0], new RegExp(`${table.sourceTable} .*${p}bad.*value`));
    const [run] = await sql`select match, unmappable from public.sync_checksums
                            where id = ${result.runId}`;
    assert.deepEqual({ ...run }, {
      match: false,
      unmappable: [{ key: result.unmappable[0], reason: result.unmappableReasons[0] }],
    });
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

Deno.test("a key changed faster than the stream lags is not reported", async () => {
  // A counter written as fast as it goes: its row never shows, at any compare, the version a
  // look read, since the stream has moved it past that version by then. The last look
  // finds the row changed after its read (sync.keys_changed_since), and leaves it out.
  const table = byTargetTable("firespring_network_state")!;
  assert.equal((await validate(table.targetTable, true)).match, true);
  const hot = `hot-${crypto.randomUUID().slice(0, 8)}`;
  let writing = true;
  const writes = (async () => {
    for (let i = 0; writing; i++) {
      await dynamo(table.region).send(
        new PutItemCommand({
          TableName: table.sourceTable,
          Item: { state_key: S(hot), value: { M: { n: N(i) } }, updated_at: N(1770379200 + i) },
        }),
      );
    }
  })();
  try {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const during = await validate(table.targetTable);
    assert.equal(during.match, true, `the hot key was reported: ${JSON.stringify(during)}`);
  } finally {
    writing = false;
    await writes;
  }
});
