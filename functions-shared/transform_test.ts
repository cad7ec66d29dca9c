import assert from "node:assert/strict";
import { fromDynamo } from "./dynamo_decoder.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import { byTargetTable, tableNameFromArn, TABLES } from "./table_registry.ts";
import {
  epochToIso,
  isIsoTimestamp,
  itemToChange,
  keyToChange,
  MappingError,
  type Position,
  withZone,
} from "./transform.ts";

const at: Position = { seq: "100", changedAt: "2026-02-06T10:00:00.000Z", source: "stream" };
const spec = (table: string) => byTargetTable(table)!;
const json = (value: unknown) => JSON.parse(encodeJson(value));

Deno.test("actions: columns, action_type from type, and everything else in action_data", () => {
  const change = itemToChange(
    spec("firespring_actions"),
    fromDynamo({
      action_id: { S: "a1" },
      type: { S: "click" },
      session_id: { S: "s1" },
      timestamp: { N: "1770379200.5" },
      url: { S: "/pricing" },
      title: { S: "Pricing" },
      data: { M: { x: { N: "1" } } },
      created_at: { S: "2026-02-06T12:00:00Z" },
    }),
    at,
  );
  assert.equal(change.op, "upsert");
  assert.deepEqual(json(change.row), {
    action_id: "a1",
    action_type: "click",
    session_id: "s1",
    occurred_at: "2026-02-06T12:00:00.500000Z",
    created_at: "2026-02-06T12:00:00Z",
    action_data: { url: "/pricing", title: "Pricing", data: { x: 1 } },
  });
  assert.equal(change.seq, "100");
  assert.equal(change.rangeKey, undefined);
});

Deno.test("actions: with both action_type and type, type is kept in action_data", () => {
  const change = itemToChange(
    spec("firespring_actions"),
    fromDynamo({ action_id: { S: "a1" }, action_type: { S: "view" }, type: { S: "old" } }),
    at,
  );
  assert.equal(change.row.action_type, "view");
  assert.deepEqual(json(change.row.action_data), { type: "old" });
});

Deno.test("actions: a type that is not the column's is kept as it is; a NULL action_type gives way to type", () => {
  // action_type present: type is unmapped, whatever its type, and lands in action_data.
  const numbered = itemToChange(
    spec("firespring_actions"),
    fromDynamo({ action_id: { S: "a1" }, action_type: { S: "view" }, type: { N: "3" } }),
    at,
  );
  assert.equal(numbered.row.action_type, "view");
  assert.deepEqual(json(numbered.row.action_data), { type: 3 });
  // action_type NULL: type is the column's.
  const nulled = itemToChange(
    spec("firespring_actions"),
    fromDynamo({ action_id: { S: "a2" }, action_type: { NULL: true }, type: { S: "click" } }),
    at,
  );
  assert.equal(nulled.row.action_type, "click");
  assert.deepEqual(json(nulled.row.action_data), { action_type: null });
  // Both absent or NULL: null. And type of the wrong type, when it is the column's: refused.
  const none = itemToChange(
    spec("firespring_actions"),
    fromDynamo({ action_id: { S: "a3" }, action_type: { NULL: true } }),
    at,
  );
  assert.equal(none.row.action_type, null);
  assert.throws(
    () =>
      itemToChange(
        spec("firespring_actions"),
        fromDynamo({ action_id: { S: "a4" }, type: { N: "3" } }),
        at,
      ),
    /attribute type: expected a string \(S\), got N "3"/,
  );
});

Deno.test("an empty string in a timestamp column is no time, not a dead letter", () => {
  const job = itemToChange(
    spec("firespring_extraction_jobs"),
    fromDynamo({
      job_id: { S: "j" },
      updated_at: { N: "1" },
      status: { S: "running" },
      completed_at: { S: "" },
      started_at: { S: "  " },
    }),
    at,
  );
  assert.equal(job.row.completed_at, null);
  assert.equal(job.row.started_at, null);
  assert.equal(job.row.status, "running");
});

