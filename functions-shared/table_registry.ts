/**
 * The nine source tables and how each lands in Postgres, as data: one entry per table
 * (docs/source-tables.md). The transformer, the webhook, the backfill, the
 * validator, the demo data and the tests all read this one registry.
 *
 * @module
 */

/**
 * How a column's value is read from the item:
 * - `text`: a string (S);
 * - `numeric`: a number (N), every digit kept;
 * - `epoch_seconds` / `epoch_millis`: a number (N) of seconds / milliseconds since
 *   1970, written as an ISO-8601 timestamp with microseconds;
 * - `iso_timestamp`: an ISO-8601 string (S);
 * - `jsonb`: any value, as JSON.
 */
export type ColumnType =
  | "text"
  | "numeric"
  | "epoch_seconds"
  | "epoch_millis"
  | "iso_timestamp"
  | "jsonb";

/** A target column and the source attribute(s) it comes from (the first present one wins). */
export interface ColumnSpec {
  from: string | string[];
  type: ColumnType;
}

/** How the items of a collapsed table (many observations of one key) reduce to a row. */
export interface CollapseSpec {
  /** The source range key: the observation with the largest value is the row. */
  rangeAttribute: string;
  /** Ties on the range key: higher rank wins. */
  rank?: { attribute: string; order: Record<string, number> };
}

/** One source table and its target. */
export interface TableSpec {
  /** The DynamoDB table name. */
  sourceTable: string;
  region: "us-east-1" | "us-east-2";
  /** The Postgres table in `public`. */
  targetTable: string;
  /** The source key attributes (hash, then range) and their types. */
  sourceKey: { name: string; type: "S" | "N" }[];
  /** The target's key columns (each must also be a column below). */
  targetKey: string[];
  /** Target column -> where its value comes from. */
  columns: Record<string, ColumnSpec>;
  /** The jsonb column that takes every attribute without a column, under its own name. */
  catchAll: string;
  /**
   * The attributes docs/source-tables.md names for the table that land in the catch-all
   * column. The write-back (docs/sync-semantics.md, "Admin edits") may write these keys
   * of the catch-all and no other: its IAM identity is granted exactly
   * {@link writeBackAttributes} (infrastructure/terraform, checked against it).
   */
  catchAllAttributes: readonly string[];
  collapse?: CollapseSpec;
  /** Amplify's soft delete: an item whose attribute is `true` counts as deleted. */
  deletedFlag?: string;
}

