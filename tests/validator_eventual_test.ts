/**
 * The validator's eventually consistent Scan against the stack (docs/sync-semantics.md,
 * "Verification"): the DynamoDB proxy serves reads without ConsistentRead up to
 * `stale_ms` (2 s) old, so a page read just after a write may carry the item as it was
 * before. Such a stale item differs from the target, which already holds the write; the
 * validator reads the key again consistently before it calls it a mismatch, so a stale
 * read never ends as a false mismatch, and a true difference is still found.
 */

import assert from "node:assert/strict";
import { batchWrite } from "../demo/load_dynamo.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { connectDb, dynamo, postWebhook, streamRecord } from "./stack_clients.ts";
import { load, N, S, validate } from "./validator_fixtures.ts";

const table = byTargetTable("firespring_traffic_sources")!;
const KEYS = 40;

/** The items of the test's keys, each with `visitors` = `value`. */
function items(prefix: string, value: number) {
  return Array.from({ length: KEYS }, (_, i) => ({
    source_id: S(`${prefix}${i}`),
    name: S(`stale ${i}`),
    visitors: N(value),
  }));
}

/** The target's row of each item, through the webhook's one merge (signed MODIFY records). */
async function mergeIntoTarget(rows: ReturnType<typeof items>, attempt: number) {
  const records = rows.map((item, i) =>
    streamRecord(
      table.sourceTable,
      "MODIFY",
      { source_id: item.source_id },
      item,
      // After every number the stack's stream gives (the load's records, the writes that
      // follow): the ordering guard orders two stream changes by their numbers alone
      // (docs/sync-semantics.md). AWS's are 21 to 40 digits, and so are the stack's
      // (local-stack/aws/sequence_numbers.ts): 40 digits from 9 are past them all.
      `9${String(attempt * 1000 + i).padStart(39, "0")}`,
      table.region,
      // A second ahead of the write that follows.
      Math.floor(Date.now() / 1000) + 1,
    )
  );
  const response = await postWebhook(JSON.stringify({ records }));
  assert.equal(response.status, 200, await response.text());
  const sql = connectDb();
  try {
    const [{ n }] = await sql`select count(*)::int as n from public.firespring_traffic_sources
                              where source_id like ${`${prefix(rows)}%`}
                                and visitor_count = ${Number(rows[0].visitors.N)}`;
    assert.equal(n, KEYS, "the target holds the next version before the source is written");
  } finally {
    await sql.end();
  }
}

/** The test's key prefix, from its first item. */
const prefix = (rows: ReturnType<typeof items>) => rows[0].source_id.S!.replace(/0$/, "");

/** The run's looks at divergent keys (0 when the Scan found none). */
async function looksOf(runId: number): Promise<number> {
  const sql = connectDb();
  try {
    const [run] = await sql`select looks from public.sync_checksums where id = ${runId}`;
    return Number(run.looks);
  } finally {
    await sql.end();
  }
}

Deno.test("a stale Scan page never ends as a false mismatch; a true difference is still found", async () => {
  assert.equal((await validate(table.targetTable, true)).match, true);
  const p = `stale-${crypto.randomUUID().slice(0, 8)}-`;
  await load(table.targetTable, items(p, 1), p);
  // The target first gets each key's next version (as the stream will deliver it), then
  // the source is written and validated at once: the only way a key can differ is a
  // Scan page that read it stale. Tried again (with another version) until a run has
  // seen a stale item, which a consistent Scan never does: each a 1 - w/2 chance per key
  // for a read w seconds after its write. Up to 12 times: a run whose request waits for
  // a place at the validator (VALIDATOR_RUNS_PER_ISOLATE, taken by other files' runs of the
  // same batch) may read only after the stale window, and sees nothing stale.
  let sawStale = false;
  for (let attempt = 1; attempt <= 12 && !sawStale; attempt++) {
    const next = items(p, 1 + attempt);
    await mergeIntoTarget(next, attempt);
    await batchWrite(dynamo(table.region), table.sourceTable, next);
    const result = await validate(table.targetTable);
    assert.equal(result.match, true, `a stale read ended as a mismatch: ${JSON.stringify(result)}`);
    sawStale = await looksOf(result.runId) > 0;
  }
  assert.ok(sawStale, "no run saw a stale item: is the validator's Scan still consistent?");

  // A true difference, with the source written a moment before as well: found and named.
  const sql = connectDb();
  try {
    // Drift made on purpose, not an edit to write back (20261128002500_write_back.sql).
    await sql.begin(async (tx) => {
      await tx`set local sync.write_back_skip = 'on'`;
      await tx`update public.firespring_traffic_sources set visitor_count = 999,
                sync_changed_at = now() - interval '1 hour' where source_id = ${`${p}7`}`;
    });
  } finally {
    await sql.end();
  }
  const drifted = await validate(table.targetTable);
  assert.equal(drifted.match, false);
  assert.deepEqual(drifted.different, [{ source_id: `${p}7` }]);
  assert.deepEqual(drifted.missing, []);
  assert.deepEqual(drifted.unexpected, []);
  const repaired = await validate(table.targetTable, true);
  assert.equal(repaired.match, true);
});