Deno.test("visitors collapse on timestamp; sessions land in session_data", () => {
  const change = itemToChange(
    spec("firespring_visitors"),
    fromDynamo({
      session_id: { S: "v1" },
      timestamp: { N: "1770379200" },
      pages_viewed: { N: "4" },
      sessions: {
        L: [{ M: { session_id: { S: "s1" }, geolocation: { S: "Toledo, Ohio, USA" } } }],
      },
      ip_address: { S: "203.0.113.9" },
    }),
    at,
  );
  assert.equal(change.rangeKey, "1770379200");
  assert.equal(change.rank, 0);
  assert.deepEqual(json(change.row), {
    visitor_id: "v1",
    page_views: 4,
    last_visit_at: "2026-02-06T12:00:00.000000Z",
    created_at: null,
    session_data: {
      sessions: [{ session_id: "s1", geolocation: "Toledo, Ohio, USA" }],
      ip_address: "203.0.113.9",
    },
  });
});

Deno.test("extraction jobs rank their state and read updated_at in milliseconds", () => {
  const change = itemToChange(
    spec("firespring_extraction_jobs"),
    fromDynamo({
      job_id: { S: "j1" },
      updated_at: { N: "1770379200123" },
      status: { S: "complete" },
      params: { M: { since: { S: "2026-01-01" } } },
    }),
    at,
  );
  assert.equal(change.rank, 2);
  assert.equal(change.rangeKey, "1770379200123");
  assert.equal(change.row.last_updated_at, "2026-02-06T12:00:00.123000Z");
  assert.deepEqual(json(change.row.job_data), { params: { since: "2026-01-01" } });
});

Deno.test("an extraction job's status the rank does not know ranks lowest (0)", () => {
  const rankOf = (item: Parameters<typeof fromDynamo>[0]) =>
    itemToChange(spec("firespring_extraction_jobs"), fromDynamo(item), at).rank;
  const key = { job_id: { S: "j2" }, updated_at: { N: "1770379200123" } };
  assert.equal(rankOf({ ...key, status: { S: "cancelled" } }), 0);
  // Not a key the order inherits from Object either.
  for (const status of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    assert.equal(rankOf({ ...key, status: { S: status } }), 0, status);
  }
  assert.equal(rankOf(key), 0);
  assert.equal(rankOf({ ...key, status: { S: "running" } }), 1);
});

Deno.test("a REMOVE whose key attribute is missing or of the wrong type is refused, naming it", () => {
  const refuse = (keys: Parameters<typeof fromDynamo>[0], message: RegExp) =>
    assert.throws(
      () => keyToChange(spec("firespring_segments"), fromDynamo(keys), at),
      (error: Error) => {
        assert.ok(error instanceof MappingError);
        assert.match(error.message, message);
        return true;
      },
    );
  refuse(
    { segment_id: { N: "1" } },
    /^firespring-backdoor-segments-dev \[segment_id=1\]: attribute segment_id: expected a string \(S\), got N "1"$/,
  );
  refuse(
    {},
    /^firespring-backdoor-segments-dev \[segment_id=null\]: attribute segment_id: is missing$/,
  );
});

Deno.test("a lead with _deleted = true is a delete of its row", () => {
  const change = itemToChange(
    spec("mmp_toledo_leads"),
    fromDynamo({ id: { S: "l1" }, name: { S: "Ada" }, _deleted: { BOOL: true } }),
    at,
  );
  assert.equal(change.op, "delete");
  assert.deepEqual(change.row, { lead_id: "l1" });
  const live = itemToChange(
    spec("mmp_toledo_leads"),
    fromDynamo({ id: { S: "l2" }, _deleted: { BOOL: false }, _version: { N: "3" } }),
    at,
  );
  assert.equal(live.op, "upsert");
  assert.deepEqual(json(live.row.lead_data), { _deleted: false, _version: 3 });
});

