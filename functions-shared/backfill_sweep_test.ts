/**
 * A backfill's end chunk by chunk, with a fake database: each chunk is one statement, a
 * run stops between chunks when its budget is spent (having run one at least) and gives
 * the sweep back, a worker takes the waiting ends one after the other under a lease, and
 * a failing chunk is counted before its error goes on.
 */

import assert from "node:assert/strict";
import { sweepDue, sweepJob } from "./backfill_sweep.ts";
import { fakeSql } from "./testing_fakes.ts";

/**
 * A database whose jobs have `chunks` chunks left, `waiting` the jobs a claim hands out,
 * `failChunk` an error for every chunk.
 */
function sweepDb(
  chunks: number,
  waiting: (string | null)[] = [],
  failChunk?: Error,
  status = "done",
) {
  let left = chunks;
  return fakeSql((s) => {
    if (s.text.includes("sync.sweep_unseen_chunk(")) {
      if (failChunk) throw failChunk;
      return [{ over: --left <= 0 }];
    }
    if (s.text.includes("sync.claim_sweep(")) {
      const job = waiting.shift() ?? null;
      return [{ job, table: job && "firespring-backdoor-segments-dev" }];
    }
    if (s.text.includes("sync.release_sweep(")) return [];
    if (s.text.includes("sync.note_sweep_failure(")) return [{ failed: false }];
    if (s.text.includes("select status from sync.backfill_jobs")) return [{ status }];
    return undefined;
  });
}

Deno.test("a job's end runs chunk by chunk until it is over", async () => {
  const db = sweepDb(4);
  const heard: number[] = [];
  assert.equal(
    await sweepJob(db.sql, "41", () => false, { onChunk: (n) => heard.push(n) }),
    "over",
  );
  assert.deepEqual(
    db.matching("sync.sweep_unseen_chunk(").map((s) => s.values),
    Array(4).fill(["41", null]),
    "no holder: the export command's",
  );
  assert.deepEqual(heard, [1, 2, 3], "each chunk that did not end it");
});

Deno.test("a spent budget stops between chunks, after one at least, and gives the sweep back", async () => {
  const db = sweepDb(4, ["41"]);
  assert.equal(
    await sweepDue(db.sql, "w", () => db.matching("sweep_unseen").length > 0, () => {}),
    "budget",
  );
  assert.equal(db.matching("sync.sweep_unseen_chunk(").length, 1);
  assert.deepEqual(db.matching("sync.release_sweep(")[0].values, ["41", "w"]);
});

Deno.test("the waiting ends are swept one after the other under the worker's lease", async () => {
  const lines: string[] = [];
  const db = sweepDb(1, ["41", "41"]);
  assert.equal(await sweepDue(db.sql, "w", () => false, (l) => lines.push(l)), "none");
  assert.deepEqual(
    lines,
    Array(2).fill(
      "backfill job 41 of firespring-backdoor-segments-dev: its end is over: the rows its " +
        "Scan did not see are removed",
    ),
  );
  assert.ok(db.matching("sync.sweep_unseen_chunk(").every((s) => s.values[1] === "w"));
});

Deno.test("an end over because its job was cancelled meanwhile says so, not that rows were removed", async () => {
  const lines: string[] = [];
  const db = sweepDb(1, ["41"], undefined, "cancelled");
  assert.equal(await sweepDue(db.sql, "w", () => false, (l) => lines.push(l)), "none");
  assert.deepEqual(lines, [
    "backfill job 41 of firespring-backdoor-segments-dev: its end stopped: the job is " +
    "cancelled; the rows its Scan did not see are left",
  ]);
});

Deno.test("a chunk that finds the database unavailable names the job's table", async () => {
  const lines: string[] = [];
  const down = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6543"), {
    code: "ECONNREFUSED",
  });
  const db = sweepDb(1, ["41"], down);
  await assert.rejects(sweepDue(db.sql, "w", () => false, (l) => lines.push(l)), /ECONNREFUSED/);
  assert.deepEqual(lines, [
    "backfill job 41 of firespring-backdoor-segments-dev: a chunk of its end found the " +
    "database unavailable: connect ECONNREFUSED 127.0.0.1:6543",
  ]);
});

Deno.test("a chunk that fails is counted, named in the log, and its error goes on", async () => {
  const lines: string[] = [];
  const db = sweepDb(1, ["41"], new Error("canceling statement due to statement timeout"));
  await assert.rejects(
    sweepDue(db.sql, "w", () => false, (l) => lines.push(l)),
    /statement timeout/,
  );
  assert.deepEqual(db.matching("sync.note_sweep_failure(")[0].values, [
    "41",
    "w",
    "canceling statement due to statement timeout",
  ]);
  assert.match(
    lines[0],
    /^backfill job 41 of firespring-backdoor-segments-dev: a chunk of its end failed: canceling statement/,
  );
});

Deno.test("a sweep taken over meanwhile (SY001) ends the run with nothing to do", async () => {
  const db = sweepDb(
    1,
    ["41"],
    Object.assign(new Error("no longer holds its end"), { code: "SY001" }),
  );
  assert.equal(await sweepDue(db.sql, "w", () => false, () => {}), "none");
  assert.equal(db.matching("sync.note_sweep_failure(").length, 0);
});

Deno.test("a chunk that lost to another statement (a deadlock) is given back, not counted", async () => {
  const deadlock = Object.assign(new Error("deadlock detected"), { code: "40P01" });
  const db = sweepDb(1, ["41"], deadlock);
  const lines: string[] = [];
  await assert.rejects(
    sweepDue(db.sql, "w", () => false, (l) => lines.push(l)),
    /deadlock detected/,
  );
  assert.deepEqual(lines, [
    "backfill job 41 of firespring-backdoor-segments-dev: a chunk of its end lost to another " +
    "statement: deadlock detected; given back for the next worker",
  ]);
  assert.equal(db.matching("sync.note_sweep_failure(").length, 0, "no strike toward the five");
  assert.deepEqual(db.matching("sync.release_sweep(")[0].values, ["41", "w"]);
});
