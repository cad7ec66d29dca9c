import assert from "node:assert/strict";
import type postgres from "postgres";
import { deadLetterFingerprint, logDeadLetters, recordDeadLetters } from "./dead_letter_writer.ts";
import { DynamoNumber } from "./dynamo_numbers.ts";
import { type DeadLetter, mapScannedItem, mapStreamRecord } from "./record_mapping.ts";
import { byTargetTable } from "./table_registry.ts";
import { actionStreamRecord as streamRecord } from "./testing_fakes.ts";
import type { StreamRecord } from "./webhook_envelope.ts";

/** A transaction that keeps the dead-letter rows inserted. */
function fakeTx() {
  const letters: Record<string, unknown>[] = [];
  const tx = {
    unsafe: (query: string, params: string[]) => {
      if (query.includes("insert into sync.dead_letters")) letters.push(...JSON.parse(params[0]));
      return Promise.resolve([]);
    },
  };
  return { tx: tx as unknown as postgres.TransactionSql, letters };
}

Deno.test("the same record twice is one dead letter; a Scan copy keeps the later read", async () => {
  const actions = byTargetTable("firespring_actions")!;
  const item = { action_id: { S: "p" }, n: { N: "abc" } };
  const early = mapScannedItem(actions, item, new Date("2026-02-01T00:00:00Z"));
  const late = mapScannedItem(actions, item, new Date("2026-02-03T00:00:00Z"));
  const redelivered = mapStreamRecord({
    ...streamRecord("q", "7"),
    dynamodb: { ...streamRecord("q", "7").dynamodb, NewImage: item },
  } as StreamRecord);
  assert.ok(!early.ok && !late.ok && !redelivered.ok);
  assert.equal(deadLetterFingerprint(early.deadLetter), deadLetterFingerprint(late.deadLetter));
  const fake = fakeTx();
  await recordDeadLetters(fake.tx, [
    late.deadLetter,
    early.deadLetter,
    redelivered.deadLetter,
    redelivered.deadLetter,
  ]);
  assert.equal(fake.letters.length, 2);
  assert.equal(fake.letters[0].times_seen, 2);
  assert.equal(fake.letters[0].position_at, "2026-02-03T00:00:00.000Z");
  assert.equal(fake.letters[1].times_seen, 2);
});

Deno.test("a repair's letter is apart from a backfill page's letter of the same item", async () => {
  // A backfill's end spares a key whose page's letter it holds (…3600_sweep_in_chunks.sql):
  // a repair seeing the same item later must not turn that letter into a repair's.
  const actions = byTargetTable("firespring_actions")!;
  const item = { action_id: { S: "p" }, n: { N: "abc" } };
  const page = mapScannedItem(actions, item, new Date("2026-02-01T00:00:00Z"), "backfill");
  const repair = mapScannedItem(actions, item, new Date("2026-02-03T00:00:00Z"), "repair");
  const again = mapScannedItem(actions, item, new Date("2026-02-05T00:00:00Z"), "repair");
  assert.ok(!page.ok && !repair.ok && !again.ok);
  assert.notEqual(deadLetterFingerprint(page.deadLetter), deadLetterFingerprint(repair.deadLetter));
  assert.equal(deadLetterFingerprint(repair.deadLetter), deadLetterFingerprint(again.deadLetter));
  const fake = fakeTx();
  await recordDeadLetters(fake.tx, [page.deadLetter, repair.deadLetter, again.deadLetter]);
  assert.deepEqual(
    fake.letters.map((l) => [l.position_source, l.position_at, l.times_seen]),
    [["backfill", "2026-02-01T00:00:00.000Z", 1], ["repair", "2026-02-05T00:00:00.000Z", 2]],
  );
});

Deno.test("a record jsonb cannot hold is kept as its exact JSON text", async () => {
  const actions = byTargetTable("firespring_actions")!;
  const poison = mapScannedItem(actions, { action_id: { S: "z\u0000" } }, new Date());
  assert.ok(!poison.ok);
  const fake = fakeTx();
  await recordDeadLetters(fake.tx, [poison.deadLetter]);
  const [letter] = fake.letters;
  assert.equal(letter.record, null);
  assert.deepEqual(JSON.parse(letter.record_text as string), poison.deadLetter.record);
  assert.ok(!(letter.reason as string).includes("\u0000"), "the reason is storable text");
});

Deno.test("a record with a number past Postgres's numeric is kept as its exact JSON text", async () => {
  const letter: DeadLetter = {
    sourceTable: null,
    targetTable: "firespring_actions",
    eventId: null,
    record: { action_id: "a", n: new DynamoNumber("1e200000") },
    reason: 'firespring_actions [action_id="a"]: n: out of DynamoDB\'s number range',
    position: null,
    rowKey: null,
  };
  const fake = fakeTx();
  await recordDeadLetters(fake.tx, [letter]);
  assert.equal(fake.letters[0].record, null, "jsonb would refuse it: the whole batch would fail");
  assert.equal(fake.letters[0].record_text, '{"action_id":"a","n":1e200000}');
});

Deno.test("a batch's dead letters log three lines, then how many more, by table", () => {
  const letter = (i: number, targetTable: string | null): DeadLetter => ({
    sourceTable: null,
    targetTable,
    eventId: `e${i}`,
    record: null,
    reason: `reason ${i}`,
    position: null,
    rowKey: null,
  });
  const lines: string[] = [];
  const line = (l: DeadLetter) => `dead letter: ${l.reason}`;
  logDeadLetters([letter(0, "t"), letter(1, "t")], line, (l) => lines.push(l));
  assert.deepEqual(lines, ["dead letter: reason 0", "dead letter: reason 1"]);
  lines.length = 0;
  const many = Array.from(
    { length: 1000 },
    (_, i) =>
      letter(i, i % 4 === 0 ? "firespring_segments" : i % 4 === 1 ? null : "firespring_actions"),
  );
  logDeadLetters(many, line, (l) => lines.push(l));
  assert.deepEqual(lines, [
    "dead letter: reason 0",
    "dead letter: reason 1",
    "dead letter: reason 2",
    "…and 997 more dead letters in this batch (firespring_actions 499, firespring_segments 249, " +
    "no known table 249; sync.dead_letters holds each, with its key and cause)",
  ]);
  lines.length = 0;
  logDeadLetters([0, 1, 2, 3].map((i) => letter(i, "t")), line, (l) => lines.push(l));
  assert.equal(
    lines.at(-1),
    "…and 1 more dead letter in this batch (t 1; sync.dead_letters holds each, with its key and cause)",
  );
});
