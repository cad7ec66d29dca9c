/**
 * The re-reads of collapsed keys with a fake database and DynamoDB: each claimed key read
 * consistently and merged as a repair seen when it was queued, finished or failed with
 * its cause, claims repeated until none waits or the budget is spent.
 */

import assert from "node:assert/strict";
import type { ValidatorDeps } from "./validator_deps.ts";
import {
  PROBLEM_LINES_PER_REQUEST,
  REREAD_CPU_MS,
  rereadCollapsedKeys,
} from "./collapsed_rereads.ts";
import { POINT_READ_CPU_MS } from "./point_reads.ts";
import { awsError, fakeCpuMeter, fakeDynamo, fakeSql, type Statement } from "./testing_fakes.ts";

const QUEUED = "2026-02-01 12:00:00.123456+00";

/** A queue of `keys` (visitor ids, or [table, key]), handed out `perClaim` at a time. */
function queueDb(keys: (string | [string, Record<string, string>])[], perClaim = 25) {
  const waiting = keys.map((k) =>
    typeof k === "string"
      ? { target_table: "firespring_visitors", row_key: { visitor_id: k }, queued_at: QUEUED }
      : { target_table: k[0], row_key: k[1], queued_at: QUEUED }
  );
  const finished: { table: unknown; key: unknown; queuedAt: unknown; error: unknown }[] = [];
  const merged: { op: string; range_key?: number; source: string; seen_at: string }[] = [];
  const stale: { table: unknown; reason: unknown }[] = [];
  const db = fakeSql((s: Statement) => {
    if (s.text.includes("sync.claim_rereads")) return waiting.splice(0, perClaim);
    if (s.text.includes("sync.return_reread")) return [];
    if (s.text.includes("sync.finish_reread")) {
      const [table, key, queuedAt, error] = s.values;
      finished.push({ table, key: JSON.parse(String(key)), queuedAt, error });
      return [];
    }
    if (s.text.includes("sync.merge_changes")) {
      const changes = JSON.parse(String(s.values[1]));
      merged.push(...changes);
      return [{ applied: changes.length }];
    }
    if (s.text.includes("sync.heal_table")) {
      stale.push({ table: s.values[0], reason: s.values[1] });
      return [{ job: "91" }];
    }
    return undefined;
  });
  return { ...db, finished, merged, stale };
}

const items = (id: string) => ({
  Items: [{ session_id: { S: id }, timestamp: { N: "50" }, pages_viewed: { N: "1" } }],
});

/** A re-read of `db`'s queued keys through `dynamo`; its outcome and the lines it logged. */
async function rereadLogged(
  db: ReturnType<typeof queueDb>,
  dynamo: ReturnType<typeof fakeDynamo>,
) {
  const lines: string[] = [];
  const outcome = await rereadCollapsedKeys({
    sql: db.sql,
    dynamo: dynamo.dynamo,
    log: (line) => lines.push(line),
  });
  return { outcome, lines };
}

/** A key's re-read failure as the repair names it: the key, the table, DynamoDB's message. */
function causeOf(visitor: string, message: string): string {
  return `reading key {"visitor_id":"${visitor}"} of firespring_visitors to repair it: ${message}`;
}

Deno.test("a queued key is read consistently and merged as a repair seen when it was queued", async () => {
  const db = queueDb(["v-1"]);
  const dynamo = fakeDynamo(() => items("v-1"));
  const outcome = await rereadCollapsedKeys({ sql: db.sql, dynamo: dynamo.dynamo });
  assert.deepEqual(outcome, { reread: 1, failed: 0 });
  assert.deepEqual(dynamo.sent.map((c) => [c.name, c.input.ConsistentRead]), [[
    "QueryCommand",
    true,
  ]]);
  assert.deepEqual(db.merged.map((c) => [c.op, c.range_key, c.source, c.seen_at]), [
    ["upsert", 50, "repair", QUEUED],
  ], "the purged item comes back");
  assert.equal(
    db.matching("from sync.observations").length,
    0,
    "observations it did not read are left to their own stream records",
  );
  assert.deepEqual(db.finished, [{
    table: "firespring_visitors",
    key: { visitor_id: "v-1" },
    queuedAt: QUEUED,
    error: null,
  }], "finished with the exact queued_at it was claimed with");
  assert.equal(db.matching("sync.claim_rereads").length, 2, "claims until none waits");
});