/** All nine tables. */
export const TABLES: readonly TableSpec[] = [
  {
    sourceTable: "firespring-backdoor-actions-dev",
    region: "us-east-1",
    targetTable: "firespring_actions",
    sourceKey: [{ name: "action_id", type: "S" }],
    targetKey: ["action_id"],
    columns: {
      action_id: { from: "action_id", type: "text" },
      action_type: { from: ["action_type", "type"], type: "text" },
      session_id: { from: "session_id", type: "text" },
      occurred_at: { from: "timestamp", type: "epoch_seconds" },
      created_at: { from: "created_at", type: "iso_timestamp" },
    },
    catchAll: "action_data",
    catchAllAttributes: ["url", "title", "data"],
  },
  {
    sourceTable: "firespring-backdoor-visitors-dev",
    region: "us-east-1",
    targetTable: "firespring_visitors",
    sourceKey: [{ name: "session_id", type: "S" }, { name: "timestamp", type: "N" }],
    targetKey: ["visitor_id"],
    columns: {
      visitor_id: { from: "session_id", type: "text" },
      page_views: { from: "pages_viewed", type: "numeric" },
      last_visit_at: { from: "timestamp", type: "epoch_seconds" },
      created_at: { from: "created_at", type: "iso_timestamp" },
    },
    catchAll: "session_data",
    catchAllAttributes: ["ip_address", "country", "city", "referrer", "sessions"],
    collapse: { rangeAttribute: "timestamp" },
  },
  {
    sourceTable: "firespring-backdoor-extraction-jobs-dev",
    region: "us-east-1",
    targetTable: "firespring_extraction_jobs",
    sourceKey: [{ name: "job_id", type: "S" }, { name: "updated_at", type: "N" }],
    targetKey: ["job_id"],
    columns: {
      job_id: { from: "job_id", type: "text" },
      status: { from: "status", type: "text" },
      job_type: { from: "job_type", type: "text" },
      started_at: { from: "started_at", type: "iso_timestamp" },
      completed_at: { from: "completed_at", type: "iso_timestamp" },
      records_extracted: { from: "records_extracted", type: "numeric" },
      error_message: { from: "error_message", type: "text" },
      last_updated_at: { from: "updated_at", type: "epoch_millis" },
    },
    catchAll: "job_data",
    catchAllAttributes: ["params"],
    collapse: {
      rangeAttribute: "updated_at",
      rank: {
        attribute: "status",
        order: { pending: 0, running: 1, complete: 2, failed: 2 },
      },
    },
  },
  {
    sourceTable: "firespring-backdoor-traffic-sources-dev",
    region: "us-east-1",
    targetTable: "firespring_traffic_sources",
    sourceKey: [{ name: "source_id", type: "S" }],
    targetKey: ["source_id"],
    columns: {
      source_id: { from: "source_id", type: "text" },
      source_name: { from: "name", type: "text" },
      source_type: { from: "source_type", type: "text" },
      visitor_count: { from: "visitors", type: "numeric" },
    },
    catchAll: "source_data",
    catchAllAttributes: ["period", "data"],
  },
  {
    sourceTable: "firespring-backdoor-segments-dev",
    region: "us-east-1",
    targetTable: "firespring_segments",
    sourceKey: [{ name: "segment_id", type: "S" }],
    targetKey: ["segment_id"],
    columns: {
      segment_id: { from: "segment_id", type: "text" },
      segment_name: { from: "name", type: "text" },
      member_count: { from: "value", type: "numeric" },
    },
    catchAll: "segment_criteria",
    catchAllAttributes: ["raw"],
  },
  {
    sourceTable: "firespring-backdoor-searches-dev",
    region: "us-east-1",
    targetTable: "firespring_searches",
    sourceKey: [{ name: "search_id", type: "S" }],
    targetKey: ["search_id"],
    columns: {
      search_id: { from: "search_id", type: "text" },
      query: { from: "query", type: "text" },
      search_count: { from: "count", type: "numeric" },
      engine: { from: "engine", type: "text" },
      searched_at: { from: "searched_at", type: "epoch_seconds" },
    },
    catchAll: "search_data",
    catchAllAttributes: [],
  },
  {
    sourceTable: "firespring-backdoor-network-state-dev",
    region: "us-east-1",
    targetTable: "firespring_network_state",
    sourceKey: [{ name: "state_key", type: "S" }],
    targetKey: ["state_key"],
    columns: {
      state_key: { from: "state_key", type: "text" },
      state_value: { from: "value", type: "jsonb" },
      updated_at: { from: "updated_at", type: "epoch_seconds" },
    },
    catchAll: "state_data",
    catchAllAttributes: [],
  },
  {
    sourceTable: "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE",
    region: "us-east-2",
    targetTable: "mmp_toledo_leads",
    sourceKey: [{ name: "id", type: "S" }],
    targetKey: ["lead_id"],
    columns: {
      lead_id: { from: "id", type: "text" },
      name: { from: "name", type: "text" },
      email: { from: "email", type: "text" },
      phone: { from: "phone", type: "text" },
      company: { from: "company", type: "text" },
      message: { from: "message", type: "text" },
      source: { from: "source", type: "text" },
      status: { from: "status", type: "text" },
      created_at: { from: "createdAt", type: "iso_timestamp" },
      updated_at: { from: "updatedAt", type: "iso_timestamp" },
    },
    catchAll: "lead_data",
    // AppSync's own bookkeeping (__typename, _version, _lastChangedAt) lands in lead_data;
    // an admin's edit of it would defeat AppSync's conflict check (a lower _version
    // pasted back, or the keys removed), so none is written back: the write-back moves
    // _version and _lastChangedAt on itself (write_back_update.ts).
    catchAllAttributes: [],
    deletedFlag: "_deleted",
  },
  {
    sourceTable: "toledo-consulting-dashboard-data",
    region: "us-east-2",
    targetTable: "toledo_dashboard",
    sourceKey: [{ name: "pk", type: "S" }, { name: "sk", type: "S" }],
    targetKey: ["pk", "sk"],
    columns: {
      pk: { from: "pk", type: "text" },
      sk: { from: "sk", type: "text" },
      metrics: { from: "metrics", type: "jsonb" },
      updated_at: { from: "updated_at", type: "iso_timestamp" },
    },
    catchAll: "dashboard_data",
    catchAllAttributes: [],
  },
];

/**
 * The attributes an admin's edit may write back to an item of the table (sorted, each
 * once): the key attributes (in the update's key, never changed), every column's source
 * attribute(s), and the catch-all's documented attributes. The writer's IAM condition on
 * `dynamodb:Attributes` lists exactly these (infrastructure/terraform).
 */
export function writeBackAttributes(spec: TableSpec): string[] {
  const names = new Set<string>(spec.sourceKey.map((key) => key.name));
  for (const column of Object.values(spec.columns)) {
    for (const name of [column.from].flat()) names.add(name);
  }
  for (const name of spec.catchAllAttributes) names.add(name);
  // An Amplify table's versioning, which every write-back moves on (write_back_update.ts).
  if (spec.deletedFlag) { for (const name of AMPLIFY_VERSIONING) names.add(name); }
  return [...names].sort();
}

/**
 * AppSync's versioning attributes of an Amplify DataStore table (one with a soft-delete
 * flag): every write-back moves them on as AppSync's own writes do, and no admin edit
 * writes them.
 */
export const AMPLIFY_VERSIONING: readonly string[] = ["_version", "_lastChangedAt"];

/** The table a DynamoDB table name maps to, or undefined. */
export function bySourceTable(name: string): TableSpec | undefined {
  return TABLES.find((t) => t.sourceTable === name);
}

/** The table a Postgres table name belongs to, or undefined. */
export function byTargetTable(name: string): TableSpec | undefined {
  return TABLES.find((t) => t.targetTable === name);
}

export { tableNameFromArn } from "./table_arn.ts";

/**
 * Why a table or stream ARN cannot be the registered table `spec`'s, or null when it
 * can: its region is another (a same-named table elsewhere, e.g. a global table's
 * replica, whose stream numbers its records on its own). Every ARN names its region, the
 * local stack's too (its DynamoDB answers in the region each request was made in).
 */
export function arnRegionProblem(spec: TableSpec, arn: string): string | null {
  const region = arn.split(":")[3];
  if (region === spec.region) return null;
  return `${spec.sourceTable} in ${region || "no region"} is not the registered table, ` +
    `which is in ${spec.region} (${arn})`;
}
