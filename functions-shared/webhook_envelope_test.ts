/**
 * The webhook's two body forms: what parses, and the path and message of every kind of
 * malformed body; attribute values checked by hand; base64 turned into bytes.
 */

import assert from "node:assert/strict";
import { parseJsonExact } from "./dynamo_numbers.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import {
  attributeMapProblem,
  attributeValueProblem,
  parseWebhookBody,
  parseWebhookJson,
  streamRecordProblem,
} from "./webhook_envelope.ts";

const ARN =
  "arn:aws:dynamodb:us-east-1:000000000000:table/firespring-backdoor-segments-dev/stream/2026-02-06";

/** A stream record as Lambda forwards it; `dynamodb` fields overridable. */
function record(dynamodb: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return {
    eventID: "ev-1",
    eventName: "INSERT",
    eventVersion: "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: "us-east-1",
    eventSourceARN: ARN,
    dynamodb: {
      ApproximateCreationDateTime: 1770379200,
      Keys: { segment_id: { S: "s-1" } },
      NewImage: { segment_id: { S: "s-1" }, value: { N: "5" } },
      SequenceNumber: "100",
      SizeBytes: 100,
      StreamViewType: "NEW_AND_OLD_IMAGES",
      ...dynamodb,
    },
    ...top,
  };
}

/** The problem of a body that must not parse. */
function problemOf(json: unknown): string {
  const parsed = parseWebhookBody(json);
  assert.ok(!parsed.ok, `should not parse: ${JSON.stringify(json)}`);
  return parsed.problem;
}

Deno.test("the Lambda form parses, keeping the record's other fields", () => {
  const parsed = parseWebhookBody({ records: [record(), record({}, { eventName: "REMOVE" })] });
  assert.ok(parsed.ok);
  assert.equal(parsed.body.kind, "records");
  assert.ok(parsed.body.kind === "records");
  assert.equal(parsed.body.records.length, 2);
  assert.equal(parsed.body.records[1].eventName, "REMOVE");
  assert.deepEqual(parsed.body.records[0].dynamodb.Keys, { segment_id: { S: "s-1" } });
  assert.equal((parsed.body.records[0] as Record<string, unknown>).awsRegion, "us-east-1");
  assert.equal(
    (parsed.body.records[0].dynamodb as Record<string, unknown>).StreamViewType,
    "NEW_AND_OLD_IMAGES",
  );
  const empty = parseWebhookBody({ records: [] });
  assert.deepEqual(empty, { ok: true, body: { kind: "records", records: [] } });
});

Deno.test("a REMOVE record needs no images", () => {
  const { NewImage: _, ...dynamodb } = record().dynamodb;
  const parsed = parseWebhookBody({
    records: [{ ...record({}, { eventName: "REMOVE" }), dynamodb }],
  });
  assert.ok(parsed.ok, JSON.stringify(parsed));
});

Deno.test("the direct form parses", () => {
  const parsed = parseWebhookBody({
    table: "firespring_segments",
    action: "UPSERT",
    data: { segment_id: "s-1", value: 5 },
  });
  assert.deepEqual(parsed, {
    ok: true,
    body: {
      kind: "direct",
      table: "firespring_segments",
      action: "UPSERT",
      data: { segment_id: "s-1", value: 5 },
    },
  });
  const deletion = parseWebhookBody({ table: "t", action: "DELETE", data: {} });
  assert.ok(deletion.ok && deletion.body.kind === "direct" && deletion.body.action === "DELETE");
});

Deno.test("a SequenceNumber of up to 40 digits stays exact text", () => {
  const forty = "9".repeat(40);
  const parsed = parseWebhookBody({ records: [record({ SequenceNumber: forty })] });
  assert.ok(parsed.ok && parsed.body.kind === "records");
  assert.equal(parsed.body.records[0].dynamodb.SequenceNumber, forty);
  const big = "123456789012345678901234567890123456789";
  const exact = parseWebhookBody({ records: [record({ SequenceNumber: big })] });
  assert.ok(exact.ok && exact.body.kind === "records");
  assert.equal(exact.body.records[0].dynamodb.SequenceNumber, big, "not rounded");
  assert.equal(
    problemOf({ records: [record({ SequenceNumber: "9".repeat(41) })] }),
    "records.0.dynamodb.SequenceNumber: expected up to 40 digits",
  );
});

