import assert from "node:assert/strict";
import { TABLES, type TableSpec } from "../functions-shared/table_registry.ts";
import {
  type Catalog,
  type CatalogColumn,
  POSTGRES_TYPE,
  rangeKeyColumn,
  registryProblems,
  type SourceTableRow,
} from "./registry_check.ts";

/** A catalog that is exactly what the registry describes. */
function catalogOf(tables: readonly TableSpec[]): Catalog {
  const columns: CatalogColumn[] = [];
  const primaryKeys: Record<string, string[]> = {};
  const sourceTables: SourceTableRow[] = [];
  const writeBackTriggers: Record<string, string[]> = {};
  for (const spec of tables) {
    const range = rangeKeyColumn(spec);
    writeBackTriggers[spec.targetTable] = range ? [range] : [];
    for (const [column, { type }] of Object.entries(spec.columns)) {
      columns.push({ table: spec.targetTable, column, type: POSTGRES_TYPE[type], notNull: false });
    }
    columns.push({ table: spec.targetTable, column: spec.catchAll, type: "jsonb", notNull: true });
    columns.push({
      table: spec.targetTable,
      column: "sync_sequence",
      type: "numeric(40,0)",
      notNull: false,
    });
    primaryKeys[spec.targetTable] = [...spec.targetKey];
    sourceTables.push({
      source_table: spec.sourceTable,
      region: spec.region,
      target_table: spec.targetTable,
      key_columns: [...spec.targetKey],
      collapsed: spec.collapse !== undefined,
    });
  }
  return { columns, primaryKeys, sourceTables, writeBackTriggers };
}

Deno.test("a catalog made from the registry has no problem", () => {
  assert.deepEqual(registryProblems(TABLES, catalogOf(TABLES)), []);
});

Deno.test("a registry column the table lacks is named", () => {
  const catalog = catalogOf(TABLES);
  catalog.columns = catalog.columns.filter((c) =>
    !(c.table === "firespring_segments" && c.column === "member_count")
  );
  assert.deepEqual(registryProblems(TABLES, catalog), [
    "public.firespring_segments.member_count is in the registry (numeric) but not in the table",
  ]);
});

Deno.test("a table column the registry does not know is named, bookkeeping aside", () => {
  const catalog = catalogOf(TABLES);
  catalog.columns.push({
    table: "firespring_actions",
    column: "colour",
    type: "text",
    notNull: false,
  });
  catalog.columns.push({
    table: "firespring_actions",
    column: "synced_at",
    type: "timestamp with time zone",
    notNull: true,
  });
  assert.deepEqual(registryProblems(TABLES, catalog), [
    "public.firespring_actions.colour is in the table but not in the registry " +
    "(add it to firespring-backdoor-actions-dev's columns, or drop it)",
  ]);
});

Deno.test("a type that cannot hold the registry's values is named", () => {
  const catalog = catalogOf(TABLES);
  const column = catalog.columns.find((c) =>
    c.table === "firespring_actions" && c.column === "occurred_at"
  )!;
  column.type = "timestamp without time zone";
  assert.deepEqual(registryProblems(TABLES, catalog), [
    "public.firespring_actions.occurred_at is timestamp without time zone; the registry's " +
    "epoch_seconds needs timestamp with time zone",
  ]);
});

Deno.test("sync.source_tables must be the registry, row by row", () => {
  const catalog = catalogOf(TABLES);
  catalog.sourceTables[0] = { ...catalog.sourceTables[0], region: "eu-west-1" };
  catalog.sourceTables.push({
    source_table: "stray",
    region: "us-east-1",
    target_table: "stray",
    key_columns: ["id"],
    collapsed: false,
  });
  const problems = registryProblems(TABLES, catalog);
  assert.equal(problems.length, 2);
  assert.match(
    problems[0],
    /^sync\.source_tables row of firespring-backdoor-actions-dev is .*eu-west-1/,
  );
  assert.equal(problems[1], "sync.source_tables has stray, which the registry does not");
});

Deno.test("a missing table, a wrong key and a table the registry lacks are named", () => {
  const catalog = catalogOf(TABLES);
  catalog.columns = catalog.columns.filter((c) => c.table !== "firespring_searches");
  catalog.primaryKeys.toledo_dashboard = ["pk"];
  catalog.columns.push({ table: "orphan", column: "id", type: "text", notNull: true });
  assert.deepEqual(registryProblems(TABLES, catalog), [
    "public.firespring_searches (registry: firespring-backdoor-searches-dev) does not exist",
    "public.toledo_dashboard's primary key is (pk); the registry's targetKey is (pk, sk)",
    "public.orphan is a mirror table in the database but not in the registry",
  ]);
});

Deno.test("a missing write_back trigger, or one not told the range key column, is named", () => {
  assert.equal(
    rangeKeyColumn(TABLES.find((t) => t.targetTable === "firespring_visitors")!),
    "last_visit_at",
  );
  assert.equal(
    rangeKeyColumn(TABLES.find((t) => t.targetTable === "firespring_actions")!),
    undefined,
  );
  const catalog = catalogOf(TABLES);
  delete catalog.writeBackTriggers.firespring_segments;
  catalog.writeBackTriggers.firespring_extraction_jobs = ["started_at"];
  assert.deepEqual(registryProblems(TABLES, catalog), [
    "public.firespring_extraction_jobs's write_back trigger takes (started_at); the registry's " +
    "range key column is (last_updated_at)",
    "public.firespring_segments has no write_back trigger (admin edits would be lost)",
  ]);
});
