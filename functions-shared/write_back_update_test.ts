import assert from "node:assert/strict";
import type { AttributeMap } from "./dynamo_decoder.ts";
import { DynamoNumber, parseJsonExact } from "./dynamo_numbers.ts";
import { byTargetTable, writeBackAttributes } from "./table_registry.ts";
import { itemKeyOf, planWriteBack, type WriteBackEdit } from "./write_back_update.ts";
import {
  isoToMicros,
  jsonToAttribute,
  microsToEpoch,
  microsToIso,
  WriteBackValueError,
} from "./write_back_values.ts";

const spec = (table: string) => byTargetTable(table)!;

function edit(partial: Partial<WriteBackEdit>): WriteBackEdit {
  return { id: 1, rowKey: {}, columns: [], before: {}, after: {}, rangeKey: null, ...partial };
}

function plan(table: string, e: WriteBackEdit, raw: AttributeMap) {
  const key = itemKeyOf(spec(table), e);
  assert.equal(typeof key, "object");
  return planWriteBack(spec(table), e, key as AttributeMap, raw);
}

const segment: AttributeMap = {
  segment_id: { S: "s-1" },
  name: { S: "Old name" },
  value: { N: "12345678901234567890.5" },
  raw: { M: { tags: { SS: ["a", "b"] } } },
};

/** An edit of segment s-1's name, from "Old name" to "New name". */
const RENAME = edit({
  rowKey: { segment_id: "s-1" },
  columns: ["segment_name"],
  before: { segment_name: "Old name" },
  after: { segment_name: "New name" },
});

/** The plan of an edit of segment s-1's catch-all, `segment_criteria`, from `before` to `after`. */
function criteriaPlan(before: unknown, after: unknown) {
  return plan(
    "firespring_segments",
    edit({
      rowKey: { segment_id: "s-1" },
      columns: ["segment_criteria"],
      before: { segment_criteria: before },
      after: { segment_criteria: after },
    }),
    segment,
  );
}

Deno.test("a text column becomes SET of its attribute, conditioned on the value read", () => {
  const p = plan(
    "firespring_segments",
    RENAME,
    segment,
  );
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  assert.deepEqual(p.input.Key, { segment_id: { S: "s-1" } });
  assert.equal(p.input.UpdateExpression, "SET #a0 = :v0");
  assert.equal(p.input.ConditionExpression, "attribute_exists(#a1) AND #a0 = :v1");
  assert.deepEqual(p.input.ExpressionAttributeNames, { "#a0": "name", "#a1": "segment_id" });
  assert.deepEqual(p.input.ExpressionAttributeValues, {
    ":v0": { S: "New name" },
    ":v1": { S: "Old name" },
  });
});