Deno.test("every malformed Lambda body answers with the path of its problem", () => {
  const { SequenceNumber: _, ...noSeq } = record().dynamodb;
  const cases: [string, unknown, RegExp][] = [
    ["null", null, /^\(the body\): /],
    ["an array", [record()], /^\(the body\): /],
    ["records not a list", { records: record() }, /^records: /],
    ["a record not an object", { records: [record(), 7] }, /^records\.1: /],
    [
      "no SequenceNumber",
      { records: [{ ...record(), dynamodb: noSeq }] },
      /^records\.0\.dynamodb\.SequenceNumber: /,
    ],
    [
      "SequenceNumber a number",
      { records: [record({ SequenceNumber: 100 })] },
      /^records\.0\.dynamodb\.SequenceNumber: /,
    ],
    [
      "SequenceNumber not digits",
      { records: [record({ SequenceNumber: "12a" })] },
      /^records\.0\.dynamodb\.SequenceNumber: expected up to 40 digits$/,
    ],
    ["an empty eventID", { records: [record({}, { eventID: "" })] }, /^records\.0\.eventID: /],
    [
      "an unknown eventName",
      { records: [record({}, { eventName: "UPDATE" })] },
      /^records\.0\.eventName: /,
    ],
    [
      "no eventSourceARN",
      { records: [record({}, { eventSourceARN: undefined })] },
      /^records\.0\.eventSourceARN: /,
    ],
    [
      "a NUL in eventSourceARN (it is noted as it is)",
      {
        records: [
          record({}, { eventSourceARN: "arn:aws:dynamodb:us-east-1:0:table/t/stream/\u0000" }),
        ],
      },
      /^records\.0\.eventSourceARN: contains U\+0000 \(NUL\)/,
    ],
    [
      "a NUL in eventID",
      { records: [record({}, { eventID: "e\u0000" })] },
      /^records\.0\.eventID: contains U\+0000 \(NUL\)/,
    ],
    ["no dynamodb", { records: [record({}, { dynamodb: undefined })] }, /^records\.0\.dynamodb: /],
    [
      "ApproximateCreationDateTime as text",
      { records: [record({ ApproximateCreationDateTime: "1770379200" })] },
      /^records\.0\.dynamodb\.ApproximateCreationDateTime: /,
    ],
    [
      "ApproximateCreationDateTime zero",
      { records: [record({ ApproximateCreationDateTime: 0 })] },
      /^records\.0\.dynamodb\.ApproximateCreationDateTime: /,
    ],
    ["no Keys", { records: [record({ Keys: undefined })] }, /^records\.0\.dynamodb\.Keys: /],
    [
      "a key that is not an attribute value",
      { records: [record({ Keys: { segment_id: "s-1" } })] },
      /^records\.0\.dynamodb\.Keys\.segment_id: expected a DynamoDB attribute value/,
    ],
    [
      "a nested bad value in NewImage",
      {
        records: [
          record({}),
          record({ NewImage: { meta: { M: { tags: { L: [{ S: "ok" }, { S: 1 }] } } } } }),
        ],
      },
      /^records\.1\.dynamodb\.NewImage\.meta\.M\.tags\.L\.1: S must be a string$/,
    ],
    [
      "bad binary in OldImage",
      { records: [record({ OldImage: { blob: { B: "not base64!" } } })] },
      /^records\.0\.dynamodb\.OldImage\.blob: B must be base64 text$/,
    ],
    ["an extra top-level key", { records: [], extra: true }, /extra/],
  ];
  for (const [name, json, expected] of cases) assert.match(problemOf(json), expected, name);
});

Deno.test("every malformed direct body answers with the path of its problem", () => {
  const cases: [string, unknown, RegExp][] = [
    ["empty", {}, /^table: /],
    ["an empty table", { table: "", action: "UPSERT", data: {} }, /^table: /],
    ["an unknown action", { table: "t", action: "MERGE", data: {} }, /^action: /],
    ["no data", { table: "t", action: "UPSERT" }, /^data: /],
    ["data a list", { table: "t", action: "UPSERT", data: [1] }, /^data: /],
    ["an extra key", { table: "t", action: "UPSERT", data: {}, when: 1 }, /when/],
  ];
  for (const [name, json, expected] of cases) assert.match(problemOf(json), expected, name);
});

