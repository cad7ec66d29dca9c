/**
 * The table registry: ARN parsing, look-ups, and the invariants every entry must keep
 * (the mapping, the merge, the point reads and the validator rely on them), checked
 * against the contract's table of the nine tables (docs/source-tables.md).
 */

import assert from "node:assert/strict";
import {
  arnRegionProblem,
  bySourceTable,
  byTargetTable,
  tableNameFromArn,
  TABLES,
  writeBackAttributes,
} from "./table_registry.ts";

const sources = (column: { from: string | string[] }) => [column.from].flat();

Deno.test("tableNameFromArn reads table and stream ARNs, in every partition", () => {
  const cases: [string, string | undefined][] = [
    [
      "arn:aws:dynamodb:us-east-1:123456789012:table/firespring-backdoor-actions-dev",
      "firespring-backdoor-actions-dev",
    ],
    [
      "arn:aws:dynamodb:us-east-1:123456789012:table/firespring-backdoor-actions-dev/stream/2026-02-06T00:00:00.000",
      "firespring-backdoor-actions-dev",
    ],
    [
      "arn:aws:dynamodb:us-east-2:000000000000:table/Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE/stream/x",
      "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE",
    ],
    ["arn:aws-cn:dynamodb:cn-north-1:1:table/t.name_1", "t.name_1"],
    ["arn:aws-us-gov:dynamodb:us-gov-west-1:1:table/t/index/by-x", "t"],
    ["arn:aws:dynamodb:eu-central-2:000000000000:table/local", "local"],
  ];
  for (const [arn, name] of cases) assert.equal(tableNameFromArn(arn), name, arn);
});

Deno.test("tableNameFromArn answers undefined for anything else", () => {
  for (
    const garbage of [
      "",
      "firespring-backdoor-actions-dev",
      "arn:aws:s3:::bucket/table/x",
      "arn:aws:dynamodb:us-east-1:1:table/",
      "arn:aws:dynamodb:us-east-1:1:global-table/t",
      "xarn:aws:dynamodb:us-east-1:1:table/t",
      "arn:aws:kinesis:us-east-1:1:stream/t",
    ]
  ) {
    assert.equal(tableNameFromArn(garbage), undefined, garbage);
  }
});

Deno.test("arnRegionProblem passes the registered region only, names any other", () => {
  const actions = byTargetTable("firespring_actions")!;
  const leads = byTargetTable("mmp_toledo_leads")!;
  const arn = (region: string, table: string) =>
    `arn:aws:dynamodb:${region}:123456789012:table/${table}/stream/2026-02-06T00:00:00.000`;
  assert.equal(arnRegionProblem(actions, arn("us-east-1", actions.sourceTable)), null);
  assert.equal(arnRegionProblem(leads, arn("us-east-2", leads.sourceTable)), null);
  // DynamoDB Local's own region, which no AWS ARN names: the local stack answers the real
  // one (local-stack/aws/region_arns.ts), so nothing passes for naming none.
  assert.equal(
    arnRegionProblem(actions, arn("ddblocal", actions.sourceTable)),
    "firespring-backdoor-actions-dev in ddblocal is not the registered table, which is in " +
      `us-east-1 (${arn("ddblocal", actions.sourceTable)})`,
  );
  assert.match(
    arnRegionProblem(actions, `arn:aws:dynamodb::1:table/${actions.sourceTable}`)!,
    / in no region /,
  );
  assert.equal(
    arnRegionProblem(actions, arn("us-west-2", actions.sourceTable)),
    "firespring-backdoor-actions-dev in us-west-2 is not the registered table, which is in " +
      `us-east-1 (${arn("us-west-2", actions.sourceTable)})`,
  );
  assert.match(
    arnRegionProblem(leads, arn("us-east-1", leads.sourceTable))!,
    / in us-east-1 is not the registered table, which is in us-east-2 /,
  );
});

Deno.test("bySourceTable and byTargetTable find each table and nothing else", () => {
  for (const spec of TABLES) {
    assert.equal(bySourceTable(spec.sourceTable), spec);
    assert.equal(byTargetTable(spec.targetTable), spec);
  }
  assert.equal(bySourceTable("firespring_actions"), undefined, "a target name is no source");
  assert.equal(byTargetTable("firespring-backdoor-actions-dev"), undefined);
  assert.equal(bySourceTable("FIRESPRING-BACKDOOR-ACTIONS-DEV"), undefined, "case matters");
  assert.equal(byTargetTable(""), undefined);
  assert.equal(
    bySourceTable("Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE")?.targetTable,
    "mmp_toledo_leads",
  );
  assert.equal(byTargetTable("toledo_dashboard")?.region, "us-east-2");
});