Deno.test("a failed re-read keeps its cause, names table and key in the log, and the others go on", async () => {
  const db = queueDb(["v-1", "v-2"]);
  const dynamo = fakeDynamo((c) => {
    const id = (c.input.ExpressionAttributeValues as Record<string, { S: string }>)[":h"].S;
    if (id === "v-1") throw awsError("ProvisionedThroughputExceededException", "throttled");
    return items(id);
  });
  const { outcome, lines } = await rereadLogged(db, dynamo);
  assert.deepEqual(outcome, { reread: 1, failed: 1 });
  assert.deepEqual(db.finished.map((f) => [f.key, f.error]), [
    [{ visitor_id: "v-1" }, causeOf("v-1", "throttled")],
    [{ visitor_id: "v-2" }, null],
  ]);
  assert.deepEqual(lines, [
    `re-read of firespring_visitors {"visitor_id":"v-1"} failed: ${causeOf("v-1", "throttled")}`,
  ]);
});

Deno.test("when every re-read fails, the first few get a line and the rest a count, each cause kept", async () => {
  const ids = Array.from({ length: 10 }, (_, i) => `v-${i}`);
  const db = queueDb(ids, 4);
  const dynamo = fakeDynamo(() => {
    throw awsError("InternalServerError", "no answer from DynamoDB");
  });
  const { outcome, lines } = await rereadLogged(db, dynamo);
  assert.deepEqual(outcome, { reread: 0, failed: 10 });
  assert.deepEqual(
    db.finished.map((f) => [f.key, f.error]),
    ids.map((id) => [{ visitor_id: id }, causeOf(id, "no answer from DynamoDB")]),
    "every key keeps its cause in the queue",
  );
  assert.equal(lines.length, PROBLEM_LINES_PER_REQUEST + 1, lines.join("\n"));
  assert.deepEqual(lines.slice(0, PROBLEM_LINES_PER_REQUEST), [
    `re-read of firespring_visitors {"visitor_id":"v-0"} failed: ${
      causeOf("v-0", "no answer from DynamoDB")
    }`,
    `re-read of firespring_visitors {"visitor_id":"v-1"} failed: ${
      causeOf("v-1", "no answer from DynamoDB")
    }`,
    `re-read of firespring_visitors {"visitor_id":"v-2"} failed: ${
      causeOf("v-2", "no answer from DynamoDB")
    }`,
  ]);
  assert.equal(
    lines.at(-1),
    "re-reads: 0 keys re-read, 10 failed; 7 more problems not logged one by one " +
      "(each failed key's cause is in sync.collapsed_rereads.error; an item left out " +
      "shows in its table's next validation as unmappable)",
  );
});

Deno.test("a key whose partition is too large to read whole is healed by a backfill, not tried for ever", async () => {
  const db = queueDb(["v-big"]);
  let pages = 0;
  const dynamo = fakeDynamo(() => {
    pages++;
    return {
      ...items("v-big"),
      LastEvaluatedKey: { session_id: { S: "v-big" }, timestamp: { N: String(pages) } },
    };
  });
  const { outcome, lines } = await rereadLogged(db, dynamo);
  assert.deepEqual(outcome, { reread: 1, failed: 0 }, "done here: the backfill brings it back");
  assert.deepEqual(db.finished.map((f) => [f.key, f.error]), [[{ visitor_id: "v-big" }, null]]);
  assert.equal(db.stale.length, 1);
  assert.equal(db.stale[0].table, "firespring_visitors");
  assert.match(
    String(db.stale[0].reason),
    /^firespring_visitors: re-reading key \{"visitor_id":"v-big"\}: firespring-backdoor-visitors-dev: key \{"visitor_id":"v-big"\}: its partition holds more than 8 Query pages/,
  );
  assert.ok(lines.some((l) => l.endsWith(": backfill job 91")), lines.join("\n"));
  assert.equal(db.merged.length, 0, "nothing merged from a partial read");
});