Deno.test("a REMOVE's keys become a delete; the dashboard's key has two parts", () => {
  const change = keyToChange(
    spec("toledo_dashboard"),
    fromDynamo({ pk: { S: "p" }, sk: { S: "s" } }),
    at,
  );
  assert.deepEqual(change, { op: "delete", row: { pk: "p", sk: "s" }, ...at });
  const visit = keyToChange(
    spec("firespring_visitors"),
    fromDynamo({ session_id: { S: "v1" }, timestamp: { N: "17" } }),
    at,
  );
  assert.deepEqual(visit.row, { visitor_id: "v1" });
  assert.equal(visit.rangeKey, "17");
});

Deno.test("bad items are refused with the table, the key and the cause", () => {
  const refuse = (table: string, item: Parameters<typeof fromDynamo>[0], message: RegExp) =>
    assert.throws(() => itemToChange(spec(table), fromDynamo(item), at), (error: Error) => {
      assert.ok(error instanceof MappingError);
      assert.match(error.message, message);
      return true;
    });
  refuse(
    "firespring_actions",
    { url: { S: "/x" } },
    /^firespring-backdoor-actions-dev \[action_id=null\]: attribute action_id: is missing$/,
  );
  refuse(
    "firespring_visitors",
    { session_id: { S: "v1" }, timestamp: { N: "1" }, pages_viewed: { S: "four" } },
    /\[session_id="v1", timestamp=1\]: attribute pages_viewed: expected a number \(N\), got S "four"/,
  );
  refuse(
    "firespring_visitors",
    { session_id: { S: "v1" }, timestamp: { S: "yesterday" } },
    /attribute timestamp: expected a number \(N\), got S "yesterday"/,
  );
  refuse(
    "firespring_actions",
    { action_id: { S: "a" }, created_at: { S: "2026-02-30T00:00:00Z" } },
    /\[action_id="a"\]: attribute created_at: expected an ISO-8601 timestamp, got "2026-02-30T00:00:00Z"/,
  );
  refuse(
    "firespring_actions",
    { action_id: { S: "a" }, timestamp: { N: "1E+20" } },
    /attribute timestamp: 1E\+20 epoch seconds is outside the years 1 to 9999/,
  );
  refuse(
    "mmp_toledo_leads",
    { id: { S: "l" }, _deleted: { S: "yes" } },
    /attribute _deleted: expected a boolean \(BOOL\), got S "yes"/,
  );
});

Deno.test("epochToIso is exact to the microsecond", () => {
  assert.equal(epochToIso("0", "seconds"), "1970-01-01T00:00:00.000000Z");
  assert.equal(epochToIso("1770379200.123456789", "seconds"), "2026-02-06T12:00:00.123456Z");
  assert.equal(epochToIso("1.7703792001234567E9", "seconds"), "2026-02-06T12:00:00.123456Z");
  assert.equal(epochToIso("-0.5", "seconds"), "1969-12-31T23:59:59.500000Z");
  assert.equal(epochToIso("-0.0005", "seconds"), "1969-12-31T23:59:59.999500Z");
  assert.equal(epochToIso("1770379200123.5", "millis"), "2026-02-06T12:00:00.123500Z");
  assert.throws(() => epochToIso("253402300800", "seconds"), /outside the years 1 to 9999/);
});

Deno.test("epochToIso refuses a time before the year 1, even by half a second", () => {
  assert.equal(epochToIso("-62135596800", "seconds"), "0001-01-01T00:00:00.000000Z");
  assert.throws(
    () => epochToIso("-62135596800.5", "seconds"),
    (error: Error) => {
      assert.ok(error instanceof RangeError);
      assert.equal(error.message, "-62135596800.5 epoch seconds is outside the years 1 to 9999");
      return true;
    },
  );
});

