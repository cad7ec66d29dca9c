/**
 * IAM for the stand-in's DynamoDB: what each of the Supabase functions' two AWS identities
 * may do, as the project's Terraform grants it on AWS, so that a function calling an
 * action, a table or an attribute its policy does not allow is refused here as there.
 * DynamoDB Local evaluates no policy at all (it takes any key).
 *
 * - The reader (`infrastructure/terraform/mmp-toledo-sync/supabase-reader.tf`): Scan,
 *   GetItem, Query and DescribeTable on the synced tables; DescribeStream,
 *   GetShardIterator and GetRecords on their streams. Nothing else (no ListStreams, no
 *   write).
 * - The write-back's writer (`supabase-writer.tf`): UpdateItem only, on each synced
 *   table, with `ForAllValues:StringEquals` on `dynamodb:Attributes` = the table's
 *   `writeBackAttributes` (every top-level attribute the request names must be one of
 *   them) and `StringEqualsIfExists` on `dynamodb:ReturnValues` = NONE or UPDATED_OLD.
 * - The exporter (`exports.tf`), the operator's key for `npm run backfill --
 *   --from-export`: DescribeTable and DescribeContinuousBackups, and
 *   ExportTableToPointInTime, on the synced tables; DescribeExport on their exports.
 *
 * `infrastructure/terraform/terraform_test.ts` checks that these lists are Terraform's.
 * The stack's own key (the tests' and the demo's, standing for the applications and the
 * operator) has no policy: it may do anything, as an administrator's.
 *
 * A request no statement allows is refused as IAM refuses it: HTTP 400
 * `AccessDeniedException`, "User: <arn> is not authorized to perform: <action> on
 * resource: <arn> because no identity-based policy allows the <action> action"
 * (IAM User Guide, "Troubleshoot access denied error messages",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).
 *
 * @module
 */

import { type TableSpec, writeBackAttributes } from "../../functions-shared/table_registry.ts";

/** The reader's actions on the synced tables (supabase-reader.tf, first statement). */
export const READER_TABLE_ACTIONS: readonly string[] = [
  "dynamodb:Scan",
  "dynamodb:GetItem",
  "dynamodb:Query",
  "dynamodb:DescribeTable",
];
/** The reader's actions on the synced tables' streams (supabase-reader.tf, second statement). */
export const READER_STREAM_ACTIONS: readonly string[] = [
  "dynamodb:DescribeStream",
  "dynamodb:GetShardIterator",
  "dynamodb:GetRecords",
];
/** The exporter's checks of the synced tables (exports.tf, its first statement). */
export const EXPORTER_TABLE_ACTIONS: readonly string[] = [
  "dynamodb:DescribeTable",
  "dynamodb:DescribeContinuousBackups",
];
/** The exporter's request of an export (exports.tf, its second statement). */
export const EXPORTER_EXPORT_ACTIONS: readonly string[] = ["dynamodb:ExportTableToPointInTime"];
/** The exporter's following of its exports (exports.tf, its third statement). */
export const EXPORTER_FOLLOW_ACTIONS: readonly string[] = ["dynamodb:DescribeExport"];
/** The writer's one action (supabase-writer.tf). */
export const WRITER_ACTIONS: readonly string[] = ["dynamodb:UpdateItem"];
/** The `dynamodb:ReturnValues` the writer may ask for (supabase-writer.tf). */
export const WRITER_RETURN_VALUES: readonly string[] = ["NONE", "UPDATED_OLD"];

/** The account the stand-in's ARNs are in (DynamoDB Local's own). */
export const LOCAL_ACCOUNT = "000000000000";

/**
 * What a request acts on: a table, one of its indexes (a Query or Scan with `IndexName`:
 * IAM checks `table/<t>/index/<i>`, which a grant on the table does not cover), or its
 * stream.
 */
export interface Resource {
  kind: "table" | "index" | "stream" | "export";
  /** The table's name (an index's or a stream's, its table's). */
  table: string;
  /** The index's name, for kind "index". */
  index?: string;
  /** The export's id, for kind "export" (`table/<t>/export/<id>`). */
  exportId?: string;
  /** The region of the request's credential scope: a table is another region's ARN. */
  region: string;
}

/** A table as a grant names it: a policy's ARNs carry the table's region. */
export interface GrantedTable {
  table: string;
  region: string;
}

