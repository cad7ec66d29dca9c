import assert from "node:assert/strict";
import { encodeJson } from "./dynamo_encoder.ts";
import {
  type DeadLetter,
  mapDirect,
  type Mapped,
  mapScannedItem,
  mapStreamRecord,
  rowKeyOf,
} from "./record_mapping.ts";
import { parseJsonExact } from "./dynamo_numbers.ts";
import { byTargetTable } from "./table_registry.ts";
import type { StreamRecord } from "./webhook_envelope.ts";

const ACTIONS = "firespring-backdoor-actions-dev";
const actions = byTargetTable("firespring_actions")!;

function record(image: Record<string, unknown>, seq = "4200"): StreamRecord {
  return {
    eventID: "ev-1",
    eventName: "INSERT",
    eventSourceARN: `arn:aws:dynamodb:us-east-1:000000000000:table/${ACTIONS}/stream/x`,
    dynamodb: {
      Keys: { action_id: image.action_id },
      NewImage: image,
      SequenceNumber: seq,
      ApproximateCreationDateTime: 1770379200,
    },
  } as unknown as StreamRecord;
}

function deadLetterOf(mapped: Mapped): DeadLetter {
  assert.ok(!mapped.ok, "the record is dead-lettered");
  return mapped.deadLetter;
}