Deno.test("attributeValueProblem accepts every DynamoDB type and names what is wrong", () => {
  const good = [
    { S: "" },
    { N: "1e3" },
    { B: "AAEC" },
    { SS: ["a", "b"] },
    { NS: ["1", "2"] },
    { BS: ["AA==", "AAE="] },
    { BOOL: false },
    { NULL: true },
    { L: [] },
    { L: [{ S: "x" }, { M: {} }] },
    { M: { a: { N: "1" }, b: { L: [{ NULL: true }] } } },
  ];
  for (const value of good) {
    assert.equal(attributeValueProblem(value), undefined, JSON.stringify(value));
  }
  const bad: [unknown, string][] = [
    ["text", 'expected a DynamoDB attribute value such as {"S": ...} or {"N": "..."}'],
    [null, 'expected a DynamoDB attribute value such as {"S": ...} or {"N": "..."}'],
    [[{ S: "x" }], 'expected a DynamoDB attribute value such as {"S": ...} or {"N": "..."}'],
    [{}, 'expected a DynamoDB attribute value such as {"S": ...} or {"N": "..."}'],
    [{ S: "a", N: "1" }, 'expected a DynamoDB attribute value such as {"S": ...} or {"N": "..."}'],
    [{ X: "a" }, 'expected a DynamoDB attribute value such as {"S": ...} or {"N": "..."}'],
    [{ N: 5 }, "N must be a number's text"],
    [{ B: "abc" }, "B must be base64 text"],
    [{ SS: [] }, "SS must be a non-empty list of strings"],
    [{ SS: ["a", 1] }, "SS must be a non-empty list of strings"],
    [{ NS: [1] }, "NS must be a non-empty list of numbers' text"],
    [{ BS: ["AA==", "?"] }, "BS must be a non-empty list of base64 text"],
    [{ BOOL: "true" }, "BOOL must be true or false"],
    [{ NULL: false }, "NULL must be true"],
    [{ L: {} }, "L must be a list"],
    [{ M: [] }, "M must be a map"],
  ];
  for (const [value, message] of bad) {
    assert.deepEqual(attributeValueProblem(value, ["x"]), { path: ["x"], message }, String(value));
  }
  assert.deepEqual(
    attributeMapProblem({ ok: { S: "fine" }, deep: { M: { list: { L: [{ BOOL: 1 }] } } } }),
    { path: ["deep", "M", "list", "L", 0], message: "BOOL must be true or false" },
  );
});

Deno.test("a body parsed with exact numbers parses; ApproximateCreationDateTime is read as a number", () => {
  const text = JSON.stringify({ records: [record({ ApproximateCreationDateTime: 1770379200.5 })] });
  const parsed = parseWebhookBody(parseJsonExact(text));
  assert.ok(parsed.ok && parsed.body.kind === "records", JSON.stringify(parsed));
  assert.equal(parsed.body.records[0].dynamodb.ApproximateCreationDateTime, 1770379200.5);
  const direct = parseWebhookBody(
    parseJsonExact('{"table": "t", "action": "UPSERT", "data": {"n": 12345678901234567890.5}}'),
  );
  assert.ok(direct.ok && direct.body.kind === "direct");
  assert.equal((direct.body.data.n as { value: string }).value, "12345678901234567890.5");
});

Deno.test("an exact number where an attribute value or the SequenceNumber belongs is refused", () => {
  assert.match(
    problemOf(parseJsonExact(JSON.stringify({ records: [record({ Keys: { segment_id: 5 } })] }))),
    /^records\.0\.dynamodb\.Keys\.segment_id: expected a DynamoDB attribute value/,
  );
  assert.match(
    problemOf(parseJsonExact(JSON.stringify({ records: [record({ SequenceNumber: 100 })] }))),
    /^records\.0\.dynamodb\.SequenceNumber: /,
  );
  assert.match(
    problemOf(
      parseJsonExact(JSON.stringify({ records: [record({ ApproximateCreationDateTime: -1 })] })),
    ),
    /^records\.0\.dynamodb\.ApproximateCreationDateTime: /,
  );
});