/** One Allow statement of an identity's policy. */
export interface Grant {
  actions: readonly string[];
  kind: "table" | "stream" | "export";
  /** The tables it is on (their streams or exports, for those kinds), each in its region. */
  tables: readonly GrantedTable[];
  /** ForAllValues:StringEquals on dynamodb:Attributes, per table. */
  attributes?: Readonly<Record<string, readonly string[]>>;
  /** StringEqualsIfExists on dynamodb:ReturnValues. */
  returnValues?: readonly string[];
}

/** An IAM user and its policy. */
export interface Identity {
  user: string;
  grants: readonly Grant[];
}

/** What a request asks for, as IAM sees it. */
export interface AccessRequest {
  /** `dynamodb:<Operation>`. */
  action: string;
  /** Every resource it acts on (a batch's tables each). */
  resources: readonly Resource[];
  /** The top-level attribute names it accesses, per table (dynamodb:Attributes). */
  attributes?: Readonly<Record<string, readonly string[]>>;
  /** Its ReturnValues, when it sends one. */
  returnValues?: string;
}

/** The Edge Functions' reader: read the synced tables and their streams. */
export function readerIdentity(tables: readonly TableSpec[]): Identity {
  const names = tables.map((t) => ({ table: t.sourceTable, region: t.region }));
  return {
    user: "supabase-reader",
    grants: [
      { actions: READER_TABLE_ACTIONS, kind: "table", tables: names },
      { actions: READER_STREAM_ACTIONS, kind: "stream", tables: names },
    ],
  };
}

/** The write-back's writer: UpdateItem of each table's mapped attributes only. */
export function writerIdentity(tables: readonly TableSpec[]): Identity {
  return {
    user: "supabase-writer",
    grants: tables.map((spec) => ({
      actions: WRITER_ACTIONS,
      kind: "table" as const,
      tables: [{ table: spec.sourceTable, region: spec.region }],
      attributes: { [spec.sourceTable]: writeBackAttributes(spec) },
      returnValues: WRITER_RETURN_VALUES,
    })),
  };
}

/** The operator's exporter: check the synced tables, export them, follow their exports. */
export function exporterIdentity(tables: readonly TableSpec[]): Identity {
  const names = tables.map((t) => ({ table: t.sourceTable, region: t.region }));
  return {
    user: "supabase-exporter",
    grants: [
      { actions: EXPORTER_TABLE_ACTIONS, kind: "table", tables: names },
      { actions: EXPORTER_EXPORT_ACTIONS, kind: "table", tables: names },
      { actions: EXPORTER_FOLLOW_ACTIONS, kind: "export", tables: names },
    ],
  };
}

/** The ARN of `resource`, as AWS names it in a refusal. */
export function resourceArn(resource: Resource): string {
  const table = `arn:aws:dynamodb:${resource.region}:${LOCAL_ACCOUNT}:table/${resource.table}`;
  if (resource.kind === "index") return `${table}/index/${resource.index}`;
  if (resource.kind === "export") return `${table}/export/${resource.exportId}`;
  return resource.kind === "stream" ? `${table}/stream/*` : table;
}

/** Whether `grant` allows `request` on `resource`, its conditions included. */
function allows(grant: Grant, request: AccessRequest, resource: Resource): boolean {
  if (!grant.actions.includes(request.action)) return false;
  if (grant.kind !== resource.kind) return false;
  const granted = grant.tables.some((t) =>
    t.table === resource.table && t.region === resource.region
  );
  if (!granted) return false;
  if (grant.attributes) {
    const allowed = grant.attributes[resource.table] ?? [];
    const named = request.attributes?.[resource.table] ?? [];
    if (!named.every((name) => allowed.includes(name))) return false;
  }
  if (grant.returnValues && request.returnValues !== undefined) {
    if (!grant.returnValues.includes(request.returnValues)) return false;
  }
  return true;
}

/**
 * IAM's refusal of `request` by `identity` (the message of its AccessDeniedException),
 * or null when every resource it acts on is allowed by a statement. A request that acts
 * on no resource (ListStreams, ListTables) is on `*`, which no statement names.
 */
export function accessDenied(identity: Identity, request: AccessRequest): string | null {
  const refuse = (arn: string) =>
    `User: arn:aws:iam::${LOCAL_ACCOUNT}:user/${identity.user} is not authorized to perform: ` +
    `${request.action} on resource: ${arn} because no identity-based policy allows the ` +
    `${request.action} action`;
  if (request.resources.length === 0) return refuse("*");
  for (const resource of request.resources) {
    if (!identity.grants.some((grant) => allows(grant, request, resource))) {
      return refuse(resourceArn(resource));
    }
  }
  return null;
}
