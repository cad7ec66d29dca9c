import assert from "node:assert/strict";
import { encodeJson } from "./dynamo_encoder.ts";
import { CHANGE_WIRE_FIELDS, changeFromWire, toWire, WIRE_FIELD_CHECKS } from "./change_wire.ts";
import { parseJsonExact } from "./dynamo_numbers.ts";

Deno.test("a change's wire form has exactly the declared fields, in snake_case", () => {
  const wire = toWire({
    op: "upsert",
    row: { visitor_id: "v1" },
    seq: "123456789012345678901234567890",
    changedAt: "2026-11-28T10:00:00.000Z",
    source: "repair",
    rangeKey: "1767225600.123456789",
    rank: 2,
    seenAt: "2026-11-28T10:00:01.000Z",
  });
  assert.deepEqual(Object.keys(wire).sort(), [...CHANGE_WIRE_FIELDS].sort());
  const json = JSON.parse(encodeJson([wire]))[0];
  assert.equal(json.seq, "123456789012345678901234567890", "the sequence number stays text");
  assert.equal(
    encodeJson([wire]).includes('"range_key":1767225600.123456789'),
    true,
    "the range key is a JSON number with every digit",
  );
  assert.equal(json.changed_at, "2026-11-28T10:00:00.000Z");
});

Deno.test("fields a change lacks are left out of the wire", () => {
  const json = JSON.parse(encodeJson([toWire({
    op: "delete",
    row: { action_id: "a" },
    seq: null,
    changedAt: "2026-11-28T10:00:00.000Z",
    source: "backfill",
  })]))[0];
  assert.deepEqual(Object.keys(json).sort(), ["changed_at", "op", "row", "seq", "source"]);
});

Deno.test("a change read back from its wire form (as a dead letter keeps it) is the change, every digit kept", () => {
  assert.deepEqual(Object.keys(WIRE_FIELD_CHECKS), [...CHANGE_WIRE_FIELDS]);
  const change = {
    op: "upsert" as const,
    row: { visitor_id: "v1", n: 1 },
    seq: "123456789012345678901234567890",
    changedAt: "2026-11-28T10:00:00.000Z",
    source: "repair" as const,
    rangeKey: "1767225600.123456789012",
    rank: 2,
    seenAt: "2026-11-28T10:00:01.000Z",
  };
  const read = changeFromWire(parseJsonExact(encodeJson(toWire(change))), ["change"]);
  assert.ok("change" in read);
  assert.deepEqual({ ...read.change, row: { visitor_id: "v1", n: 1 } }, change);
  assert.equal(encodeJson(read.change.row), '{"visitor_id":"v1","n":1}');
});

Deno.test("a wire change with a field out of shape is refused, naming where", () => {
  const base = { op: "delete", row: { a: "x" }, seq: null, changed_at: "2026-11-28T10:00:00Z" };
  const cases: [unknown, string][] = [
    [
      { ...base, source: "scan" },
      'change.source: expected one of "stream", "backfill", "repair", "direct", not "scan"',
    ],
    [
      { ...base, source: "repair", changed_at: "yesterday" },
      "change.changed_at: expected an ISO-8601 time, not a string",
    ],
    [
      { ...base, source: "repair", rank: 1.5 },
      "change.rank: expected a whole number, not a number",
    ],
    [{ ...base, source: "repair", extra: 1 }, 'change: unrecognized key: "extra"'],
    [
      { op: "upsert", row: {}, changed_at: "2026-11-28T10:00:00Z", source: "stream" },
      "change.seq: required, but missing",
    ],
  ];
  for (const [wire, expected] of cases) {
    const read = changeFromWire(parseJsonExact(JSON.stringify(wire)), ["change"]);
    assert.ok("problem" in read, expected);
    assert.equal(`${read.problem.path.join(".")}: ${read.problem.message}`, expected);
  }
});
