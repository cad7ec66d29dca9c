/**
 * The per-table item schemas: what they accept (keys of their type, mapped attributes
 * of their column's type, anything else as it is) and what they refuse, with messages
 * naming the attribute.
 */

import assert from "node:assert/strict";
import type { DynamoValue } from "./dynamo_decoder.ts";
import { DynamoNumber } from "./dynamo_numbers.ts";
import { describeIssues, itemSchema, keySchema } from "./item_schema.ts";
import { byTargetTable, type TableSpec } from "./table_registry.ts";

const n = (text: string) => new DynamoNumber(text);
const table = (name: string): TableSpec => byTargetTable(name)!;
const actions = table("firespring_actions");
const visitors = table("firespring_visitors");
const leads = table("mmp_toledo_leads");

/** The one-line problem of an item the schema refuses. */
function refusal(schema: ReturnType<typeof itemSchema>, item: Record<string, DynamoValue>) {
  const parsed = schema.safeParse(item);
  assert.ok(!parsed.success, `should be refused: ${Object.keys(item)}`);
  return describeIssues(parsed.error);
}

Deno.test("an item with its keys and well-typed attributes is accepted, extras and all", () => {
  const item = {
    action_id: "a-1",
    action_type: "click",
    session_id: "s-1",
    timestamp: n("1700000000"),
    created_at: "2024-03-01T09:30:00Z",
    url: "/x",
    data: { nested: [n("1"), true, null] },
    tags: new Set(["a", "b"]),
  };
  const parsed = itemSchema(actions).safeParse(item);
  assert.ok(parsed.success, parsed.success ? "" : describeIssues(parsed.error));
  assert.equal(parsed.data.url, "/x", "attributes without a column are kept");
  assert.deepEqual(parsed.data.tags, new Set(["a", "b"]));
  assert.ok(itemSchema(actions).safeParse({ action_id: "a-2" }).success, "mapped ones optional");
  assert.ok(
    itemSchema(actions).safeParse({ action_id: "a-3", session_id: null, timestamp: null })
      .success,
    "NULL is accepted for a mapped attribute",
  );
});

Deno.test("a missing or mistyped key attribute is refused, naming it", () => {
  assert.equal(refusal(itemSchema(actions), { url: "/x" }), "attribute action_id: is missing");
  assert.equal(
    refusal(itemSchema(actions), { action_id: n("17") }),
    'attribute action_id: expected a string (S), got N "17"',
  );
  assert.equal(
    refusal(itemSchema(actions), { action_id: null }),
    "attribute action_id: expected a string (S), got NULL",
  );
  assert.equal(
    refusal(itemSchema(visitors), { session_id: "s-1", timestamp: "1700000000" }),
    'attribute timestamp: expected a number (N), got S "1700000000"',
  );
  assert.equal(
    refusal(itemSchema(visitors), { session_id: "s-1" }),
    "attribute timestamp: is missing",
  );
});

Deno.test("a mapped attribute of the wrong type is refused with what its column needs", () => {
  const cases: [TableSpec, Record<string, DynamoValue>, string][] = [
    [actions, { action_id: "a", type: n("3") }, 'attribute type: expected a string (S), got N "3"'],
    [
      actions,
      { action_id: "a", timestamp: "yesterday" },
      'attribute timestamp: expected a number (N) of epoch seconds, got S "yesterday"',
    ],
    [
      actions,
      { action_id: "a", created_at: n("1700000000") },
      'attribute created_at: expected an ISO-8601 timestamp string (S), got N "1700000000"',
    ],
    [
      visitors,
      { session_id: "s", timestamp: n("1"), pages_viewed: "3" },
      'attribute pages_viewed: expected a number (N), got S "3"',
    ],
    [
      table("firespring_extraction_jobs"),
      { job_id: "j", updated_at: n("1"), records_extracted: true },
      "attribute records_extracted: expected a number (N), got BOOL true",
    ],
    [
      table("firespring_extraction_jobs"),
      { job_id: "j", updated_at: "x" },
      'attribute updated_at: expected a number (N), got S "x"',
    ],
    [
      actions,
      { action_id: "a", session_id: new Set(["x"]) },
      "attribute session_id: expected a string (S), got SS",
    ],
    [
      actions,
      { action_id: "a", session_id: { id: "x" } },
      "attribute session_id: expected a string (S), got M",
    ],
    [
      actions,
      { action_id: "a", session_id: ["x"] },
      "attribute session_id: expected a string (S), got L",
    ],
  ];
  for (const [spec, item, message] of cases) {
    assert.equal(refusal(itemSchema(spec), item), message, message);
  }
});