Deno.test("table names are unique on both sides", () => {
  assert.equal(TABLES.length, 9);
  assert.equal(new Set(TABLES.map((t) => t.sourceTable)).size, TABLES.length);
  assert.equal(new Set(TABLES.map((t) => t.targetTable)).size, TABLES.length);
  for (const spec of TABLES) {
    assert.match(spec.targetTable, /^[a-z_][a-z0-9_]*$/, "a plain Postgres identifier");
  }
});

Deno.test("every target key column is a column, fed by a source key attribute of its type", () => {
  for (const spec of TABLES) {
    const keyNames = spec.sourceKey.map((k) => k.name);
    assert.ok(spec.targetKey.length > 0, spec.targetTable);
    for (const column of spec.targetKey) {
      const columnSpec = spec.columns[column];
      assert.ok(columnSpec, `${spec.targetTable}: key column ${column} is a column`);
      const [attribute] = sources(columnSpec);
      const key = spec.sourceKey.find((k) => k.name === attribute);
      assert.ok(key, `${spec.targetTable}.${column} comes from a source key attribute`);
      assert.equal(columnSpec.type, key.type === "S" ? "text" : "numeric");
    }
    // A plain table's row key is its whole item key; a collapsed one's is the hash key.
    const fed = spec.targetKey.map((c) => sources(spec.columns[c])[0]);
    assert.deepEqual(fed, spec.collapse ? [keyNames[0]] : keyNames, spec.targetTable);
  }
});

Deno.test("every source key attribute feeds a column", () => {
  for (const spec of TABLES) {
    const fed = new Set(Object.values(spec.columns).flatMap(sources));
    for (const { name } of spec.sourceKey) {
      assert.ok(fed.has(name), `${spec.sourceTable}: key attribute ${name} feeds a column`);
    }
    assert.ok(spec.sourceKey.length >= 1 && spec.sourceKey.length <= 2, "hash, then range");
  }
});

Deno.test("the catch-all column and the deleted flag are distinct from the columns", () => {
  for (const spec of TABLES) {
    assert.ok(!(spec.catchAll in spec.columns), `${spec.targetTable}.${spec.catchAll}`);
    assert.ok(!spec.catchAll.startsWith("sync_"), "sync_ columns are the merge's");
    for (const column of Object.keys(spec.columns)) {
      assert.ok(!column.startsWith("sync_"), `${spec.targetTable}.${column}`);
    }
    if (spec.deletedFlag) {
      const fed = new Set(Object.values(spec.columns).flatMap(sources));
      assert.ok(
        !fed.has(spec.deletedFlag),
        `${spec.sourceTable}: ${spec.deletedFlag} is no column`,
      );
    }
  }
});

Deno.test("the catch-all's documented attributes feed no column and are no flag or key", () => {
  for (const spec of TABLES) {
    const fed = new Set(Object.values(spec.columns).flatMap(sources));
    for (const name of spec.catchAllAttributes) {
      assert.ok(!fed.has(name), `${spec.targetTable}: ${name} has a column`);
      assert.notEqual(name, spec.deletedFlag, `${spec.targetTable}: ${name} is the deleted flag`);
    }
  }
});

Deno.test("writeBackAttributes: keys, every column's sources and the catch-all's, once each", () => {
  const actions = bySourceTable("firespring-backdoor-actions-dev")!;
  assert.deepEqual(writeBackAttributes(actions), [
    "action_id",
    "action_type",
    "created_at",
    "data",
    "session_id",
    "timestamp",
    "title",
    "type",
    "url",
  ]);
  const leads = bySourceTable("Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE")!;
  assert.ok(!writeBackAttributes(leads).includes("_deleted"), "deletes stay denied");
  for (const spec of TABLES) {
    const names = writeBackAttributes(spec);
    assert.deepEqual(names, [...new Set(names)].sort(), spec.targetTable);
    for (const key of spec.sourceKey) assert.ok(names.includes(key.name), spec.targetTable);
  }
});

