/**
 * A backfill's end chunk by chunk, with a fake database: each chunk is one statement, a
 * run stops between chunks when its budget is spent (having run one at least), and the
 * worker takes the due ends one after the other.
 */

import assert from "node:assert/strict";
import { sweepDue, sweepJob } from "./backfill_sweep.ts";
import { fakeSql } from "./testing_fakes.ts";

/** A database whose job `41` has `chunks` chunks left, and `due` the jobs left to the workers. */
function sweepDb(chunks: number, due: (string | null)[] = []) {
  let left = chunks;
  return fakeSql((s) => {
    if (s.text.includes("sync.sweep_unseen_chunk(")) return [{ over: --left <= 0 }];
    if (s.text.includes("sync.sweep_due()")) return [{ job: due.shift() ?? null }];
    return undefined;
  });
}

Deno.test("a job's end runs chunk by chunk until it is over", async () => {
  const db = sweepDb(4);
  const heard: number[] = [];
  assert.equal(await sweepJob(db.sql, "41", () => false, (n) => heard.push(n)), "over");
  assert.equal(db.matching("sync.sweep_unseen_chunk(").length, 4);
  assert.deepEqual(heard, [1, 2, 3], "each chunk that did not end it");
});

Deno.test("a spent budget stops between chunks, after one at least", async () => {
  const db = sweepDb(4);
  assert.equal(await sweepJob(db.sql, "41", () => true), "budget");
  assert.equal(db.matching("sync.sweep_unseen_chunk(").length, 1);
});

Deno.test("the due ends are swept one after the other, until none is due or the budget is spent", async () => {
  const lines: string[] = [];
  const db = sweepDb(1, ["41", "41"]);
  assert.equal(await sweepDue(db.sql, "w", () => false, (l) => lines.push(l)), "none");
  assert.equal(lines.length, 2);
  const spent = sweepDb(1, ["41"]);
  assert.equal(await sweepDue(spent.sql, "w", () => true, () => {}), "budget");
  assert.equal(spent.matching("sync.sweep_due()").length, 0, "nothing asked once spent");
});