Deno.test("isIsoTimestamp accepts what Postgres reads the same way, and no more", () => {
  for (
    const ok of [
      "2026-02-06",
      "2026-02-06T10:00Z",
      "2026-02-06T10:00:00.123456+05:30",
      "2026-02-06 10:00:00",
      "2026-02-06T10:00:00+15:59",
      "2026-02-06T10:00:00-15:59",
      "2026-02-06Z",
      "2026-02-06+05:00",
      "2026-02-06 10:00-05",
    ]
  ) {
    assert.ok(isIsoTimestamp(ok), ok);
  }
  for (
    const bad of [
      "2026-13-01",
      "2026-02-29T00:00:00Z",
      "2026-02-06T24:00:00Z",
      // A date alone with a negative offset: Postgres 15 refuses each (tried on the stack).
      "2026-02-06-05:00",
      "2026-02-06-05",
      "2026-02-06-0500",
      "yesterday",
      "06/02/2026",
      "",
      "2026-02-06T10:00:00+16:00",
      "2026-02-06T10:00:00+05:99",
      "2026-02-06T10:00:00-1600",
    ]
  ) {
    assert.ok(!isIsoTimestamp(bad), bad);
  }
});

Deno.test("the registry: nine tables, two regions, keys that are columns", () => {
  assert.equal(TABLES.length, 9);
  assert.equal(TABLES.filter((t) => t.region === "us-east-1").length, 7);
  for (const table of TABLES) {
    for (const key of table.targetKey) assert.ok(table.columns[key], `${table.targetTable}.${key}`);
    assert.ok(
      !table.columns[table.catchAll],
      `${table.targetTable} catch-all is not a mapped column`,
    );
  }
  assert.equal(
    tableNameFromArn(
      "arn:aws:dynamodb:us-east-2:123456789012:table/Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE/stream/2026-02-06T00:00:00.000",
    ),
    "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE",
  );
  assert.equal(tableNameFromArn("arn:aws:s3:::bucket"), undefined);
});

Deno.test("a zone offset Postgres refuses is a MappingError naming table, key, attribute, cause", () => {
  for (const offset of ["+16:00", "+05:99"]) {
    assert.throws(
      () =>
        itemToChange(
          spec("firespring_actions"),
          fromDynamo({
            action_id: { S: "a-1" },
            created_at: { S: `2026-02-06T10:00:00${offset}` },
          }),
          at,
        ),
      (e: unknown) => {
        assert.ok(e instanceof MappingError);
        assert.equal(
          (e as Error).message,
          `firespring-backdoor-actions-dev [action_id="a-1"]: attribute created_at: expected an ` +
            `ISO-8601 timestamp, got "2026-02-06T10:00:00${offset}" (its zone offset ${offset} ` +
            "is beyond Postgres's ±15:59)",
        );
        return true;
      },
    );
  }
});

Deno.test("an epoch outside the years 1 to 9999 is a MappingError, not a crash", () => {
  assert.throws(
    () =>
      itemToChange(
        spec("firespring_actions"),
        fromDynamo({ action_id: { S: "a-2" }, timestamp: { N: "1e125" } }),
        at,
      ),
    /firespring-backdoor-actions-dev \[action_id="a-2"\]: attribute timestamp: 1e125 epoch seconds is outside the years 1 to 9999/,
  );
});

Deno.test("a timestamp written without a zone is given UTC's, said so: the session's time zone never decides", () => {
  assert.equal(withZone("2026-02-06T10:00:00"), "2026-02-06T10:00:00Z");
  assert.equal(withZone("2026-02-06 10:00"), "2026-02-06 10:00Z");
  assert.equal(withZone("2026-02-06"), "2026-02-06Z");
  assert.equal(withZone("2026-02-06T10:00:00+05:30"), "2026-02-06T10:00:00+05:30");
  assert.equal(withZone("2026-02-06T10:00:00Z"), "2026-02-06T10:00:00Z");
});