Deno.test("an unmappable item is left out, named in the log; the others come back", async () => {
  const db = queueDb(["v-1"]);
  const dynamo = fakeDynamo(() => ({
    Items: [
      { session_id: { S: "v-1" }, timestamp: { S: "not a number" } },
      { session_id: { S: "v-1" }, timestamp: { N: "50" }, pages_viewed: { N: "1" } },
    ],
  }));
  const { outcome, lines } = await rereadLogged(db, dynamo);
  assert.deepEqual(outcome, { reread: 1, failed: 0 });
  assert.deepEqual(db.merged.map((c) => [c.op, c.range_key]), [["upsert", 50]]);
  assert.equal(db.finished[0].error, null, "the key is done: the bad item is its own problem");
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    /^re-read of firespring_visitors \{"visitor_id":"v-1"\}: item \{.*\} cannot be mapped, so it was left out: /,
  );
});

Deno.test("a key of a table that does not collapse is failed, naming the table", async () => {
  const db = queueDb([["firespring_segments", { segment_id: "s" }]]);
  const dynamo = fakeDynamo(() => ({}));
  await rereadCollapsedKeys({ sql: db.sql, dynamo: dynamo.dynamo });
  assert.equal(dynamo.sent.length, 0);
  assert.equal(db.finished[0].error, "firespring_segments is not a collapsed target table");
});

/** A DynamoDB whose every visitor's partition holds its items (`items`). */
function partitions() {
  return fakeDynamo((c) =>
    items((c.input.ExpressionAttributeValues as Record<string, { S: string }>)[":h"].S)
  );
}

Deno.test("the budget is checked before each key: keys not reached go back untried", async () => {
  const db = queueDb(["v-1", "v-2", "v-3"]);
  const dynamo = partitions();
  const cpu = fakeCpuMeter(0);
  const deps: ValidatorDeps = {
    sql: db.sql,
    dynamo: dynamo.dynamo,
    // Spent once the first key is merged.
    cpu: { ...cpu, usedMs: () => db.merged.length >= 1 ? 1_100 : 0 },
    budget: { cpuMs: 1_100, wallMs: 60_000 },
  };
  assert.deepEqual(await rereadCollapsedKeys(deps), { reread: 1, failed: 0 });
  assert.equal(db.matching("sync.claim_rereads").length, 1, "no claim past the budget");
  assert.deepEqual(
    db.matching("sync.return_reread").map((s) => JSON.parse(String(s.values[1]))),
    [{ visitor_id: "v-2" }, { visitor_id: "v-3" }],
    "the keys not reached are given back untried",
  );
});

Deno.test("each re-read is charged to the isolate's meter, so the estimate alone stops a request", async () => {
  const db = queueDb(["v-1", "v-2", "v-3"]);
  const dynamo = partitions();
  // The hosted meter: nothing measured, only what is charged counts: each key's Query
  // (one page here) and its statements.
  const cpu = fakeCpuMeter(0);
  const perKey = POINT_READ_CPU_MS + REREAD_CPU_MS;
  assert.equal(perKey, 8);
  const deps: ValidatorDeps = {
    sql: db.sql,
    dynamo: dynamo.dynamo,
    cpu,
    budget: { cpuMs: 2 * perKey, wallMs: 60_000 },
  };
  assert.deepEqual(await rereadCollapsedKeys(deps), { reread: 2, failed: 0 });
  assert.equal(cpu.usedMs(), 2 * perKey);
  assert.deepEqual(
    db.matching("sync.return_reread").map((s) => JSON.parse(String(s.values[1]))),
    [{ visitor_id: "v-3" }],
  );
});

Deno.test("an unavailable database ends the request", async () => {
  const dynamo = fakeDynamo(() => ({}));
  const down = fakeSql(() => {
    throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6543"), { code: "ECONNREFUSED" });
  });
  await assert.rejects(
    rereadCollapsedKeys({ sql: down.sql, dynamo: dynamo.dynamo }),
    /ECONNREFUSED/,
  );
});
