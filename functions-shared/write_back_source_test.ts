import assert from "node:assert/strict";
import { byTargetTable } from "./table_registry.ts";
import { fakeDynamo, fakeSql, SEGMENT_NAME_EDIT } from "./testing_fakes.ts";
import { causeOf, readItem, restore, sourceValues } from "./write_back_source.ts";

const segments = byTargetTable("firespring_segments")!;
const edit = SEGMENT_NAME_EDIT;

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

Deno.test("a restore of a key whose partition is too large to read whole is left to a backfill", async () => {
  const visitors = byTargetTable("firespring_visitors")!;
  let page = 0;
  const dynamo = fakeDynamo(() => {
    page++;
    const obs = { session_id: { S: "v-big" }, timestamp: { N: String(page) } };
    return { Items: [obs], LastEvaluatedKey: obs };
  });
  const stale: unknown[][] = [];
  const db = fakeSql((s) => {
    if (s.text.includes("clock_timestamp()")) return [{ seen_at: "2026-12-01T00:00:00.000000Z" }];
    if (s.text.includes("sync.heal_table")) {
      stale.push(s.values);
      return [{ job: "12" }];
    }
    return undefined;
  });
  const restored = await restore({ sql: db.sql, reader: dynamo.dynamo }, visitors, {
    ...edit,
    rowKey: { visitor_id: "v-big" },
    columns: ["page_views"],
    rangeKey: "5",
  });
  assert.deepEqual(restored, {
    done: true,
    text: "; the row still shows the edit: its key's partition is too large to read whole, " +
      "so backfill job 12 restores it (the table is marked stale)",
  });
  assert.equal(stale.length, 1);
  assert.equal(stale[0][0], "firespring_visitors");
  assert.match(
    String(stale[0][1]),
    /^firespring_visitors: restoring a write-back's row: .*its partition holds more than 8 Query pages/,
  );
});