Deno.test("numbers keep every digit; an emptied column is REMOVE with attribute_exists kept", () => {
  const p = plan(
    "firespring_segments",
    edit({
      rowKey: { segment_id: "s-1" },
      columns: ["member_count", "segment_name"],
      before: { member_count: "12345678901234567890.50", segment_name: "Old name" },
      after: { member_count: "98765432109876543210987654321.000001", segment_name: null },
    }),
    segment,
  );
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  assert.equal(p.input.UpdateExpression, "SET #a0 = :v0 REMOVE #a1");
  const values = p.input.ExpressionAttributeValues!;
  assert.deepEqual(values[":v0"], { N: "98765432109876543210987654321.000001" });
  assert.deepEqual(values[":v1"], { N: "12345678901234567890.5" });
  assert.match(p.input.ConditionExpression!, /#a1 = :v2/);
});

Deno.test("the item changed since the row was built: a conflict with the source's values", () => {
  const p = plan(
    "firespring_segments",
    edit({
      rowKey: { segment_id: "s-1" },
      columns: ["segment_name"],
      before: { segment_name: "What the row held" },
      after: { segment_name: "New name" },
    }),
    segment,
  );
  assert.equal(p.kind, "conflict");
  if (p.kind !== "conflict") return;
  assert.deepEqual(p.source, { segment_name: "Old name" });
  assert.match(p.detail, /^firespring_segments \[segment_id="s-1"\]: the item changed/);
  assert.match(p.detail, /\(segment_name: its values now are in source_values\)/);
  assert.ok(
    !p.detail.includes("Old name"),
    "no value of the source in the detail, which is logged",
  );
});

Deno.test("an item that already holds the edit (an attempt that died after writing) is no-op", () => {
  const p = plan(
    "firespring_segments",
    edit({
      rowKey: { segment_id: "s-1" },
      columns: ["segment_name"],
      before: { segment_name: "Older name" },
      after: { segment_name: "Old name" },
    }),
    segment,
  );
  assert.deepEqual(p, { kind: "noop" });
});

Deno.test("catch-all keys go back to their attributes; a set stays a set", () => {
  const before = parseJsonExact('{"raw": {"tags": ["a", "b"]}}') as Record<string, unknown>;
  const after = parseJsonExact('{"raw": {"tags": ["a", "b", "c"], "n": 1e400}}') as Record<
    string,
    unknown
  >;
  const p = criteriaPlan(before, after);
  assert.equal(p.kind, "refused", "1e400 is no DynamoDB number");
  const ok = criteriaPlan(
    before,
    parseJsonExact('{"raw": {"tags": ["a", "b", "c"], "n": 12345678901234567890123}}'),
  );
  assert.equal(ok.kind, "update");
  if (ok.kind !== "update") return;
  assert.deepEqual(ok.input.ExpressionAttributeValues![":v0"], {
    M: { tags: { SS: ["a", "b", "c"] }, n: { N: "12345678901234567890123" } },
  });
});

Deno.test("a catch-all key that is not a documented attribute is refused, naming it", () => {
  const p = criteriaPlan({ raw: { tags: ["a", "b"] } }, { raw: { tags: ["a", "b"] }, owner: "x" });
  assert.equal(p.kind, "refused");
  if (p.kind !== "refused") return;
  assert.match(p.detail, /segment_criteria\.owner is not an attribute the write-back may write/);
  assert.match(p.detail, /firespring_segments \[segment_id="s-1"\]/);
});

Deno.test("a column fed by alternatives goes to the attribute the item has", () => {
  const raw: AttributeMap = {
    action_id: { S: "a-1" },
    type: { S: "click" },
    timestamp: { N: "1770379200" },
    created_at: { S: "2026-02-06 12:00:00.5+00:00" },
  };
  const p = plan(
    "firespring_actions",
    edit({
      rowKey: { action_id: "a-1" },
      columns: ["action_type", "occurred_at", "created_at"],
      before: {
        action_type: "click",
        occurred_at: "2026-02-06T12:00:00.000000Z",
        created_at: "2026-02-06T12:00:00.500000Z",
      },
      after: {
        action_type: "view",
        occurred_at: "2026-02-06T12:00:01.250000Z",
        created_at: "2026-02-07T01:02:03.000000Z",
      },
    }),
    raw,
  );
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  const names = p.input.ExpressionAttributeNames!;
  // `type` written, and `action_type`, which the row would show first, held absent.
  assert.deepEqual(Object.values(names).slice(0, 2), ["type", "action_type"]);
  assert.ok(Object.values(names).includes("timestamp"));
  assert.ok(Object.values(names).includes("created_at"));
  assert.match(p.input.ConditionExpression!, /attribute_not_exists\(#a1\)/);
  const values = p.input.ExpressionAttributeValues!;
  assert.deepEqual(values[":v0"], { S: "view" });
  assert.deepEqual(values[":v2"], { N: "1770379201.25" }, "epoch seconds, exact");
  assert.deepEqual(values[":v4"], { S: "2026-02-07 01:02:03.0+00:00" }, "the source's form");
});

/** The plan of an edit of action a-1's `action_type` from "click" to `after`, on `raw`. */
function actionTypePlan(after: string | null, raw: AttributeMap) {
  return plan(
    "firespring_actions",
    edit({
      rowKey: { action_id: "a-1" },
      columns: ["action_type"],
      before: { action_type: "click" },
      after: { action_type: after },
    }),
    raw,
  );
}

Deno.test("a column fed by alternatives is not emptied by deleting another alternative's value: refused, naming both", () => {
  // The row shows action_type "click" and, in action_data, type "view": emptied, the
  // column would show "view" unless `type` went too, a value the admin never edited.
  const p = actionTypePlan(null, {
    action_id: { S: "a-1" },
    action_type: { S: "click" },
    type: { S: "view" },
  });
  assert.equal(p.kind, "refused");
  if (p.kind !== "refused") return;
  assert.match(
    p.detail,
    /firespring_actions .*a-1.*: action_type cannot be emptied: the item also holds type, which action_type shows when action_type is absent; emptying it would delete type \(shown in action_data\), which this edit did not change$/,
  );
  assert.ok(!p.detail.includes("view"), "no value in the detail");
});

Deno.test("an older action's NULL action_type gives way to its type: an edit goes where the row shows it", () => {
  // The row shows `type` when action_type is NULL (transform.ts, shownAttribute): the
  // edit of the column is an edit of `type`, and emptied, every alternative goes (a
  // plan that read the NULL as "held already" reported a dropped edit applied).
  const raw: AttributeMap = {
    action_id: { S: "a-1" },
    action_type: { NULL: true },
    type: { S: "click" },
  };
  const emptied = actionTypePlan(null, raw);
  assert.equal(emptied.kind, "update");
  if (emptied.kind !== "update") return;
  assert.match(emptied.input.UpdateExpression!, /^REMOVE #a0, #a1$/);
  assert.deepEqual(
    [
      emptied.input.ExpressionAttributeNames!["#a0"],
      emptied.input.ExpressionAttributeNames!["#a1"],
    ],
    ["type", "action_type"],
  );
  const renamed = actionTypePlan("view", raw);
  assert.equal(renamed.kind, "update");
  if (renamed.kind !== "update") return;
  assert.equal(renamed.input.UpdateExpression, "SET #a0 = :v0");
  assert.equal(renamed.input.ExpressionAttributeNames!["#a0"], "type");
  assert.deepEqual(renamed.input.ExpressionAttributeValues![":v0"], { S: "view" });
  // action_type, shown first were it to hold a value, is held to its NULL.
  assert.equal(renamed.input.ExpressionAttributeNames!["#a1"], "action_type");
  assert.match(renamed.input.ConditionExpression!, /attribute_type\(#a1, :v\d+\)/);
});

Deno.test("an edit is conditioned on every alternative its column may show, written or not: one set meanwhile fails the update", () => {
  // Read with only `type`: the edit writes `type`, and holds `action_type` absent, so an
  // application's write of action_type meanwhile (which the row would show instead of
  // the edit) fails the condition, and the re-read names a conflict.
  const onlyType = actionTypePlan("view", { action_id: { S: "a-1" }, type: { S: "click" } });
  assert.equal(onlyType.kind, "update");
  if (onlyType.kind !== "update") return;
  assert.equal(onlyType.input.UpdateExpression, "SET #a0 = :v0");
  assert.deepEqual(onlyType.input.ExpressionAttributeNames, {
    "#a0": "type",
    "#a1": "action_type",
    "#a2": "action_id",
  });
  assert.equal(
    onlyType.input.ConditionExpression,
    "attribute_exists(#a2) AND #a0 = :v1 AND attribute_not_exists(#a1)",
  );
  // Emptied on an item holding action_type alone: `type` is held absent too.
  const emptied = actionTypePlan(null, { action_id: { S: "a-1" }, action_type: { S: "click" } });
  assert.equal(emptied.kind, "update");
  if (emptied.kind !== "update") return;
  assert.equal(emptied.input.UpdateExpression, "REMOVE #a0");
  assert.equal(emptied.input.ExpressionAttributeNames!["#a1"], "type");
  assert.match(emptied.input.ConditionExpression!, /attribute_not_exists\(#a1\)/);
});

Deno.test("a column set on an item without its attribute is conditioned on attribute_not_exists", () => {
  const { name: _, ...nameless } = segment;
  const p = plan(
    "firespring_segments",
    edit({
      rowKey: { segment_id: "s-1" },
      columns: ["segment_name"],
      before: { segment_name: null },
      after: { segment_name: "New name" },
    }),
    nameless,
  );
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  assert.equal(p.input.UpdateExpression, "SET #a0 = :v0");
  assert.equal(p.input.ConditionExpression, "attribute_exists(#a1) AND attribute_not_exists(#a0)");
  assert.deepEqual(p.input.ExpressionAttributeNames, { "#a0": "name", "#a1": "segment_id" });
  assert.deepEqual(p.input.ExpressionAttributeValues, { ":v0": { S: "New name" } });
});

Deno.test("a column left null on an item holding NULL keeps the NULL: no REMOVE", () => {
  const p = plan(
    "firespring_segments",
    edit({
      rowKey: { segment_id: "s-1" },
      columns: ["member_count", "segment_name"],
      before: { member_count: "12345678901234567890.5", segment_name: null },
      after: { member_count: "7", segment_name: null },
    }),
    { ...segment, name: { NULL: true } },
  );
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  assert.equal(p.input.UpdateExpression, "SET #a0 = :v0", "the NULL attribute is left as it is");
  assert.deepEqual(p.input.ExpressionAttributeNames!["#a1"], "name");
  assert.match(
    p.input.ConditionExpression!,
    /attribute_type\(#a1, :v\d\)/,
    "on condition it still holds NULL",
  );
  const nullType = Object.values(p.input.ExpressionAttributeValues!).find((v) =>
    (v as { S?: string }).S === "NULL"
  );
  assert.ok(nullType, "the condition's type is NULL");
});

Deno.test("an emptied column whose alternatives include a key attribute never removes the key", () => {
  const actions = spec("firespring_actions");
  const keyed = {
    ...actions,
    columns: {
      ...actions.columns,
      action_type: { from: ["action_type", "action_id"], type: "text" },
    },
  } as typeof actions;
  const e = edit({
    rowKey: { action_id: "a-1" },
    columns: ["action_type"],
    before: { action_type: "click" },
    after: { action_type: null },
  });
  const p = planWriteBack(keyed, e, itemKeyOf(keyed, e) as AttributeMap, {
    action_id: { S: "a-1" },
    action_type: { S: "click" },
  });
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  assert.equal(p.input.UpdateExpression, "REMOVE #a0");
  assert.equal(p.input.ExpressionAttributeNames!["#a0"], "action_type");
  assert.equal(
    p.input.UpdateExpression!.includes(
      Object.entries(p.input.ExpressionAttributeNames!).find(([, a]) => a === "action_id")![0],
    ),
    false,
  );
});

Deno.test("collapsed tables write to the observation the row shows, or refuse", () => {
  const jobs = spec("firespring_extraction_jobs");
  const e = edit({
    rowKey: { job_id: "j-1" },
    columns: ["status"],
    before: { status: "running" },
    after: { status: "failed" },
    rangeKey: "1770379200123",
  });
  assert.deepEqual(itemKeyOf(jobs, e), {
    job_id: { S: "j-1" },
    updated_at: { N: "1770379200123" },
  });
  assert.match(
    String(itemKeyOf(jobs, { ...e, rangeKey: null })),
    /firespring_extraction_jobs \[job_id="j-1"\]: the row names no observation/,
  );
  const refused = planWriteBack(
    jobs,
    { ...e, columns: ["last_updated_at"], before: {}, after: { last_updated_at: "x" } },
    itemKeyOf(jobs, e) as AttributeMap,
    { job_id: { S: "j-1" }, updated_at: { N: "1770379200123" } },
  );
  assert.equal(refused.kind, "conflict", "the row held no last_updated_at: the item differs");
  const refusedKey = planWriteBack(
    jobs,
    {
      ...e,
      columns: ["last_updated_at"],
      before: { last_updated_at: "2026-02-06T12:00:00.123000Z" },
      after: { last_updated_at: "2026-02-06T12:00:00.124000Z" },
    },
    itemKeyOf(jobs, e) as AttributeMap,
    { job_id: { S: "j-1" }, updated_at: { N: "1770379200123" } },
  );
  assert.equal(refusedKey.kind, "refused");
  if (refusedKey.kind === "refused") assert.match(refusedKey.detail, /key attribute updated_at/);
});

Deno.test("timestamps convert exactly", () => {
  const micros = isoToMicros("2023-11-14T22:13:20.000001Z");
  assert.equal(microsToEpoch(micros, "seconds"), "1700000000.000001");
  assert.equal(microsToEpoch(micros, "millis"), "1700000000000.001");
  assert.equal(microsToEpoch(isoToMicros("1969-12-31T23:59:59.5Z"), "seconds"), "-0.5");
  assert.equal(microsToIso(micros, "2020-01-01T00:00:00Z"), "2023-11-14T22:13:20.000001Z");
  assert.equal(
    microsToIso(isoToMicros("2023-11-14T22:13:20Z"), "2020-01-01T00:00:00.000-05:00"),
    "2023-11-14T17:13:20.000-05:00",
  );
  assert.equal(isoToMicros("0050-01-01T00:00:00Z") < 0n, true);
  assert.equal(isoToMicros("2024-01-01T05:00:00+05:00"), isoToMicros("2024-01-01T00:00:00Z"));
  assert.equal(isoToMicros("2023-12-31T19:00:00-0500"), isoToMicros("2024-01-01T00:00:00Z"));
  // Digits below a microsecond round as Postgres rounds them (read from Postgres 15:
  // `select '2024-01-01T00:00:00.0000005Z'::timestamptz` is 00:00:00, and so on): to the
  // nearest microsecond, an exact half to the even one.
  const at = (fraction: string) => isoToMicros(`2024-01-01T00:00:00.${fraction}Z`);
  const second = isoToMicros("2024-01-01T00:00:00Z");
  assert.equal(at("0000005") - second, 0n);
  assert.equal(at("0000015") - second, 2n);
  assert.equal(at("0000025") - second, 2n);
  assert.equal(at("00000051") - second, 1n);
  assert.equal(at("123456500") - second, 123_456n);
  assert.equal(at("123457500") - second, 123_458n);
  assert.equal(at("9999995") - second, 1_000_000n);
  assert.equal(at("0000004") - second, 0n);
  assert.equal(microsToIso(-1n), "1969-12-31T23:59:59.999999Z");
  assert.equal(microsToIso(-1_500_000n), "1969-12-31T23:59:58.500Z");
  assert.equal(new DynamoNumber("1").value, "1");
});

const lead: AttributeMap = {
  id: { S: "l-1" },
  name: { S: "Old" },
  __typename: { S: "Lead" },
  _version: { N: "3" },
  _lastChangedAt: { N: "1795860000000" },
};
const renameLead = edit({
  rowKey: { lead_id: "l-1" },
  columns: ["name"],
  before: { name: "Old" },
  after: { name: "New" },
});

Deno.test("an Amplify item's edit moves _version and _lastChangedAt on, on condition of the values read", () => {
  const before = Date.now();
  const p = plan("mmp_toledo_leads", renameLead, lead);
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  const {
    UpdateExpression,
    ConditionExpression,
    ExpressionAttributeNames,
    ExpressionAttributeValues,
  } = p.input;
  assert.deepEqual(ExpressionAttributeNames, {
    "#a0": "name",
    "#a1": "_version",
    "#a2": "_lastChangedAt",
    "#a3": "id",
  });
  assert.equal(UpdateExpression, "SET #a0 = :v0, #a1 = :v2, #a2 = :v4");
  assert.equal(
    ConditionExpression,
    "attribute_exists(#a3) AND #a0 = :v1 AND #a1 = :v3 AND #a2 = :v5",
  );
  assert.deepEqual(ExpressionAttributeValues![":v2"], { N: "4" });
  assert.deepEqual(ExpressionAttributeValues![":v3"], { N: "3" });
  assert.ok(Number(ExpressionAttributeValues![":v4"].N) >= before);
});

Deno.test("an Amplify item stamped ahead of this clock has its _lastChangedAt moved on, never back", () => {
  const ahead = String(Date.now() + 3_600_000);
  const p = plan("mmp_toledo_leads", renameLead, { ...lead, _lastChangedAt: { N: ahead } });
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  assert.deepEqual(p.input.ExpressionAttributeValues![":v4"], { N: String(Number(ahead) + 1) });
});

Deno.test("an Amplify item's edit moves its updatedAt on, as AppSync's resolvers do, unless the edit set it", () => {
  const before = Date.now();
  const stamped = { ...lead, updatedAt: { S: "2026-11-30T10:00:00.000Z" } };
  const p = plan("mmp_toledo_leads", renameLead, stamped);
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  const names = p.input.ExpressionAttributeNames!;
  const alias = Object.keys(names).find((a) => names[a] === "updatedAt")!;
  assert.match(p.input.UpdateExpression!, new RegExp(`${alias} = :v\\d`));
  assert.match(p.input.ConditionExpression!, new RegExp(`${alias} = :v\\d`), "on the value read");
  const set = /#a\d+ = (:v\d+)/g;
  const written = [...p.input.UpdateExpression!.matchAll(set)]
    .find((m) => m[0].startsWith(alias))![1];
  const stamp = Date.parse(p.input.ExpressionAttributeValues![written].S!);
  assert.ok(stamp >= before, "now, in ISO form");
  // An edit of updated_at itself writes the admin's value, not now.
  const own = plan(
    "mmp_toledo_leads",
    edit({
      rowKey: { lead_id: "l-1" },
      columns: ["updated_at"],
      before: { updated_at: "2026-11-30T10:00:00.000000Z" },
      after: { updated_at: "2026-12-01T09:00:00.000000Z" },
    }),
    stamped,
  );
  assert.equal(own.kind, "update");
  if (own.kind !== "update") return;
  const values = Object.values(own.input.ExpressionAttributeValues!).map((v) => JSON.stringify(v));
  assert.ok(values.some((v) => v.includes("2026-12-01T09:00:00")), values.join(" "));
  assert.equal(
    values.filter((v) => /"S":"20\d\d-/.test(v)).length,
    2,
    "the edit and its condition only",
  );
});

Deno.test("an Amplify item soft-deleted since the row was built takes no edit: a conflict", () => {
  const p = plan("mmp_toledo_leads", {
    ...renameLead,
    before: { name: null },
    after: { name: "New" },
  }, {
    ...lead,
    name: { NULL: true },
    _deleted: { BOOL: true },
  });
  assert.equal(p.kind, "conflict");
  if (p.kind !== "conflict") return;
  assert.match(p.detail, /_deleted is true\) since the row was built; the edit was not applied$/);
});

Deno.test("an admin's edit of AppSync's own bookkeeping in lead_data is refused, naming the key", () => {
  // A lower _version pasted back would pass AppSync's conflict check; removing the keys
  // (lead_data set to {}) would strip them from the item.
  for (
    const [after, key] of [
      [{ __typename: "Lead", _version: 1, _lastChangedAt: 1795860000000 }, "_version"],
      [{}, "__typename"],
    ] as const
  ) {
    const p = plan(
      "mmp_toledo_leads",
      edit({
        rowKey: { lead_id: "l-1" },
        columns: ["lead_data"],
        before: {
          lead_data: parseJsonExact(
            '{"__typename": "Lead", "_version": 3, "_lastChangedAt": 1795860000000}',
          ),
        },
        after: { lead_data: parseJsonExact(JSON.stringify(after)) },
      }),
      lead,
    );
    assert.equal(p.kind, "refused");
    if (p.kind !== "refused") return;
    assert.match(
      p.detail,
      new RegExp(`lead_data\\.${key} is not an attribute the write-back may write`),
    );
  }
  // Its IAM identity still moves _version and _lastChangedAt on, and writes no __typename.
  const attributes = writeBackAttributes(byTargetTable("mmp_toledo_leads")!);
  assert.ok(attributes.includes("_version") && attributes.includes("_lastChangedAt"));
  assert.ok(!attributes.includes("__typename"));
});

Deno.test("an edit that only reorders a set's members writes nothing: a no-op whose row is put back", () => {
  const p = criteriaPlan({ raw: { tags: ["a", "b"] } }, { raw: { tags: ["b", "a"] } });
  // DynamoDB would take SS [b, a] for SS [a, b] as no change, and stream nothing back.
  assert.deepEqual(p, { kind: "noop", rowDiffers: true });
});

Deno.test("jsonToAttribute keeps the item's binary and sets, and refuses what a set cannot hold", () => {
  assert.deepEqual(jsonToAttribute("AQI=", new Uint8Array([9])), { B: new Uint8Array([1, 2]) });
  assert.deepEqual(jsonToAttribute("AQI="), { S: "AQI=" }, "without binary to follow, text");
  const numbers = new Set([new DynamoNumber("1")]);
  assert.deepEqual(jsonToAttribute([new DynamoNumber("2"), new DynamoNumber("3")], numbers), {
    NS: ["2", "3"],
  });
  const refuses = (value: unknown, like: Set<unknown>, message: RegExp) =>
    assert.throws(
      () => jsonToAttribute(value, like as never),
      (error: Error) => error instanceof WriteBackValueError && message.test(error.message),
    );
  refuses([new DynamoNumber("2"), "x"], numbers, /^value: a number set takes numbers only$/);
  refuses([], numbers, /^value: DynamoDB has no empty set \(the item holds a set\)$/);
  refuses([], new Set(["a"]), /DynamoDB has no empty set/);
  refuses(["a", 1], new Set(["a"]), /^value: a string set takes strings only$/);
});

Deno.test("a list's members keep their own types when the list is cut or reordered", () => {
  // By position, the member that took a dropped one's place took its types: a list of
  // pages became a string set, a string became binary (found by a review).
  const visits = [
    { id: "v1", pages: new Set(["/a", "/b"]) },
    { id: "v2", pages: ["/c", "/d"] },
  ];
  assert.deepEqual(jsonToAttribute([{ id: "v2", pages: ["/c", "/d"] }], visits as never), {
    L: [{ M: { id: { S: "v2" }, pages: { L: [{ S: "/c" }, { S: "/d" }] } } }],
  });
  assert.deepEqual(jsonToAttribute(["abcd"], [new Uint8Array([1, 2]), "abcd"] as never), {
    L: [{ S: "abcd" }],
  });
  // A member edited keeps the types of the one at its place.
  assert.deepEqual(
    jsonToAttribute(
      [{ id: "v1", pages: ["/a"] }, "x"],
      [{ id: "v1", pages: new Set(["/a", "/b"]) }] as never,
    ),
    { L: [{ M: { id: { S: "v1" }, pages: { SS: ["/a"] } } }, { S: "x" }] },
  );
});

Deno.test("an item holding a value Postgres cannot store anywhere is refused at once, naming it", () => {
  // A NUL in an attribute no column maps: the item maps to no row (its stream record
  // was dead-lettered), and an edit of the row it had must fail, not be retried.
  const p = plan(
    "firespring_segments",
    RENAME,
    { ...segment, note: { S: "x\u0000y" } },
  );
  assert.equal(p.kind, "refused");
  if (p.kind !== "refused") return;
  assert.match(p.detail, /firespring_segments \[segment_id="s-1"\]/);
  assert.match(p.detail, /the item cannot be mapped: attribute note: the string contains U\+0000/);
});

Deno.test("a catch-all edit is no conflict when only other keys of the catch-all changed since", () => {
  // The row was built when `raw` held tags [a, b] and `label` was "old"; DynamoDB's
  // `label` changed since, the edit changes `raw` only: both stand.
  const before = { raw: { tags: ["a", "b"] }, label: "old" };
  const after = { raw: { tags: ["a", "b", "c"] }, label: "old" };
  const moved: AttributeMap = { ...segment, label: { S: "new" } };
  const e = edit({
    rowKey: { segment_id: "s-1" },
    columns: ["segment_criteria"],
    before: { segment_criteria: before },
    after: { segment_criteria: after },
  });
  const p = plan("firespring_segments", e, moved);
  assert.equal(p.kind, "update");
  if (p.kind !== "update") return;
  assert.equal(p.input.UpdateExpression, "SET #a0 = :v0");
  assert.deepEqual(p.input.ExpressionAttributeNames!["#a0"], "raw");
  // The item holds the edit already (an attempt that wrote it died before it was
  // recorded), beside the other key's change: nothing to write.
  const written: AttributeMap = { ...moved, raw: { M: { tags: { SS: ["a", "b", "c"] } } } };
  assert.deepEqual(plan("firespring_segments", e, written), { kind: "noop" });
  // The key it writes changed in DynamoDB too: that is a conflict.
  const both: AttributeMap = { ...moved, raw: { M: { tags: { SS: ["z"] } } } };
  const conflict = plan("firespring_segments", e, both);
  assert.equal(conflict.kind, "conflict");
  if (conflict.kind !== "conflict") return;
  assert.match(
    conflict.detail,
    /the item changed in DynamoDB since the row was built \(segment_criteria/,
  );
});
