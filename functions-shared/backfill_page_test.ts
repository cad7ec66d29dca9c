import assert from "node:assert/strict";
import { commitPage, LOCK_WAIT_MS } from "./backfill_page.ts";
import { backfillDb, claim, item } from "./backfill_worker_fakes.ts";
import { fakeCpuMeter } from "./testing_fakes.ts";

const refused = Object.assign(new Error("invalid input syntax"), { code: "22P02" });
const checkpoint = { worker: "worker-a", nextKey: null, items: 2, done: true };
const page = { items: [item("a"), item("b")], readAt: new Date(0), nextKey: null };

/**
 * A page whose one statement takes `statementMs` on `clock`, then fails on a value; the
 * careful path's wait for the lock answers with `lockWait`.
 */
function refusedAfter(statementMs: number, lockWait?: () => unknown[]) {
  const clock = { ms: 0 };
  const db = backfillDb([], {
    checkpoint: (s) => {
      if (!s.text.includes("sync.merge_changes")) return [];
      clock.ms += statementMs;
      throw refused;
    },
    lockWait,
  });
  const deps = { cpu: fakeCpuMeter(), lockWaitLimited: true, now: () => clock.ms };
  return { db, deps };
}

/** The careful path's wait for the lock: its table and its milliseconds. */
function carefulWait(db: ReturnType<typeof backfillDb>): unknown[] {
  const waits = db.statements.filter((s) => s.text.startsWith("select sync.wait_for_merge_lock("));
  assert.equal(waits.length, 1);
  assert.equal(waits[0].tx, 1, "in the careful path's transaction");
  return waits[0].values;
}

Deno.test("the careful path waits for the table's lock only what the one statement's wait left", async () => {
  // The one statement waited 26 s for the lock, then Postgres refused a value: 4 s left.
  const { db, deps } = refusedAfter(26_000);
  const committed = await commitPage(db.sql, claim(), page, checkpoint, deps);
  assert.equal(committed.rows, 2);
  assert.deepEqual(carefulWait(db), ["firespring_segments", 4_000]);
});

Deno.test("the careful path waits at least 1 s, however long the one statement took", async () => {
  const { db, deps } = refusedAfter(45_000);
  await commitPage(db.sql, claim(), page, checkpoint, deps);
  assert.deepEqual(carefulWait(db), ["firespring_segments", 1_000]);
});

Deno.test("a page with an item that does not map takes the careful path at once, waiting the whole 30 s", async () => {
  const { db, deps } = refusedAfter(0);
  const bad = { items: [item("a"), { name: { S: "no key" } }], readAt: new Date(0), nextKey: null };
  const committed = await commitPage(db.sql, claim(), bad, checkpoint, deps);
  assert.equal(committed.rows, 1, "the item that maps is written");
  assert.equal(
    db.matching("sync.merge_changes").some((s) => s.tx === 0),
    false,
    "no one statement",
  );
  assert.deepEqual(carefulWait(db), ["firespring_segments", LOCK_WAIT_MS]);
});

Deno.test("the careful path's lock timeout names the wait it had, not the whole 30 s", async () => {
  const timedOut = Object.assign(new Error("canceling statement due to lock timeout"), {
    code: "55P03",
    where: 'SQL function "wait_for_merge_lock" statement 1',
  });
  const { db, deps } = refusedAfter(29_000, () => {
    throw timedOut;
  });
  await assert.rejects(
    commitPage(db.sql, claim(), page, checkpoint, deps),
    /the merge lock of firespring_segments was held by another transaction for 1 s /,
  );
});
