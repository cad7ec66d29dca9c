/**
 * Property: whatever order, batching and repetition changes arrive in, the merge ends
 * in the state that the newest change of each item describes (docs/sync-semantics.md, "The
 * one property"). Checked with fast-check against the real sync.merge_changes, for a
 * plain table and for a collapsed one.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { connectDb } from "./stack_clients.ts";

interface Event {
  key: number;
  range: number;
  op: "upsert" | "delete";
  value: number;
  seq: number;
}

/** Events with distinct, increasing sequence numbers (as one shard gives them). */
const events = fc.array(
  fc.record({
    key: fc.integer({ min: 0, max: 2 }),
    range: fc.constantFrom(100, 200, 300),
    op: fc.constantFrom<"upsert" | "delete">("upsert", "upsert", "delete"),
    value: fc.integer({ min: 0, max: 1000 }),
  }),
  { minLength: 1, maxLength: 12 },
).map((list) => list.map((e, i) => ({ ...e, seq: 1000 + i })));

/** A delivery: the events shuffled, some repeated, cut into batches. */
const delivery = (list: Event[]) =>
  fc.tuple(
    fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }),
    fc.array(fc.integer({ min: 0, max: list.length - 1 }), { maxLength: 4 }),
    fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 6 }),
  ).map(([order, repeats, cuts]) => {
    const all = [...order, ...repeats.map((i) => list[i])];
    const batches: Event[][] = [];
    for (let i = 0, c = 0; i < all.length; c++) {
      const size = cuts[c % cuts.length];
      batches.push(all.slice(i, i + size));
      i += size;
    }
    return batches;
  });

const seqText = (seq: number) => String(seq).padStart(21, "0");

Deno.test("plain table: any delivery order converges to the newest change of each key", async () => {
  const sql = connectDb();
  try {
    await fc.assert(
      fc.asyncProperty(
        events.chain((list) => fc.tuple(fc.constant(list), delivery(list))),
        async ([list, batches]) => {
          const run = `prop-${crypto.randomUUID().slice(0, 8)}-`;
          for (const batch of batches) {
            const changes = batch.map((e) => ({
              op: e.op,
              seq: seqText(e.seq),
              changed_at: "2026-02-06T10:00:00Z",
              source: "stream",
              row: e.op === "upsert"
                ? { segment_id: `${run}${e.key}`, member_count: e.value, segment_criteria: {} }
                : { segment_id: `${run}${e.key}` },
            }));
            await sql`select * from sync.merge_changes('firespring_segments', ${
              JSON.stringify(changes)
            }::text::jsonb)`;
          }
          const expected = new Map<string, number>();
          for (const key of [0, 1, 2]) {
            const last = list.filter((e) => e.key === key).at(-1);
            if (last?.op === "upsert") expected.set(`${run}${key}`, last.value);
          }
          const rows = await sql`select segment_id, member_count::int as v from firespring_segments
                               where segment_id like ${run + "%"}`;
          assert.deepEqual(new Map(rows.map((r) => [r.segment_id, r.v])), expected);
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    await sql`delete from firespring_segments where segment_id like 'prop-%'`;
    await sql`delete from sync.tombstones where row_key ->> 'segment_id' like 'prop-%'`;
    await sql.end();
  }
});

Deno.test("collapsed table: any delivery order converges to the latest live observation", async () => {
  const sql = connectDb();
  try {
    await fc.assert(
      fc.asyncProperty(
        events.chain((list) => fc.tuple(fc.constant(list), delivery(list))),
        async ([list, batches]) => {
          const run = `prop-${crypto.randomUUID().slice(0, 8)}-`;
          for (const batch of batches) {
            const changes = batch.map((e) => ({
              op: e.op,
              seq: seqText(e.seq),
              changed_at: "2026-02-06T10:00:00Z",
              source: "stream",
              range_key: e.range,
              rank: 0,
              row: e.op === "upsert"
                ? { visitor_id: `${run}${e.key}`, page_views: e.value, session_data: {} }
                : { visitor_id: `${run}${e.key}` },
            }));
            await sql`select * from sync.merge_changes('firespring_visitors', ${
              JSON.stringify(changes)
            }::text::jsonb)`;
          }
          // The model: each observation is what its newest change says; the row is the
          // live observation with the largest range key.
          const expected = new Map<string, number>();
          for (const key of [0, 1, 2]) {
            const live = [100, 200, 300]
              .map((range) => list.filter((e) => e.key === key && e.range === range).at(-1))
              .filter((e) => e?.op === "upsert") as Event[];
            if (live.length > 0) expected.set(`${run}${key}`, live.at(-1)!.value);
          }
          const rows = await sql`select visitor_id, page_views::int as v from firespring_visitors
                               where visitor_id like ${run + "%"}`;
          assert.deepEqual(new Map(rows.map((r) => [r.visitor_id, r.v])), expected);
        },
      ),
      { numRuns: 40 },
    );
  } finally {
    await sql`delete from firespring_visitors where visitor_id like 'prop-%'`;
    await sql`delete from sync.observations where row_key ->> 'visitor_id' like 'prop-%'`;
    await sql.end();
  }
});