Deno.test("both sources of a column with fallbacks are checked", () => {
  assert.equal(
    refusal(itemSchema(actions), { action_id: "a", action_type: n("1") }),
    'attribute action_type: expected a string (S), got N "1"',
  );
  assert.ok(itemSchema(actions).safeParse({ action_id: "a", type: "legacy" }).success);
});

Deno.test("a jsonb column takes any value", () => {
  const spec = table("firespring_network_state");
  for (const value of ["text", n("1"), true, null, { a: [1] }, new Set([n("2")])]) {
    const parsed = itemSchema(spec).safeParse({ state_key: "k", value });
    assert.ok(parsed.success, String(value));
  }
});

Deno.test("Amplify's _deleted flag must be a boolean", () => {
  for (const flag of [true, false, null]) {
    assert.ok(itemSchema(leads).safeParse({ id: "l-1", _deleted: flag }).success, String(flag));
  }
  assert.equal(
    refusal(itemSchema(leads), { id: "l-1", _deleted: "yes" }),
    'attribute _deleted: expected a boolean (BOOL), got S "yes"',
  );
  assert.equal(
    refusal(itemSchema(leads), { id: "l-1", _deleted: n("1") }),
    'attribute _deleted: expected a boolean (BOOL), got N "1"',
  );
});

Deno.test("several problems are all named, in one line; long values are cut", () => {
  const message = refusal(itemSchema(actions), {
    action_type: "x".repeat(200),
    type: n("1"),
    timestamp: "now",
  });
  const parts = message.split("; ");
  assert.ok(parts.includes('attribute type: expected a string (S), got N "1"'), message);
  assert.ok(parts.includes("attribute action_id: is missing"), message);
  assert.ok(
    parts.includes('attribute timestamp: expected a number (N) of epoch seconds, got S "now"'),
    message,
  );
  const long = refusal(itemSchema(actions), { action_id: "a", timestamp: "y".repeat(200) });
  assert.ok(long.length < 150, long);
  assert.ok(long.endsWith(`got S "${"y".repeat(59)}`), long);
});

Deno.test("the key schema checks the key attributes alone", () => {
  assert.ok(keySchema(visitors).safeParse({ session_id: "s", timestamp: n("1") }).success);
  assert.ok(
    keySchema(visitors).safeParse({ session_id: "s", timestamp: n("1"), pages_viewed: "x" })
      .success,
    "non-key attributes are not checked",
  );
  const parsed = keySchema(visitors).safeParse({ session_id: n("1") });
  assert.ok(!parsed.success);
  assert.equal(
    describeIssues(parsed.error),
    'attribute session_id: expected a string (S), got N "1"; attribute timestamp: is missing',
  );
  const dashboard = keySchema(table("toledo_dashboard")).safeParse({ pk: "p" });
  assert.ok(!dashboard.success);
  assert.equal(describeIssues(dashboard.error), "attribute sk: is missing");
});

Deno.test("schemas are made once per table", () => {
  assert.equal(itemSchema(actions), itemSchema(actions));
  assert.equal(keySchema(actions), keySchema(actions));
  assert.notEqual(itemSchema(actions), itemSchema(visitors));
});
