/**
 * The table registry is the one source of the table list: the database's mirror tables,
 * `sync.source_tables`, the pgTAP schema test's list and the demo data set must all be
 * what it says, and a difference fails here naming the table and column
 * (scripts/registry_check.ts).
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../local-stack/config.ts";
import { TABLES } from "../functions-shared/table_registry.ts";
import { REPORT_VOLUMES } from "../demo/demo_data.ts";
import {
  type CatalogColumn,
  registryProblems,
  type SourceTableRow,
} from "../scripts/registry_check.ts";
import { connectDb } from "./stack_clients.ts";
import { CHANGE_WIRE_FIELDS } from "../functions-shared/change_wire.ts";
import { missingRegistryColumns, readMirrorColumns } from "../functions-shared/schema_guard.ts";

Deno.test("the database's mirror tables and sync.source_tables are the registry's", async () => {
  const sql = connectDb();
  try {
    // A mirror table is a public table with the ordering guard's columns.
    const columns = await sql<CatalogColumn[]>`
      select c.relname as table, a.attname as column,
             format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as "notNull"
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
        and exists (select from pg_attribute g where g.attrelid = c.oid and g.attname = 'sync_changed_at')
      order by c.relname, a.attnum`;
    const keys = await sql<{ table: string; columns: string[] }[]>`
      select c.relname as table,
             array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum)) as columns
      from pg_index i
      join pg_class c on c.oid = i.indrelid
      join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attnum = any(i.indkey)
      where n.nspname = 'public' and i.indisprimary
      group by c.relname`;
    const sourceTables = await sql<SourceTableRow[]>`
      select source_table, region, target_table, key_columns, collapsed
      from sync.source_tables order by source_table`;
    // tgargs: the trigger's arguments, each ended by a NUL byte.
    const triggers = await sql<{ table: string; args: string }[]>`
      select c.relname as table, encode(t.tgargs, 'escape') as args
      from pg_trigger t
      join pg_class c on c.oid = t.tgrelid
      join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and t.tgname = 'write_back'`;
    const problems = registryProblems(TABLES, {
      columns: [...columns],
      primaryKeys: Object.fromEntries(keys.map((k) => [k.table, k.columns])),
      sourceTables: [...sourceTables],
      writeBackTriggers: Object.fromEntries(
        triggers.map((t) => [t.table, t.args.split("\\000").filter((a) => a !== "")]),
      ),
    });
    assert.deepEqual(problems, [], `the registry and the database differ:\n${problems.join("\n")}`);
  } finally {
    await sql.end();
  }
});

Deno.test("the pgTAP schema test and the demo data list exactly the registry's tables", () => {
  const schemaTest = readFileSync(
    join(ROOT, "supabase", "tests", "database", "010-schema.test.sql"),
    "utf8",
  );
  const list = schemaTest.match(/tables_are\('public', array\[([^\]]*)\]/);
  assert.ok(list, "010-schema.test.sql lists the public tables with tables_are");
  const listed = [...list[1].matchAll(/'([^']+)'/g)].map((m) => m[1]).sort();
  assert.deepEqual(
    listed,
    [...TABLES.map((t) => t.targetTable), "sync_checksums"].sort(),
    "010-schema.test.sql's public tables are the registry's nine and sync_checksums",
  );
  assert.deepEqual(
    Object.keys(REPORT_VOLUMES).sort(),
    TABLES.map((t) => t.sourceTable).sort(),
    "the demo data set has a volume for each registry table, and no other",
  );
});

Deno.test("a change's wire form is the SQL type sync.change, field for field", async () => {
  const sql = connectDb();
  try {
    const attributes = await sql<{ name: string }[]>`
      select attname::text as name from pg_attribute
      where attrelid = 'sync.change'::regclass and attnum > 0 and not attisdropped
      order by attnum`;
    assert.deepEqual(
      attributes.map((a) => a.name),
      [...CHANGE_WIRE_FIELDS],
      "functions-shared/change_wire.ts and sync.change (20261128000300_merge.sql) list the same fields",
    );
  } finally {
    await sql.end();
  }
});

Deno.test("every mirror table's compiled merge is current (sync.stale_merges)", async () => {
  const sql = connectDb();
  try {
    const stale = await sql<{ table: string }[]>`select sync.stale_merges() as table`;
    assert.deepEqual(
      stale.map((s) => s.table),
      [],
      "a migration that changes a mirror table's columns must end with select sync.compile_merges()",
    );
  } finally {
    await sql.end();
  }
});

Deno.test("the functions' schema guard reads the database's columns and names one it lacks", async () => {
  const sql = connectDb();
  try {
    assert.deepEqual(
      missingRegistryColumns(
        TABLES,
        await readMirrorColumns(sql, TABLES.map((t) => t.targetTable)),
      ),
      [],
      "the stack's database is of the registry's version",
    );
    // A migration not pushed yet, as the guard sees it: the column renamed in a
    // transaction that is rolled back (it holds the table's lock for a moment only).
    const problems = await sql.begin(async (tx) => {
      await tx`set local lock_timeout = '5s'`;
      await tx`alter table public.firespring_segments rename column member_count to member_count_old`;
      const columns = await readMirrorColumns(tx, TABLES.map((t) => t.targetTable));
      throw Object.assign(new Error("rollback"), {
        problems: missingRegistryColumns(TABLES, columns),
      });
    }).catch((error) => (error as { problems?: string[] }).problems);
    assert.deepEqual(problems, ["public.firespring_segments has no column member_count"]);
  } finally {
    await sql.end();
  }
});
