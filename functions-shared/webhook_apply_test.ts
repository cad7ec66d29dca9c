import assert from "node:assert/strict";
import { mapStreamRecord, type TableChange } from "./record_mapping.ts";
import { applyWebhookBatch, changesByTable } from "./webhook_apply.ts";
import { fakeDb, segment } from "./webhook_fakes.ts";

function changes(...ids: string[]): TableChange[] {
  return ids.map((id, i) => {
    const mapped = mapStreamRecord(segment(id, String(100 + i)) as never);
    if (!mapped.ok) throw new Error(mapped.deadLetter.reason);
    return mapped.value;
  });
}

const arn = "arn:aws:dynamodb:us-east-1:0:table/t/stream/s";
const records = { [arn]: ["100"] };
const noted = [{ arn, seq: "100" }];

Deno.test("a batch without dead letters is applied in one statement", async () => {
  const db = fakeDb();
  const outcome = await applyWebhookBatch(db.sql, {
    webhookId: "msg_1",
    changes: changes("s-1", "s-2"),
    deadLetters: [],
    records,
  });
  assert.deepEqual(outcome, { replayed: false, applied: 2, deadLettered: 0, refused: [] });
  assert.deepEqual(db.statements.map((s) => s.slice(0, 40)), [
    "select replayed, applied, failed_state, ",
  ]);
  assert.deepEqual(db.noted, noted);
  assert.ok(db.deliveries.has("msg_1"));
});

Deno.test("a replay in one statement writes nothing and says so", async () => {
  const db = fakeDb({ knownIds: ["msg_old"] });
  const outcome = await applyWebhookBatch(db.sql, {
    webhookId: "msg_old",
    changes: changes("s-1"),
    deadLetters: [],
    records,
  });
  assert.deepEqual(outcome, { replayed: true });
  assert.equal(db.applied, 0);
  assert.deepEqual(db.noted, []);
});

Deno.test("a change Postgres refuses sends the batch through savepoints, once", async () => {
  const db = fakeDb({ refuseData: true });
  const outcome = await applyWebhookBatch(db.sql, {
    webhookId: "msg_2",
    changes: changes("s-1", "s-2"),
    deadLetters: [],
    records,
  });
  assert.deepEqual(outcome, { replayed: false, applied: 2, deadLettered: 0, refused: [] });
  assert.equal(db.committed, 1, "the refused statement rolled back; the savepoint path committed");
  assert.ok(db.statements[0].includes("sync.try_apply_webhook_batch"));
  assert.ok(
    db.statements[1].includes("sync.begin_webhook_delivery"),
    "the delivery, recorded again",
  );
  assert.deepEqual(db.noted, noted);
});

Deno.test("a batch with dead letters goes straight to the savepoint path", async () => {
  const db = fakeDb();
  const bad = segment("s-9", "300");
  bad.dynamodb.NewImage = { segment_id: { S: "s-9" }, value: { N: "abc" } } as never;
  const mapped = mapStreamRecord(bad as never);
  assert.equal(mapped.ok, false);
  const outcome = await applyWebhookBatch(db.sql, {
    webhookId: "msg_3",
    changes: changes("s-1"),
    deadLetters: mapped.ok ? [] : [mapped.deadLetter],
    records,
  });
  assert.deepEqual(outcome, { replayed: false, applied: 1, deadLettered: 1, refused: [] });
  assert.equal(db.statements.some((s) => s.includes("try_apply_webhook_batch")), false);
  assert.equal(db.deadLettered, 1);
});

/** A dead letter of a record whose value is not a number. */
function poisonLetter() {
  const bad = segment("s-9", "300");
  bad.dynamodb.NewImage = { segment_id: { S: "s-9" }, value: { N: "abc" } } as never;
  const mapped = mapStreamRecord(bad as never);
  if (mapped.ok) throw new Error("the record should not map");
  return mapped.deadLetter;
}

Deno.test("a replay through the savepoint path (a batch with dead letters) writes nothing and says so", async () => {
  const db = fakeDb({ knownIds: ["msg_old"] });
  const outcome = await applyWebhookBatch(db.sql, {
    webhookId: "msg_old",
    changes: changes("s-1"),
    deadLetters: [poisonLetter()],
    records,
  });
  assert.deepEqual(outcome, { replayed: true });
  assert.deepEqual([db.committed, db.applied, db.deadLettered], [0, 0, 0]);
  assert.deepEqual(db.noted, []);
  assert.equal(db.statements.some((s) => s.includes("merge_changes")), false, "nothing merged");
});

Deno.test("a change Postgres refuses in its savepoint is dead-lettered and returned as refused", async () => {
  const refusal = Object.assign(new Error('invalid input syntax for type integer: "x"'), {
    code: "22P02",
  });
  const db = fakeDb({ mergeError: refusal });
  const outcome = await applyWebhookBatch(db.sql, {
    webhookId: "msg_4",
    changes: changes("s-1"),
    deadLetters: [],
    records,
  });
  assert.ok(!outcome.replayed);
  assert.deepEqual([outcome.applied, outcome.deadLettered], [0, 1]);
  assert.equal(outcome.refused.length, 1);
  assert.match(
    outcome.refused[0].reason,
    /^firespring_segments \[segment_id="s-1"\]: Postgres refused the change: invalid input syntax .*\(SQLSTATE 22P02\)$/,
  );
  assert.deepEqual(outcome.refused[0].rowKey, { segment_id: "s-1" });
  assert.equal(db.deadLettered, 1);
  assert.equal(db.committed, 1);
});

Deno.test("changes are grouped per target table in their wire form", () => {
  const grouped = changesByTable(changes("s-1", "s-2"));
  assert.deepEqual(Object.keys(grouped), ["firespring_segments"]);
  assert.equal(grouped.firespring_segments.length, 2);
  assert.equal((grouped.firespring_segments[0] as { op: string }).op, "upsert");
});
