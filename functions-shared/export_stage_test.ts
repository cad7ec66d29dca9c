import assert from "node:assert/strict";
import { copyField, pageCopyText, STAGED_COLUMNS } from "./export_stage.ts";
import { bySourceTable } from "./table_registry.ts";

const ACTIONS = bySourceTable("firespring-backdoor-actions-dev")!;
const VISITORS = bySourceTable("firespring-backdoor-visitors-dev")!;
const AT = new Date("2026-02-06T12:00:00Z");

/** A COPY text line back into its fields (the inverse of copyField, for the tests). */
function fields(line: string): (string | null)[] {
  return line.split("\t").map((f) =>
    f === "\\N"
      ? null
      : f.replace(/\\(.)/g, (_, c) => c === "t" ? "\t" : c === "n" ? "\n" : c === "r" ? "\r" : c)
  );
}

Deno.test("copyField writes null as \\N and escapes COPY's specials", () => {
  assert.equal(copyField(null), "\\N");
  assert.equal(copyField(undefined), "\\N");
  assert.equal(copyField(12), "12");
  assert.equal(copyField('{"a":"x\\"y"}'), '{"a":"x\\\\"y"}');
  assert.equal(copyField("a\tb\nc\rd\\"), "a\\tb\\nc\\rd\\\\");
  assert.equal(copyField("\\N"), "\\\\N", "the text \\N is not null");
});

Deno.test("pageCopyText stages each mapped item at its line, stamped with the job's read time", () => {
  const staged = pageCopyText(
    ACTIONS,
    [
      { action_id: { S: "a1" }, action_type: { S: "click" }, timestamp: { N: "1770379200" } },
      {
        action_id: { S: "a\t2" },
        action_type: { S: 'say "hi" \\ bye' },
        timestamp: { N: "1770379200" },
      },
    ],
    AT,
    41,
  );
  assert.equal(staged.changes, 2);
  assert.deepEqual(staged.deadLetters, []);
  assert.ok(staged.text.endsWith("\n"));
  const lines = staged.text.trimEnd().split("\n").map(fields);
  assert.equal(lines[0].length, STAGED_COLUMNS.length);
  const [ord, op, row, seq, changedAt, source, rangeKey, rank, seenAt] = lines[1];
  assert.deepEqual([ord, op, seq, changedAt, source, rangeKey, rank, seenAt], [
    "42",
    "upsert",
    null,
    "2026-02-06T12:00:00.000Z",
    "backfill",
    null,
    null,
    null,
  ]);
  const parsed = JSON.parse(row!);
  assert.equal(parsed.action_id, "a\t2");
  assert.equal(parsed.action_type, 'say "hi" \\ bye');
  assert.equal(lines[0][0], "41");
});

Deno.test("pageCopyText gives a collapsed table's observation its range key, every digit", () => {
  const staged = pageCopyText(
    VISITORS,
    [{
      session_id: { S: "v1" },
      timestamp: { N: "1770379200.000000000000000001" },
      pages_viewed: { N: "3" },
    }],
    AT,
    1,
  );
  assert.deepEqual(staged.deadLetters, []);
  const [line] = staged.text.trimEnd().split("\n").map(fields);
  assert.equal(line[STAGED_COLUMNS.indexOf("range_key")], "1770379200.000000000000000001");
});

Deno.test("pageCopyText dead-letters an item that does not map, naming its table and key", () => {
  const staged = pageCopyText(
    ACTIONS,
    [
      { action_id: { S: "ok" }, timestamp: { N: "1770379200" } },
      { action_id: { N: "7" }, timestamp: { N: "1770379200" } },
    ],
    AT,
    1,
  );
  assert.equal(staged.changes, 1);
  assert.equal(staged.deadLetters.length, 1);
  const [letter] = staged.deadLetters;
  assert.equal(letter.targetTable, "firespring_actions");
  assert.ok(letter.reason.length > 0);
  assert.equal(letter.position?.changedAt, AT.toISOString());
});

Deno.test("pageCopyText of a page with nothing to stage is empty text", () => {
  assert.deepEqual(pageCopyText(ACTIONS, [], AT, 1), { text: "", changes: 0, deadLetters: [] });
});