Deno.test("a collapsed table's range attribute is its source range key, a number", () => {
  const collapsed = TABLES.filter((t) => t.collapse);
  assert.deepEqual(collapsed.map((t) => t.targetTable), [
    "firespring_visitors",
    "firespring_extraction_jobs",
  ]);
  for (const spec of collapsed) {
    const range = spec.sourceKey[1];
    assert.ok(range, `${spec.sourceTable} has a range key`);
    assert.equal(spec.collapse!.rangeAttribute, range.name);
    assert.equal(range.type, "N");
    assert.equal(spec.targetKey.length, 1);
    const rank = spec.collapse!.rank;
    if (rank) {
      const fed = new Set(Object.values(spec.columns).flatMap(sources));
      assert.ok(fed.has(rank.attribute), `the rank attribute ${rank.attribute} is a column`);
      for (const value of Object.values(rank.order)) assert.ok(Number.isInteger(value));
    }
  }
});

Deno.test("the registry agrees with the contract's table of the nine tables", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/source-tables.md", import.meta.url));
  const start = doc.indexOf("## The nine tables at a glance");
  const section = doc.slice(start, doc.indexOf("\n## ", start + 1));
  const rows = section.split("\n").filter((line) => line.startsWith("| `"));
  assert.equal(rows.length, 9);
  const code = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  for (const line of rows) {
    const [source, region, itemKey, target, rowKey] = line.split("|").slice(1, 6).map((c) =>
      c.trim()
    );
    const spec = bySourceTable(code(source)[0]);
    assert.ok(spec, `${source} is registered`);
    assert.equal(spec.region, region);
    assert.equal(spec.targetTable, code(target)[0]);
    assert.deepEqual(
      spec.sourceKey.map((k) => `${k.name} (${k.type})`),
      [...itemKey.matchAll(/`([^`]+)` \((S|N)\)/g)].map((m) => `${m[1]} (${m[2]})`),
      source,
    );
    assert.deepEqual(spec.targetKey, code(rowKey), source);
    assert.equal(Boolean(spec.collapse), line.includes("(collapsed)"), source);
  }
});

Deno.test("every mapped column reads the attribute the contract names (a typo would pass the validator, which maps with the same registry)", () => {
  // Column ← attribute(s), as docs/source-tables.md states each table; the catch-all
  // column takes every other attribute.
  const contract: Record<string, Record<string, string[]>> = {
    firespring_actions: {
      action_id: ["action_id"],
      action_type: ["action_type", "type"],
      session_id: ["session_id"],
      occurred_at: ["timestamp"],
      created_at: ["created_at"],
    },
    firespring_visitors: {
      visitor_id: ["session_id"],
      page_views: ["pages_viewed"],
      last_visit_at: ["timestamp"],
      created_at: ["created_at"],
    },
    firespring_extraction_jobs: {
      job_id: ["job_id"],
      status: ["status"],
      job_type: ["job_type"],
      started_at: ["started_at"],
      completed_at: ["completed_at"],
      records_extracted: ["records_extracted"],
      error_message: ["error_message"],
      last_updated_at: ["updated_at"],
    },
    firespring_traffic_sources: {
      source_id: ["source_id"],
      source_name: ["name"],
      source_type: ["source_type"],
      visitor_count: ["visitors"],
    },
    firespring_segments: {
      segment_id: ["segment_id"],
      segment_name: ["name"],
      member_count: ["value"],
    },
    firespring_searches: {
      search_id: ["search_id"],
      query: ["query"],
      search_count: ["count"],
      engine: ["engine"],
      searched_at: ["searched_at"],
    },
    firespring_network_state: {
      state_key: ["state_key"],
      state_value: ["value"],
      updated_at: ["updated_at"],
    },
    mmp_toledo_leads: {
      lead_id: ["id"],
      name: ["name"],
      email: ["email"],
      phone: ["phone"],
      company: ["company"],
      message: ["message"],
      source: ["source"],
      status: ["status"],
      created_at: ["createdAt"],
      updated_at: ["updatedAt"],
    },
    toledo_dashboard: {
      pk: ["pk"],
      sk: ["sk"],
      metrics: ["metrics"],
      updated_at: ["updated_at"],
    },
  };
  assert.deepEqual(TABLES.map((t) => t.targetTable).sort(), Object.keys(contract).sort());
  for (const spec of TABLES) {
    const mapped = Object.fromEntries(
      Object.entries(spec.columns).map(([column, c]) => [column, sources(c)]),
    );
    assert.deepEqual(mapped, contract[spec.targetTable], spec.targetTable);
  }
});
