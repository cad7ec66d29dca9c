/**
 * What the DynamoDB proxy (local-stack/aws/proxy.ts) reads off a request before it decides
 * what to do with it: its kind of operation, the tables it names, and the table a
 * description is about.
 *
 * @module
 */

import type { Body } from "./stale_reads.ts";
import { parseStreamArn } from "./stream_arns.ts";

/** The operations that read items (the ones read throttling and stale reads apply to). */
export const READ_OPERATIONS: ReadonlySet<string> = new Set([
  "GetItem",
  "BatchGetItem",
  "Query",
  "Scan",
]);

/** The target prefix of DynamoDB's table operations (not of its streams). */
export const TABLE_TARGET = "DynamoDB_20120810.";
/** The target prefix of DynamoDB Streams' operations. */
export const STREAMS_TARGET = "DynamoDBStreams_20120810.";

/**
 * The DynamoDB Streams operation `request` names (`GetRecords`, `DescribeStream`...), or
 * "" for any other request.
 */
export function streamsOperation(request: Request): string {
  const target = request.headers.get("x-amz-target") ?? "";
  return target.startsWith(STREAMS_TARGET) ? target.slice(STREAMS_TARGET.length) : "";
}

/**
 * Whether an operation may add stream records: any but the reads and the Describe, List,
 * Get and TransactGet operations (PartiQL included, whatever its statement).
 */
export function mayWriteStreams(operation: string): boolean {
  return !READ_OPERATIONS.has(operation) && !/^(Describe|List|Get|TransactGet)/.test(operation);
}

/**
 * The table a DescribeTable or DescribeStream is about (descriptions.ts); undefined for
 * any other request, or one whose body does not parse (DynamoDB Local's to refuse).
 */
export function describedTable(target: string, raw: ArrayBuffer | undefined): string | undefined {
  const operation = target === `${TABLE_TARGET}DescribeTable`
    ? "DescribeTable"
    : target === "DynamoDBStreams_20120810.DescribeStream"
    ? "DescribeStream"
    : undefined;
  if (!operation) return undefined;
  try {
    const body = JSON.parse(new TextDecoder().decode(raw));
    if (operation === "DescribeTable") {
      return typeof body?.TableName === "string" ? body.TableName : undefined;
    }
    return typeof body?.StreamArn === "string" ? parseStreamArn(body.StreamArn)?.table : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The tables a table operation's parsed `body` names: its TableName, a batch's
 * RequestItems, a TransactWriteItems' actions' tables (each once); none for any other.
 */
export function tablesOf(operation: string, body: Body): string[] {
  if (typeof body.TableName === "string") return [body.TableName];
  if (operation === "BatchGetItem" || operation === "BatchWriteItem") {
    return Object.keys((body.RequestItems ?? {}) as Body);
  }
  if (operation === "TransactWriteItems") {
    return [
      ...new Set(
        ((body.TransactItems ?? []) as Body[]).flatMap((entry) =>
          Object.values(entry).map((op) => (op as Body).TableName as string)
        ),
      ),
    ];
  }
  return [];
}
