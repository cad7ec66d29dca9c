import assert from "node:assert/strict";
import { encodeJson } from "./dynamo_encoder.ts";
import { CHANGE_WIRE_FIELDS, toWire } from "./change_wire.ts";

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