Deno.test("a Lambda body is parsed plainly, a direct body exactly, to the same envelope", () => {
  const lambda = JSON.stringify({
    records: [{
      eventID: "e-1",
      eventName: "INSERT",
      eventSourceARN: "arn:aws:dynamodb:us-east-1:0:table/t/stream/s",
      dynamodb: {
        ApproximateCreationDateTime: 1770379200,
        Keys: { id: { S: "a" } },
        NewImage: { id: { S: "a" }, price: { N: "12345678901234567890.50" } },
        SequenceNumber: "100",
        SizeBytes: 40,
      },
    }],
  });
  const plain = parseWebhookJson(lambda) as { records: { dynamodb: Record<string, unknown> }[] };
  assert.equal(plain.records[0].dynamodb.ApproximateCreationDateTime, 1770379200);
  const fromPlain = parseWebhookBody(plain);
  const fromExact = parseWebhookBody(parseJsonExact(lambda));
  assert.ok(fromPlain.ok && fromExact.ok);
  // The same records either way, down to their stored JSON (dead letters keep it).
  assert.equal(encodeJson(fromPlain.body), encodeJson(fromExact.body));

  const direct = '{"table": "firespring_segments", "action": "UPSERT", ' +
    '"data": {"segment_id": "s", "member_count": 12345678901234567890.50}}';
  const exact = parseWebhookJson(direct) as { data: { member_count: { value: string } } };
  assert.equal(exact.data.member_count.value, "12345678901234567890.50", "every digit kept");
  assert.throws(() => parseWebhookJson("{not json"), SyntaxError);
});

Deno.test("a checked stream record is the body's own object, copied only to read an exact time", () => {
  const plain = record();
  const checked = streamRecordProblem(plain);
  assert.ok("record" in checked);
  assert.equal(checked.record, plain, "no copy");
  const exact = parseJsonExact(JSON.stringify(record({ ApproximateCreationDateTime: 1770379200 })));
  const read = streamRecordProblem(exact);
  assert.ok("record" in read);
  assert.equal(read.record.dynamodb.ApproximateCreationDateTime, 1770379200);
  assert.notEqual(read.record, exact);
  assert.equal(read.record.dynamodb.StreamViewType, "NEW_AND_OLD_IMAGES", "other fields kept");
});

Deno.test("a stream record's problems name the field and what was found there", () => {
  const cases: [unknown, string][] = [
    [7, "records.0: expected an object, not a number"],
    [record({}, { eventID: 5 }), "records.0.eventID: expected a non-empty string, not a number"],
    [
      record({}, { eventName: "UPDATE" }),
      'records.0.eventName: expected INSERT, MODIFY or REMOVE, not "UPDATE"',
    ],
    [record({}, { dynamodb: [] }), "records.0.dynamodb: expected an object, not a list"],
    [
      record({ Keys: "k" }),
      "records.0.dynamodb.Keys: expected a map of attribute values, not a string",
    ],
    [
      record({ NewImage: null }),
      "records.0.dynamodb.NewImage: expected a map of attribute values, not null",
    ],
    [
      record({ SequenceNumber: 100 }),
      "records.0.dynamodb.SequenceNumber: expected up to 40 digits as text, not a number",
    ],
    [
      record({ ApproximateCreationDateTime: "1" }),
      "records.0.dynamodb.ApproximateCreationDateTime: expected a positive number, not a string",
    ],
    [
      record({ SizeBytes: Infinity }),
      "records.0.dynamodb.SizeBytes: expected a number within a double's range, not one past 1.8e308",
    ],
    [
      record({}, { userIdentity: { detail: [1, -Infinity] } }),
      "records.0.userIdentity.detail.1: expected a number within a double's range, not one past 1.8e308",
    ],
  ];
  for (const [one, expected] of cases) assert.equal(problemOf({ records: [one] }), expected);
  assert.equal(problemOf({ records: [], a: 1, b: 2 }), '(the body): unrecognized keys: "a", "b"');
  assert.equal(problemOf({ records: {} }), "records: expected a list, not an object");
});
