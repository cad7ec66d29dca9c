/**
 * The per-table item checks: what they accept (keys of their type, mapped attributes
 * of their column's type, anything else as it is) and what they refuse, with messages
 * naming the attribute.
 */

import assert from "node:assert/strict";
import type { DynamoValue } from "./dynamo_decoder.ts";
import { DynamoNumber } from "./dynamo_numbers.ts";
import { itemProblem, keyProblem } from "./item_schema.ts";
import { byTargetTable, type TableSpec } from "./table_registry.ts";

const n = (text: string) => new DynamoNumber(text);
const table = (name: string): TableSpec => byTargetTable(name)!;
const actions = table("firespring_actions");
const visitors = table("firespring_visitors");
const leads = table("mmp_toledo_leads");

/** The one-line problem of an item the table's checks refuse. */
function refusal(spec: TableSpec, item: Record<string, DynamoValue>) {
  const problem = itemProblem(spec, item);
  assert.ok(problem !== null, `should be refused: ${Object.keys(item)}`);
  return problem;
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
  assert.equal(itemProblem(actions, item), null);
  assert.equal(itemProblem(actions, { action_id: "a-2" }), null, "mapped ones optional");
  assert.equal(
    itemProblem(actions, { action_id: "a-3", session_id: null, timestamp: null }),
    null,
    "NULL is accepted for a mapped attribute",
  );
});

Deno.test("a missing or mistyped key attribute is refused, naming it", () => {
  assert.equal(refusal(actions, { url: "/x" }), "attribute action_id: is missing");
  assert.equal(
    refusal(actions, { action_id: n("17") }),
    'attribute action_id: expected a string (S), got N "17"',
  );
  assert.equal(
    refusal(actions, { action_id: null }),
    "attribute action_id: expected a string (S), got NULL",
  );
  assert.equal(
    refusal(visitors, { session_id: "s-1", timestamp: "1700000000" }),
    'attribute timestamp: expected a number (N), got S "1700000000"',
  );
  assert.equal(
    refusal(visitors, { session_id: "s-1" }),
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
    assert.equal(refusal(spec, item), message, message);
  }
});

Deno.test("both sources of a column with fallbacks are checked", () => {
  assert.equal(
    refusal(actions, { action_id: "a", action_type: n("1") }),
    'attribute action_type: expected a string (S), got N "1"',
  );
  assert.equal(itemProblem(actions, { action_id: "a", type: "legacy" }), null);
});

Deno.test("a jsonb column takes any value", () => {
  const spec = table("firespring_network_state");
  for (const value of ["text", n("1"), true, null, { a: [n("1")] }, new Set([n("2")])]) {
    assert.equal(itemProblem(spec, { state_key: "k", value }), null, String(value));
  }
});

Deno.test("Amplify's _deleted flag must be a boolean", () => {
  for (const flag of [true, false, null]) {
    assert.equal(itemProblem(leads, { id: "l-1", _deleted: flag }), null, String(flag));
  }
  assert.equal(
    refusal(leads, { id: "l-1", _deleted: "yes" }),
    'attribute _deleted: expected a boolean (BOOL), got S "yes"',
  );
  assert.equal(
    refusal(leads, { id: "l-1", _deleted: n("1") }),
    'attribute _deleted: expected a boolean (BOOL), got N "1"',
  );
});

Deno.test("several problems are all named, in one line; long values are cut", () => {
  const message = refusal(actions, {
    action_type: "x".repeat(200),
    session_id: n("1"),
    timestamp: "now",
  });
  const parts = message.split("; ");
  assert.ok(parts.includes('attribute session_id: expected a string (S), got N "1"'), message);
  assert.ok(parts.includes("attribute action_id: is missing"), message);
  assert.ok(
    parts.includes('attribute timestamp: expected a number (N) of epoch seconds, got S "now"'),
    message,
  );
  const long = refusal(actions, { action_id: "a", timestamp: "y".repeat(200) });
  assert.ok(long.length < 150, long);
  assert.ok(long.endsWith(`got S "${"y".repeat(59)}`), long);
});

Deno.test("the key check looks at the key attributes alone", () => {
  assert.equal(keyProblem(visitors, { session_id: "s", timestamp: n("1") }), null);
  assert.equal(
    keyProblem(visitors, { session_id: "s", timestamp: n("1"), pages_viewed: "x" }),
    null,
    "non-key attributes are not checked",
  );
  assert.equal(
    keyProblem(visitors, { session_id: n("1") }),
    'attribute session_id: expected a string (S), got N "1"; attribute timestamp: is missing',
  );
  assert.equal(keyProblem(table("toledo_dashboard"), { pk: "p" }), "attribute sk: is missing");
});

Deno.test("an attribute is checked once, where it first comes, as the strictest of its uses", () => {
  // action_id is a column's source and the key: required, and named first.
  assert.equal(
    refusal(actions, { timestamp: "now" }),
    "attribute action_id: is missing; " +
      'attribute timestamp: expected a number (N) of epoch seconds, got S "now"',
  );
  // An inherited property is no attribute.
  assert.equal(
    refusal(actions, Object.create({ action_id: "a" })),
    "attribute action_id: is missing",
  );
});
