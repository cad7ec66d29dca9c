/**
 * The table registry (`functions-shared/table_registry.ts`) is the one source of the
 * table list and of every mirror table's columns. This module compares it with what the
 * database holds, and names every difference: a registry column the table lacks (which
 * `jsonb_populate_record` would otherwise drop without a word, on the write path and on
 * the validator's expected side alike), a table column the registry does not know, a
 * type that cannot hold what the registry writes, a key that differs, a row of
 * `sync.source_tables` that is not the registry's, or a `write_back` trigger missing or
 * not told the column a collapsed table's range key feeds.
 *
 * `tests/registry_database_test.ts` runs it against the stack's database;
 * `registry_check_test.ts` shows each kind of difference on a made-up catalog.
 *
 * @module
 */

import type { ColumnType, TableSpec } from "../functions-shared/table_registry.ts";

/** One column of a mirror table, as the catalog describes it. */
export interface CatalogColumn {
  table: string;
  column: string;
  /** `format_type` of the column, e.g. `text`, `numeric`, `timestamp with time zone`. */
  type: string;
  notNull: boolean;
}

/** One row of `sync.source_tables`. */
export interface SourceTableRow {
  source_table: string;
  region: string;
  target_table: string;
  key_columns: string[];
  collapsed: boolean;
}

/** What the database says about the mirror tables. */
export interface Catalog {
  columns: CatalogColumn[];
  /** Primary key columns per table, in key order. */
  primaryKeys: Record<string, string[]>;
  sourceTables: SourceTableRow[];
  /**
   * The arguments of each mirror table's `write_back` trigger
   * (20261128002500_write_back.sql), by table; a table without the trigger is absent.
   */
  writeBackTriggers: Record<string, string[]>;
}

/**
 * The column a collapsed table's range key feeds (an admin may not edit it: the write-back
 * trigger's argument), or undefined for a plain table.
 */
export function rangeKeyColumn(spec: TableSpec): string | undefined {
  if (!spec.collapse) return undefined;
  const range = spec.collapse.rangeAttribute;
  return Object.entries(spec.columns).find(([, c]) => [c.from].flat().includes(range))?.[0];
}

/** The Postgres type that holds each registry column type. */
export const POSTGRES_TYPE: Record<ColumnType, string> = {
  text: "text",
  numeric: "numeric",
  epoch_seconds: "timestamp with time zone",
  epoch_millis: "timestamp with time zone",
  iso_timestamp: "timestamp with time zone",
  jsonb: "jsonb",
};

/** The sync's own bookkeeping columns: not data, not in the registry. */
export function isBookkeeping(column: string): boolean {
  return column.startsWith("sync_") || column === "synced_at";
}

/** Every difference between the registry and the catalog, one sentence each. */
export function registryProblems(tables: readonly TableSpec[], catalog: Catalog): string[] {
  const problems: string[] = [];
  for (const spec of tables) problems.push(...tableProblems(spec, catalog));

  const registered = new Set(tables.map((t) => t.targetTable));
  const inDatabase = new Set(catalog.columns.map((c) => c.table));
  for (const table of inDatabase) {
    if (!registered.has(table)) {
      problems.push(`public.${table} is a mirror table in the database but not in the registry`);
    }
  }

  for (const spec of tables) {
    const row = catalog.sourceTables.find((r) => r.source_table === spec.sourceTable);
    const want: SourceTableRow = {
      source_table: spec.sourceTable,
      region: spec.region,
      target_table: spec.targetTable,
      key_columns: spec.targetKey,
      collapsed: spec.collapse !== undefined,
    };
    if (!row) {
      problems.push(`sync.source_tables has no row for ${spec.sourceTable}`);
    } else if (JSON.stringify(row) !== JSON.stringify(want)) {
      problems.push(
        `sync.source_tables row of ${spec.sourceTable} is ${JSON.stringify(row)}, ` +
          `the registry says ${JSON.stringify(want)}`,
      );
    }
  }
  for (const row of catalog.sourceTables) {
    if (!tables.some((t) => t.sourceTable === row.source_table)) {
      problems.push(`sync.source_tables has ${row.source_table}, which the registry does not`);
    }
  }
  return problems;
}

function tableProblems(spec: TableSpec, catalog: Catalog): string[] {
  const table = spec.targetTable;
  const columns = catalog.columns.filter((c) => c.table === table);
  if (columns.length === 0) {
    return [`public.${table} (registry: ${spec.sourceTable}) does not exist`];
  }
  const problems: string[] = [];
  const byName = new Map(columns.map((c) => [c.column, c]));

  for (const [name, { type }] of Object.entries(spec.columns)) {
    const column = byName.get(name);
    const want = POSTGRES_TYPE[type];
    if (!column) {
      problems.push(`public.${table}.${name} is in the registry (${type}) but not in the table`);
    } else if (column.type !== want) {
      problems.push(
        `public.${table}.${name} is ${column.type}; the registry's ${type} needs ${want}`,
      );
    }
  }
  const catchAll = byName.get(spec.catchAll);
  if (!catchAll) {
    problems.push(`public.${table}.${spec.catchAll} (the catch-all) is not in the table`);
  } else if (catchAll.type !== "jsonb" || !catchAll.notNull) {
    problems.push(`public.${table}.${spec.catchAll} (the catch-all) must be jsonb not null`);
  }
  for (const column of columns) {
    const known = column.column in spec.columns || column.column === spec.catchAll;
    if (!known && !isBookkeeping(column.column)) {
      problems.push(
        `public.${table}.${column.column} is in the table but not in the registry ` +
          `(add it to ${spec.sourceTable}'s columns, or drop it)`,
      );
    }
  }
  const trigger = catalog.writeBackTriggers[table];
  const range = rangeKeyColumn(spec);
  const wantArgs = range ? [range] : [];
  if (!trigger) {
    problems.push(`public.${table} has no write_back trigger (admin edits would be lost)`);
  } else if (JSON.stringify(trigger) !== JSON.stringify(wantArgs)) {
    problems.push(
      `public.${table}'s write_back trigger takes (${trigger.join(", ")}); the registry's ` +
        `range key column is (${wantArgs.join(", ")})`,
    );
  }
  const key = catalog.primaryKeys[table] ?? [];
  if (JSON.stringify(key) !== JSON.stringify(spec.targetKey)) {
    problems.push(
      `public.${table}'s primary key is (${key.join(", ")}); the registry's targetKey is ` +
        `(${spec.targetKey.join(", ")})`,
    );
  }
  return problems;
}
