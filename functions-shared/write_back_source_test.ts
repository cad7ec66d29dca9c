import assert from "node:assert/strict";
import { byTargetTable } from "./table_registry.ts";
import { fakeDynamo, fakeSql } from "./testing_fakes.ts";
import { causeOf, readItem, sourceValues } from "./write_back_source.ts";

const segments = byTargetTable("firespring_segments")!;
const edit = {
  id: 7,
  rowKey: { segment_id: "s-1" },
  columns: ["segment_name"],
  before: { segment_name: "Old" },
  after: { segment_name: "New" },
  rangeKey: null,
};

Deno.test("the source's values are the edited columns as the row would show them", () => {
  assert.deepEqual(
    sourceValues(segments, edit, { segment_id: { S: "s-1" }, name: { S: "Now" } }),
    { segment_name: "Now" },
  );
  assert.equal(sourceValues(segments, edit, { segment_id: { N: "1" } }), null, "no row");
});

Deno.test("an item is read consistently from the table's region", async () => {
  const dynamo = fakeDynamo(() => ({ Item: { segment_id: { S: "s-1" } } }));
  const deps = { sql: fakeSql(() => undefined).sql, reader: dynamo.dynamo };
  assert.deepEqual(await readItem(deps, segments, { segment_id: { S: "s-1" } }), {
    segment_id: { S: "s-1" },
  });
  assert.deepEqual(dynamo.regions, ["us-east-1"]);
  assert.equal(dynamo.sent[0].input.ConsistentRead, true);
});

Deno.test("a cause names AWS's error and its HTTP status, nothing more", () => {
  const throttled = Object.assign(new Error("Rate exceeded"), {
    name: "ThrottlingException",
    $metadata: { httpStatusCode: 400 },
  });
  assert.equal(causeOf(throttled), "ThrottlingException: Rate exceeded (HTTP 400)");
});