const POISON: [string, Record<string, unknown>, RegExp][] = [
  [
    "U+0000 in a column",
    { session_id: { S: "s\u0000" } },
    /attribute session_id: the string contains U\+0000/,
  ],
  [
    "U+0000 nested in the catch-all",
    { meta: { M: { title: { S: "t\u0000" } } } },
    /attribute meta\.title: the string contains U\+0000/,
  ],
  [
    "U+0000 in a map key",
    { meta: { M: { ["k\u0000"]: { S: "v" } } } },
    /attribute meta: the map key "k\\u0000" contains U\+0000/,
  ],
  [
    "a lone surrogate",
    { meta: { M: { list: { L: [{ S: "\ud800" }] } } } },
    /attribute meta\.list\[0\]: the string is not valid UTF-16/,
  ],
  [
    "an impossible zone offset",
    { created_at: { S: "2026-02-06T10:00:00+16:00" } },
    /attribute created_at: expected an ISO-8601 timestamp, got "2026-02-06T10:00:00\+16:00" \(its zone offset \+16:00 is beyond/,
  ],
  ["N that is not a number", { score: { N: "abc" } }, /attribute score: "abc" is not a number/],
  ["an empty N", { score: { N: "" } }, /attribute score: "" is not a number/],
  [
    "an N out of range",
    { score: { N: "1e999" } },
    /attribute score: "1e999" is out of DynamoDB's number range/,
  ],
];

for (const [kind, poison, cause] of POISON) {
  Deno.test(`stream record with ${kind}: a dead letter naming table, key, attribute and cause`, () => {
    const letter = deadLetterOf(mapStreamRecord(record({ action_id: { S: "a-1" }, ...poison })));
    assert.match(letter.reason, new RegExp(`^${ACTIONS} \\[action_id="a-1"\\]: ${cause.source}`));
    assert.equal(letter.sourceTable, ACTIONS);
    assert.equal(letter.targetTable, "firespring_actions");
    assert.equal(letter.eventId, "ev-1");
    assert.deepEqual(letter.position, {
      seq: "4200",
      changedAt: "2026-02-06T12:00:00.000Z",
      source: "stream",
    });
    assert.deepEqual(letter.rowKey, { action_id: "a-1" });
  });

  Deno.test(`scanned item with ${kind}: a dead letter with its read time`, () => {
    const readAt = new Date("2026-02-01T00:00:00Z");
    const item = { action_id: { S: "a-2" }, ...poison };
    const letter = deadLetterOf(mapScannedItem(actions, item, readAt));
    assert.match(letter.reason, new RegExp(`^${ACTIONS} \\[action_id="a-2"\\]: ${cause.source}`));
    assert.deepEqual(letter.position, {
      seq: null,
      changedAt: "2026-02-01T00:00:00.000Z",
      source: "backfill",
    });
    assert.deepEqual(letter.record, { sourceTable: ACTIONS, item });
  });
}

Deno.test("a poison key is a dead letter without a row key, named as it came", () => {
  const letter = deadLetterOf(mapStreamRecord(record({ action_id: { S: "k\u0000" } })));
  assert.match(
    letter.reason,
    /\[action_id="k\\u0000"\]: attribute action_id: the string contains U\+0000/,
  );
  assert.equal(letter.rowKey, null);
});

Deno.test("a direct request with a poison value is a dead letter at the request's time", () => {
  const now = new Date("2026-02-06T00:00:00Z");
  const body = parseJsonExact(
    '{"table": "firespring_actions", "action": "UPSERT", "data": {"action_id": "d-1", "n": 1e999, "m": {"x": "\\u0000"}}}',
  ) as Parameters<typeof mapDirect>[0];
  const letter = deadLetterOf(mapDirect(body, now));
  assert.match(
    letter.reason,
    /^firespring-backdoor-actions-dev \[action_id="d-1"\]: attribute n: "1e999" is out of/,
  );
  assert.deepEqual(letter.position, { seq: null, changedAt: now.toISOString(), source: "direct" });
  assert.deepEqual(JSON.parse(encodeJson(letter.rowKey)), { action_id: "d-1" });
});

Deno.test("a direct DELETE maps to a delete of the key, never an upsert", () => {
  const now = new Date("2026-02-06T00:00:00Z");
  const mapped = mapDirect(
    { table: "firespring_segments", action: "DELETE", data: { segment_id: "s-1", name: "gone" } },
    now,
  );
  assert.ok(mapped.ok);
  assert.equal(mapped.value.change.op, "delete");
  assert.deepEqual(mapped.value.change.row, { segment_id: "s-1" });
  assert.equal(mapped.value.change.changedAt, now.toISOString());
});

Deno.test("a direct request with U+0000 in a map key is a dead letter naming the key", () => {
  const body = parseJsonExact(
    '{"table": "firespring_segments", "action": "UPSERT", "data": {"segment_id": "s", "raw": {"a\\u0000": 1}}}',
  ) as Parameters<typeof mapDirect>[0];
  const letter = deadLetterOf(mapDirect(body));
  assert.match(
    letter.reason,
    /^firespring-backdoor-segments-dev \[segment_id="s"\]: attribute raw: the map key "a\\u0000" contains U\+0000/,
  );
  assert.deepEqual(letter.rowKey, { segment_id: "s" });
});

Deno.test("a stream time that is not a time is a dead letter, not a crash", () => {
  const bad = record({ action_id: { S: "a-3" } });
  bad.dynamodb.ApproximateCreationDateTime = 1e300;
  const letter = deadLetterOf(mapStreamRecord(bad));
  assert.match(
    letter.reason,
    /\[action_id="a-3"\]: record ev-1 has ApproximateCreationDateTime 1e\+300, not a time/,
  );
  assert.equal(letter.position, null);
});

Deno.test("a mapped change carries the dead letter it would become", () => {
  const mapped = mapStreamRecord(record({ action_id: { S: "a-4" } }));
  assert.ok(mapped.ok);
  const letter = mapped.value.deadLetter!("refused");
  assert.equal(letter.reason, "refused");
  assert.equal(letter.eventId, "ev-1");
  assert.deepEqual(letter.rowKey, { action_id: "a-4" });
  assert.equal(letter.position?.seq, "4200");
});

Deno.test("a bug (TypeError) is not a dead letter: it propagates", () => {
  // A registry entry whose key is not a column: keyToChange trips over it.
  const broken = { ...byTargetTable("mmp_toledo_leads")!, targetKey: ["no_such_column"] };
  assert.throws(
    () => mapScannedItem(broken, { id: { S: "l-1" }, _deleted: { BOOL: true } }, new Date()),
    (e: unknown) => e instanceof TypeError && /reading 'from'/.test((e as Error).message),
  );
});

Deno.test("a 400 KB binary attribute maps, and is kept whole in a dead letter", () => {
  const bytes = new Uint8Array(400 * 1024).map((_, i) => i % 251);
  const good = mapScannedItem(actions, { action_id: { S: "b-1" }, blob: { B: bytes } }, new Date());
  assert.ok(good.ok);
  const row = JSON.parse(encodeJson(good.value.change.row));
  assert.equal(atob(row.action_data.blob).length, bytes.length);
  const bad = deadLetterOf(
    mapScannedItem(
      actions,
      { action_id: { S: "b-2" }, blob: { B: bytes }, n: { N: "x" } },
      new Date(),
    ),
  );
  const kept = (bad.record as { item: { blob: { B: string } } }).item.blob.B;
  assert.equal(atob(kept).length, bytes.length);
});

Deno.test("rowKeyOf reads the target key from DynamoDB JSON and from plain values", () => {
  const dashboard = byTargetTable("toledo_dashboard")!;
  const [first, second] = dashboard.targetKey;
  const from = (column: string) => [dashboard.columns[column].from].flat()[0];
  assert.deepEqual(
    JSON.parse(
      encodeJson(rowKeyOf(dashboard, { [from(first)]: { S: "x" }, [from(second)]: { S: "y" } })),
    ),
    { [first]: "x", [second]: "y" },
  );
  assert.equal(rowKeyOf(actions, {}), null);
  // A numeric key (none of the nine tables has one as its row key yet): N must be a number.
  const numeric = { ...actions, targetKey: ["n"], columns: { n: { from: "k", type: "numeric" } } };
  assert.equal(rowKeyOf(numeric as typeof actions, { k: { N: "abc" } }), null);
  assert.equal(rowKeyOf(numeric as typeof actions, { k: { N: "1e999" } }), null);
  assert.deepEqual(
    JSON.parse(encodeJson(rowKeyOf(numeric as typeof actions, { k: { N: "12.50" } }))),
    {
      n: 12.5,
    },
  );
  assert.deepEqual(rowKeyOf(actions, { action_id: "p" }), { action_id: "p" });
});

Deno.test("a record of a same-named table in another region is dead-lettered, naming both regions", () => {
  const elsewhere = {
    ...record({ action_id: { S: "a-1" } }),
    eventSourceARN: `arn:aws:dynamodb:eu-west-1:000000000000:table/${ACTIONS}/stream/x`,
  };
  const letter = deadLetterOf(mapStreamRecord(elsewhere));
  assert.equal(
    letter.reason,
    `DynamoDB table ${ACTIONS} in eu-west-1 is not the registered table, which is in ` +
      `us-east-1 (${elsewhere.eventSourceARN})`,
  );
  assert.deepEqual(letter.record, elsewhere, "the record is kept whole");
  assert.deepEqual(
    [letter.targetTable, letter.rowKey],
    [null, null],
    "a stream mapped by mistake holds back no row's sweep or tombstone",
  );
});
